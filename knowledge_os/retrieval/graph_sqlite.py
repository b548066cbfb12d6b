"""Embedded graph store in SQLite (stdlib ``sqlite3``), the default :class:`GraphStore`.

Schema (in the shared ``kos.db``, WAL journal)::

    nodes(id TEXT PRIMARY KEY, kind TEXT, name TEXT, properties TEXT /* JSON */) WITHOUT ROWID
    edges(src TEXT, dst TEXT, type TEXT, PRIMARY KEY (src, dst, type)) WITHOUT ROWID
    index edges_dst_src ON edges(dst, src)   -- the primary key already serves lookups by src

Expansion is a breadth-first walk, one set-based SQL statement per level, not one
recursive CTE. A recursive CTE over undirected edges enumerates paths: through a hub (a
maintainer with 2,000 documents) depth 3 yields millions of rows before ``DISTINCT``.
The level-wise walk touches each edge at most once per direction, and is bounded:

* **Early stop** - results are ordered by ``(distance, id)``, so once ``limit`` matching
  nodes are known at distance <= d, deeper levels cannot change the answer; the walk stops.
* **Last-level push-down** - the nodes of the last level walked are only returned, never
  expanded, so that level asks the store for just the ``limit - found`` smallest unseen
  ids of the wanted kinds (``ORDER BY id LIMIT k`` in SQL) instead of every neighbour.
* **Frontier cap** - when a level's frontier holds more than ``max_frontier`` nodes
  (default 10,000), only the first ``max_frontier`` by id are expanded and the walk ends
  after that level. Returned distances stay exact minimum hop counts; only the set of
  nodes beyond the capped level may be incomplete (logged at DEBUG).

:func:`bounded_bfs` holds that walk, independent of storage; the Neo4j store uses it too,
which is how both stores return the same hits on the same data.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from knowledge_os._sqlite import open_sqlite
from knowledge_os.errors import BackendUnavailableError, InputError
from knowledge_os.retrieval.base import GraphEdge, GraphHit, GraphNode

__all__ = [
    "DEFAULT_MAX_FRONTIER",
    "MAX_DEPTH",
    "SqliteGraphStore",
    "bounded_bfs",
    "check_depth",
    "check_edge_type",
]

logger = logging.getLogger(__name__)

MAX_DEPTH = 5
_EDGE_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

LastLevel = Callable[[list[str], list[str], "list[str] | None", int], Sequence[tuple[str, str]]]
DEFAULT_MAX_FRONTIER = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nodes_kind ON nodes(kind);
CREATE TABLE IF NOT EXISTS edges (
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (src, dst, type)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_dst_src ON edges(dst, src);
"""

# One BFS level: neighbours of the frontier over edges in both directions, with their
# kind (NULL when an edge points at an id that has no node row). The frontier arrives as
# one JSON array, so there is no bound-parameter limit and no SQL built from values.
_NEIGHBOURS_SQL = """
WITH f(id) AS (SELECT value FROM json_each(?1)),
nb(id) AS (
    SELECT e.dst FROM f CROSS JOIN edges AS e ON e.src = f.id
    UNION
    SELECT e.src FROM f CROSS JOIN edges AS e ON e.dst = f.id
)
SELECT nb.id, n.kind FROM nb LEFT JOIN nodes AS n ON n.id = nb.id
"""

# The last level: only unseen neighbours with a node row and a wanted kind, the k
# smallest ids (?2 = seen ids, ?3 = kinds or NULL, ?4 = k).
_LAST_LEVEL_SQL = """
WITH f(id) AS (SELECT value FROM json_each(?1)),
nb(id) AS (
    SELECT e.dst FROM f CROSS JOIN edges AS e ON e.src = f.id
    UNION
    SELECT e.src FROM f CROSS JOIN edges AS e ON e.dst = f.id
)
SELECT nb.id, n.kind FROM nb JOIN nodes AS n ON n.id = nb.id
WHERE nb.id NOT IN (SELECT value FROM json_each(?2))
  AND (?3 IS NULL OR n.kind IN (SELECT value FROM json_each(?3)))
ORDER BY nb.id
LIMIT ?4
"""

_KINDS_SQL = "SELECT id, kind FROM nodes WHERE id IN (SELECT value FROM json_each(?1))"

_UPSERT_NODE_SQL = """
INSERT INTO nodes (id, kind, name, properties) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, properties = excluded.properties
"""

_INSERT_EDGE_SQL = "INSERT OR IGNORE INTO edges (src, dst, type) VALUES (?, ?, ?)"

# delete(): ?1 = the ids (a JSON array). Neighbours first, then edges and nodes, then the
# neighbours left without any edge.
_DELETE_NEIGHBOURS_SQL = """
WITH d(id) AS (SELECT value FROM json_each(?1))
SELECT e.dst FROM d CROSS JOIN edges AS e ON e.src = d.id
UNION
SELECT e.src FROM d CROSS JOIN edges AS e ON e.dst = d.id
"""
_DELETE_EDGES_SQL = """
DELETE FROM edges WHERE src IN (SELECT value FROM json_each(?1))
                     OR dst IN (SELECT value FROM json_each(?1))
"""
_DELETE_NODES_SQL = "DELETE FROM nodes WHERE id IN (SELECT value FROM json_each(?1))"
_DELETE_ORPHANS_SQL = """
DELETE FROM nodes WHERE id IN (SELECT value FROM json_each(?1))
  AND NOT EXISTS (SELECT 1 FROM edges WHERE src = nodes.id)
  AND NOT EXISTS (SELECT 1 FROM edges WHERE dst = nodes.id)
"""


def check_edge_type(edge_type: str) -> str:
    """Validate an edge type: an identifier ``[A-Za-z_][A-Za-z0-9_]*``, at most 64 chars
    (``MENTIONS``, ``ENTRY_OF`` ...). Both stores apply it, so both accept the same edges.

    Raises:
        InputError: any other string.
    """
    if not _EDGE_TYPE.fullmatch(edge_type):
        raise InputError(f"edge type must match [A-Za-z_][A-Za-z0-9_]{{0,63}}, got {edge_type!r}")
    return edge_type


def check_depth(depth: object) -> int:
    """Validate an expansion depth.

    Returns:
        ``depth`` as an int in 1..MAX_DEPTH.

    Raises:
        ValueError: ``depth`` is not an int (bools rejected) or is outside 1..5.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be an int in 1..{MAX_DEPTH}, got {depth!r}")
    return depth


def bounded_bfs(
    seeds: Sequence[str],
    *,
    depth: int,
    limit: int,
    kinds: Sequence[str] | None,
    lookup: Callable[[list[str]], Mapping[str, str]],
    neighbours: Callable[[list[str]], Mapping[str, str | None]],
    last_level: LastLevel | None = None,
    max_frontier: int = DEFAULT_MAX_FRONTIER,
) -> list[GraphHit]:
    """Level-wise breadth-first expansion over undirected edges (see the module docstring).

    Args:
        seeds: Start node ids; duplicates ignored; ids without a node row are walked
            from but not returned.
        depth: Hops, 1..5.
        limit: Maximum hits returned; <= 0 returns ``[]``.
        kinds: Keep only returned nodes of these kinds (the walk itself is not filtered);
            None keeps all.
        lookup: ``ids -> {id: kind}`` for the ids that have a node row.
        neighbours: ``frontier ids -> {neighbour id: kind or None}`` over edges in both
            directions (None = no node row; walked through, never returned).
        last_level: Optional push-down for the last level walked, whose new nodes are only
            returned, never expanded: ``(frontier, seen ids, kinds or None, k) -> up to k
            (id, kind) pairs`` of unseen neighbours with a node row and a wanted kind,
            ascending id. Without it ``neighbours`` is used and filtered here.
        max_frontier: Most frontier nodes expanded per level, >= 1.

    Returns:
        Up to ``limit`` hits ordered by ``(distance, id)``, distance = minimum hop count.

    Raises:
        ValueError: ``depth`` outside 1..5 or ``max_frontier`` < 1.
    """
    check_depth(depth)
    if max_frontier < 1:
        raise ValueError(f"max_frontier must be >= 1, got {max_frontier}")
    if limit <= 0:
        return []
    wanted = None if kinds is None else sorted(set(kinds))
    wanted_set = None if wanted is None else frozenset(wanted)
    start = list(dict.fromkeys(seeds))
    if not start:
        return []
    seen: set[str] = set(start)
    # (distance, id, kind); GraphHit objects are built for the returned ones only.
    hits = [
        (0, node_id, kind)
        for node_id, kind in lookup(start).items()
        if wanted_set is None or kind in wanted_set
    ]
    frontier = sorted(start)
    for level in range(1, depth + 1):
        if len(hits) >= limit or not frontier:
            break
        capped = len(frontier) > max_frontier
        if capped:
            logger.debug(
                "graph expansion: frontier of %d nodes at level %d capped to %d; stopping after it",
                len(frontier),
                level - 1,
                max_frontier,
            )
            frontier = frontier[:max_frontier]
        if last_level is not None and (capped or level == depth):
            need = limit - len(hits)
            hits.extend((level, i, k) for i, k in last_level(frontier, sorted(seen), wanted, need))
            break
        found = {k: v for k, v in neighbours(frontier).items() if k not in seen}
        seen.update(found)
        hits.extend(
            (level, node_id, kind)
            for node_id, kind in found.items()
            if kind is not None and (wanted_set is None or kind in wanted_set)
        )
        frontier = sorted(found)
        if capped:
            break
    hits.sort()
    return [GraphHit(id=i, kind=k, distance=d) for d, i, k in hits[:limit]]


def _dumps(properties: Mapping[str, Any]) -> str:
    return orjson.dumps(dict(properties), option=orjson.OPT_SORT_KEYS).decode()


def _json_list(ids: Iterable[str]) -> str:
    return orjson.dumps(list(ids)).decode()


class SqliteGraphStore:
    """:class:`~knowledge_os.retrieval.base.GraphStore` in one SQLite file.

    One connection per store (``check_same_thread=False``) guarded by a lock: safe to
    share between the threads of one process; other processes may read the same file
    (WAL) and writers wait up to ``busy_timeout_s``.

    Args:
        path: The SQLite file (parents must exist), or ``":memory:"``.
        max_frontier: Expansion frontier cap per level (see the module docstring).
        busy_timeout_s: How long a statement waits for another writer's lock, seconds.

    Raises:
        BackendUnavailableError: the file cannot be opened or the schema cannot be created.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        max_frontier: int = DEFAULT_MAX_FRONTIER,
        busy_timeout_s: float = 30.0,
    ) -> None:
        if max_frontier < 1:
            raise ValueError(f"max_frontier must be >= 1, got {max_frontier}")
        self.path = str(path)
        self.max_frontier = max_frontier
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, schema=_SCHEMA, what="graph store", busy_timeout_s=busy_timeout_s)

    def upsert(self, nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]) -> None:
        """MERGE nodes by id (kind, name, properties replaced) and edges by (src, dst, type).

        One transaction; idempotent. Edges may name ids that have no node row yet: they
        are walked through by :meth:`expand` but such ids are never returned.

        Raises:
            InputError: an edge type is not an identifier (see :func:`check_edge_type`).
            BackendUnavailableError: SQLite failed (locked past the busy timeout, disk full).
        """
        node_rows = [(n.id, n.kind, n.name, _dumps(n.properties)) for n in nodes]
        edge_rows = [(e.src, e.dst, check_edge_type(e.type)) for e in edges]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(_UPSERT_NODE_SQL, node_rows)
                    self._conn.executemany(_INSERT_EDGE_SQL, edge_rows)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BackendUnavailableError(f"graph upsert failed in {self.path}: {exc}") from exc

    def expand(
        self,
        seeds: Sequence[str],
        *,
        depth: int,
        limit: int,
        kinds: Sequence[str] | None = None,
    ) -> list[GraphHit]:
        """Nodes within ``depth`` hops of any seed, edges undirected.

        Args:
            seeds: Start node ids.
            depth: Hops, 1..5.
            limit: Maximum hits returned.
            kinds: Keep only returned nodes of these kinds; None keeps all.

        Returns:
            Up to ``limit`` hits ordered by ``(distance, id)``; existing seeds at distance 0.

        Raises:
            ValueError: ``depth`` outside 1..5.
            BackendUnavailableError: SQLite failed.
        """
        return bounded_bfs(
            seeds,
            depth=depth,
            limit=limit,
            kinds=kinds,
            lookup=self._kinds_of,
            neighbours=self._neighbours,
            last_level=self._last_level,
            max_frontier=self.max_frontier,
        )

    def get_nodes(self, ids: Sequence[str]) -> list[GraphNode]:
        """The nodes that exist among ``ids``, in no particular order."""
        if not ids:
            return []
        rows = self._query(
            "SELECT id, kind, name, properties FROM nodes "
            "WHERE id IN (SELECT value FROM json_each(?1))",
            (_json_list(ids),),
        )
        return [
            GraphNode(id=r[0], kind=r[1], name=r[2], properties=orjson.loads(r[3])) for r in rows
        ]

    def delete(self, ids: Sequence[str]) -> None:
        """Remove the nodes ``ids`` and their edges, then former neighbours left with no
        edge. One transaction; unknown ids are ignored.

        Raises:
            BackendUnavailableError: SQLite failed.
        """
        if not ids:
            return
        doomed = _json_list(ids)
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    near = [r[0] for r in self._conn.execute(_DELETE_NEIGHBOURS_SQL, (doomed,))]
                    self._conn.execute(_DELETE_EDGES_SQL, (doomed,))
                    self._conn.execute(_DELETE_NODES_SQL, (doomed,))
                    self._conn.execute(_DELETE_ORPHANS_SQL, (_json_list(near),))
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BackendUnavailableError(f"graph delete failed in {self.path}: {exc}") from exc

    def counts(self) -> dict[str, int]:
        """``{"nodes": N, "edges": M}``."""
        (nodes,) = self._query("SELECT count(*) FROM nodes", ())[0]
        (edges,) = self._query("SELECT count(*) FROM edges", ())[0]
        return {"nodes": int(nodes), "edges": int(edges)}

    def clear(self) -> None:
        """Delete every node and edge (tests, re-ingest from scratch)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM edges")
            self._conn.execute("DELETE FROM nodes")
            self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection; further calls fail."""
        with self._lock:
            self._conn.close()

    def _kinds_of(self, ids: list[str]) -> dict[str, str]:
        return dict(self._query(_KINDS_SQL, (_json_list(ids),)))

    def _neighbours(self, frontier: list[str]) -> dict[str, str | None]:
        return dict(self._query(_NEIGHBOURS_SQL, (_json_list(frontier),)))

    def _last_level(
        self, frontier: list[str], seen: list[str], kinds: list[str] | None, k: int
    ) -> list[tuple[str, str]]:
        params = (
            _json_list(frontier),
            _json_list(seen),
            None if kinds is None else _json_list(kinds),
            k,
        )
        return [(r[0], r[1]) for r in self._query(_LAST_LEVEL_SQL, params)]

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise BackendUnavailableError(f"graph query failed in {self.path}: {exc}") from exc
