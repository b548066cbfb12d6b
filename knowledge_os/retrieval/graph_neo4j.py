"""Neo4j over Bolt, the production :class:`GraphStore` (``neo4j`` driver, sync API).

Model:

* every node is ``(:Node {id, kind, name, props})``: one label, so one uniqueness
  constraint (``kos_node_id``) serves every lookup by id, and ``kind`` is a property with
  its own index (``kos_node_kind``). ``props`` holds the properties as a JSON string,
  because Neo4j properties cannot be nested maps.
* an edge is a relationship of its own type (``MENTIONS``, ``FIXES`` ...). Relationship
  types cannot be fast query parameters (see ``_UPSERT_EDGES``), so edges are grouped by
  type, each type is checked to be a plain identifier (``check_edge_type``) and quoted.
  An edge whose endpoint has no node yet MERGEs a bare ``(:Node {id})`` without ``kind``;
  such placeholders are walked through but never returned or counted (the SQLite store
  treats ids without a node row the same way).
* constraints and indexes are created on first use (``IF NOT EXISTS``).

Every value travels as a query parameter, in ``UNWIND $rows`` batches; the only
caller-given text in Cypher is a validated relationship-type identifier. Expansion runs the same level-wise walk as the embedded
store (:func:`~knowledge_os.retrieval.graph_sqlite.bounded_bfs`): one parameterised
one-hop query per level instead of a variable-length pattern, whose path enumeration
explodes through hub nodes. ``depth`` is validated (int, 1..5) before the walk and only
bounds the Python loop; both stores therefore return the same hits on the same data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import orjson

from knowledge_os.errors import BackendError, BackendUnavailableError, ConfigError
from knowledge_os.retrieval.base import GraphEdge, GraphHit, GraphNode
from knowledge_os.retrieval.graph_sqlite import (
    DEFAULT_MAX_FRONTIER,
    bounded_bfs,
    check_depth,
    check_edge_type,
)

__all__ = ["Neo4jGraphStore", "redact_uri"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_ROWS = 2000

_SCHEMA = (
    "CREATE CONSTRAINT kos_node_id IF NOT EXISTS FOR (n:Node) REQUIRE n.id IS UNIQUE",
    "CREATE INDEX kos_node_kind IF NOT EXISTS FOR (n:Node) ON (n.kind)",
)

_UPSERT_NODES = """
UNWIND $rows AS row
MERGE (n:Node {id: row.id})
SET n.kind = row.kind, n.name = row.name, n.props = row.props
"""

# {rel_type} is filled with a relationship type checked by ``check_edge_type`` (an
# identifier, [A-Za-z_][A-Za-z0-9_]*, never a value); ids travel as parameters. A static
# type is what lets MERGE use per-type degrees: with a dynamic ``[:$(row.type)]`` type,
# 5,000 edges into one hub took 12-15 s instead of 0.5 s (Neo4j 5.26, measured).
_UPSERT_EDGES = """
UNWIND $rows AS row
MERGE (a:Node {{id: row.src}})
MERGE (b:Node {{id: row.dst}})
MERGE (a)-[:`{rel_type}`]->(b)
"""

_LOOKUP = """
UNWIND $ids AS i
MATCH (n:Node {id: i})
WHERE n.kind IS NOT NULL
RETURN n.id AS id, n.kind AS kind
"""

_NEIGHBOURS = """
UNWIND $ids AS i
MATCH (:Node {id: i})--(m:Node)
RETURN DISTINCT m.id AS id, m.kind AS kind
"""

_LAST_LEVEL = """
UNWIND $ids AS i
MATCH (:Node {id: i})--(m:Node)
WHERE m.kind IS NOT NULL AND NOT m.id IN $seen AND ($kinds IS NULL OR m.kind IN $kinds)
WITH DISTINCT m.id AS id, m.kind AS kind
RETURN id, kind
ORDER BY id
LIMIT $k
"""

_GET_NODES = """
UNWIND $ids AS i
MATCH (n:Node {id: i})
WHERE n.kind IS NOT NULL
RETURN n.id AS id, n.kind AS kind, n.name AS name, n.props AS props
"""

# delete(): the neighbours of the doomed nodes, then the nodes with their relationships,
# then those neighbours left without any relationship (one write transaction).
_DELETE_NEIGHBOURS = """
UNWIND $ids AS i
MATCH (:Node {id: i})--(m:Node)
RETURN DISTINCT m.id AS id
"""
_DELETE_NODES = """
UNWIND $ids AS i
MATCH (n:Node {id: i})
DETACH DELETE n
"""
_DELETE_ORPHANS = """
UNWIND $ids AS i
MATCH (m:Node {id: i})
WHERE NOT (m)--()
DELETE m
"""

_COUNT_NODES = "MATCH (n:Node) WHERE n.kind IS NOT NULL RETURN count(n) AS c"
_COUNT_EDGES = "MATCH ()-[r]->() RETURN count(r) AS c"
_CLEAR = "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"

_USERINFO = re.compile(r"(?<=://)([^:/@]*):([^@]*)@")


def redact_uri(uri: str) -> str:
    """``bolt://user:secret@host`` -> ``bolt://user:***@host``; other URIs unchanged."""
    return _USERINFO.sub(r"\1:***@", uri)


class Neo4jGraphStore:
    """:class:`~knowledge_os.retrieval.base.GraphStore` on a Neo4j 5.26+ server.

    Args:
        uri: Bolt URI, e.g. ``"bolt://127.0.0.1:7687"``.
        auth: ``(user, password)``, or None for a server with auth disabled.
        database: Database name (Community has one: ``"neo4j"``).
        max_frontier: Expansion frontier cap per level (see ``graph_sqlite``).
        connect_timeout_s: Bolt connection timeout, seconds.

    Raises:
        BackendUnavailableError: the server did not answer or refused the credentials;
            the message names the URI (password redacted).
        ConfigError: the driver rejected the URI or options.
    """

    def __init__(
        self,
        uri: str,
        *,
        auth: tuple[str, str] | None = None,
        database: str = "neo4j",
        max_frontier: int = DEFAULT_MAX_FRONTIER,
        connect_timeout_s: float = 10.0,
    ) -> None:
        import neo4j

        if max_frontier < 1:
            raise ValueError(f"max_frontier must be >= 1, got {max_frontier}")
        self.uri = uri
        self.database = database
        self.max_frontier = max_frontier
        self._neo4j = neo4j
        self._schema_ready = False
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri, auth=auth, connection_timeout=connect_timeout_s
            )
        except Exception as exc:
            self._raise_translated(exc, "configure")
        try:
            self._driver.verify_connectivity()
        except Exception as exc:
            self._driver.close()
            self._raise_translated(exc, "connect")

    def upsert(self, nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]) -> None:
        """MERGE nodes by id and edges by (src, dst, type) in batches of 2,000 rows.

        Idempotent. One transaction per batch (not one for the whole call: a large ingest
        would otherwise hold one huge transaction in the server's heap).

        Raises:
            InputError: an edge type is not an identifier (checked before any write).
            BackendUnavailableError: the server went away.
            BackendError: the server rejected the write.
        """
        node_rows = [
            {
                "id": n.id,
                "kind": n.kind,
                "name": n.name,
                "props": orjson.dumps(dict(n.properties), option=orjson.OPT_SORT_KEYS).decode(),
            }
            for n in nodes
        ]
        by_type: dict[str, list[dict[str, str]]] = {}
        for e in edges:
            by_type.setdefault(check_edge_type(e.type), []).append({"src": e.src, "dst": e.dst})
        batches = [(_UPSERT_NODES, node_rows)] + [
            (_UPSERT_EDGES.format(rel_type=rel_type), rows) for rel_type, rows in sorted(by_type.items())
        ]
        for query, rows in batches:
            for start in range(0, len(rows), BATCH_ROWS):
                self._run(query, {"rows": rows[start : start + BATCH_ROWS]})

    def expand(
        self,
        seeds: Sequence[str],
        *,
        depth: int,
        limit: int,
        kinds: Sequence[str] | None = None,
    ) -> list[GraphHit]:
        """Nodes within ``depth`` hops of any seed, edges undirected.

        Same contract and bounds as :meth:`SqliteGraphStore.expand`: up to ``limit`` hits
        ordered by ``(distance, id)``, existing seeds at distance 0, ``kinds`` filters the
        returned nodes only.

        Raises:
            ValueError: ``depth`` outside 1..5 (checked before any query).
            BackendUnavailableError: the server went away.
        """
        check_depth(depth)
        self._ensure_schema()

        def walk(tx: Any) -> list[GraphHit]:
            def rows(query: str, **params: Any) -> list[Any]:
                return list(tx.run(query, params))

            return bounded_bfs(
                seeds,
                depth=depth,
                limit=limit,
                kinds=kinds,
                lookup=lambda ids: {r["id"]: r["kind"] for r in rows(_LOOKUP, ids=ids)},
                neighbours=lambda ids: {r["id"]: r["kind"] for r in rows(_NEIGHBOURS, ids=ids)},
                last_level=lambda ids, seen, wanted, k: [
                    (r["id"], r["kind"])
                    for r in rows(_LAST_LEVEL, ids=ids, seen=seen, kinds=wanted, k=k)
                ],
                max_frontier=self.max_frontier,
            )

        # One read transaction for every level: one BEGIN/COMMIT, not one per level.
        def call() -> list[GraphHit]:
            with self._driver.session(
                database=self.database, default_access_mode=self._neo4j.READ_ACCESS
            ) as session:
                return session.execute_read(walk)

        return self._execute(call)

    def get_nodes(self, ids: Sequence[str]) -> list[GraphNode]:
        """The nodes that exist among ``ids``, in no particular order."""
        if not ids:
            return []
        return [
            GraphNode(
                id=r["id"], kind=r["kind"], name=r["name"], properties=orjson.loads(r["props"] or "{}")
            )
            for r in self._run(_GET_NODES, {"ids": list(ids)}, read=True)
        ]

    def delete(self, ids: Sequence[str]) -> None:
        """Remove the nodes ``ids`` and their relationships, then former neighbours left
        with none. One write transaction; unknown ids are ignored.

        Raises:
            BackendUnavailableError: the server went away.
            BackendError: the server rejected the write.
        """
        if not ids:
            return
        self._ensure_schema()
        doomed = list(dict.fromkeys(ids))

        def work(tx: Any) -> None:
            near = [r["id"] for r in tx.run(_DELETE_NEIGHBOURS, {"ids": doomed})]
            tx.run(_DELETE_NODES, {"ids": doomed}).consume()
            tx.run(_DELETE_ORPHANS, {"ids": near}).consume()

        def call() -> None:
            with self._driver.session(database=self.database) as session:
                session.execute_write(work)

        self._execute(call)

    def counts(self) -> dict[str, int]:
        """``{"nodes": N, "edges": M}`` (placeholder endpoints without a kind not counted)."""
        nodes = self._run(_COUNT_NODES, {}, read=True)[0]["c"]
        edges = self._run(_COUNT_EDGES, {}, read=True)[0]["c"]
        return {"nodes": int(nodes), "edges": int(edges)}

    def clear(self) -> None:
        """Delete every node and relationship of the database (tests; Community has one db)."""
        self._ensure_schema()
        try:
            with self._driver.session(database=self.database) as session:
                session.run(_CLEAR).consume()
        except Exception as exc:
            self._raise_translated(exc, "clear")

    def close(self) -> None:
        """Close the driver and its connection pool."""
        self._driver.close()

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        for statement in _SCHEMA:
            self._execute(lambda s=statement: self._driver.execute_query(s, database_=self.database))
        self._schema_ready = True

    def _run(self, query: str, params: dict[str, Any], *, read: bool = False) -> list[Any]:
        self._ensure_schema()
        routing = self._neo4j.RoutingControl.READ if read else self._neo4j.RoutingControl.WRITE
        result = self._execute(
            lambda: self._driver.execute_query(
                query, params, database_=self.database, routing_=routing
            )
        )
        return list(result.records)

    def _execute(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except Exception as exc:
            self._raise_translated(exc, "query")

    def _raise_translated(self, exc: Exception, action: str) -> NoReturn:
        """Re-raise a driver exception as BackendUnavailableError / BackendError."""
        errors = self._neo4j.exceptions
        where = f"Neo4j at {redact_uri(self.uri)} (database {self.database!r})"
        detail = redact_uri(str(exc))
        if isinstance(exc, errors.ConfigurationError):
            raise ConfigError(f"{where}: {detail}") from exc
        if isinstance(exc, errors.AuthError):
            raise BackendUnavailableError(
                f"{where}: authentication failed during {action}: {detail}"
            ) from exc
        if isinstance(exc, (errors.ServiceUnavailable, errors.SessionExpired, OSError)):
            raise BackendUnavailableError(
                f"{where}: server unavailable during {action}: {detail}"
            ) from exc
        if isinstance(exc, (errors.Neo4jError, errors.DriverError)):
            raise BackendError(f"{where}: {action} failed: {detail}") from exc
        raise exc
