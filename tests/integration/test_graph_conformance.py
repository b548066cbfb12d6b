"""One conformance suite for every GraphStore implementation.

Parametrized over the embedded SQLite store (a temp file) and Neo4j
(``KOS_TEST_NEO4J_URI``; skipped when unset, failing under ``CI``). Community Neo4j has
one database, so every Neo4j test starts by clearing it.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge_os.errors import BackendUnavailableError, ConfigError, InputError
from knowledge_os.retrieval.base import GraphEdge, GraphHit, GraphNode, GraphStore
from knowledge_os.retrieval.factory import make_graph_store
from knowledge_os.settings import Settings

pytestmark = pytest.mark.integration

KINDS = ("document", "package", "cve", "bug", "person")


@pytest.fixture(params=["sqlite", "neo4j"])
def store(request: pytest.FixtureRequest, tmp_path: Path, require_service) -> Iterator[GraphStore]:
    if request.param == "sqlite":
        settings = Settings(home=tmp_path / "kos")
    else:
        uri = require_service("KOS_TEST_NEO4J_URI")
        settings = Settings(home=tmp_path / "kos", graph={"backend": "neo4j", "neo4j_uri": uri})
    graph = make_graph_store(settings)
    graph.clear()
    yield graph
    graph.close()


def _node(node_id: str, **props: object) -> GraphNode:
    kind, _, key = node_id.partition(":")
    return GraphNode(id=node_id, kind=kind, name=key, properties=props)


def _edge(src: str, dst: str, type: str = "MENTIONS") -> GraphEdge:
    return GraphEdge(src=src, dst=dst, type=type)


@pytest.fixture
def chain(store: GraphStore) -> GraphStore:
    """document:a -> package:p <- document:b <- person:x ; document:b -> bug:1."""
    store.upsert(
        [_node(i, n=1) for i in ("document:a", "document:b", "package:p", "person:x", "bug:1")],
        [
            _edge("document:a", "package:p"),
            _edge("document:b", "package:p", "ENTRY_OF"),
            _edge("person:x", "document:b", "AUTHORED"),
            _edge("document:b", "bug:1", "CLOSES"),
        ],
    )
    return store


def test_implements_protocol(store: GraphStore) -> None:
    assert isinstance(store, GraphStore)
    assert store.counts() == {"nodes": 0, "edges": 0}


def test_expand_orders_by_distance_then_id(chain: GraphStore) -> None:
    assert chain.expand(["document:a"], depth=3, limit=10) == [
        GraphHit(id="document:a", kind="document", distance=0),
        GraphHit(id="package:p", kind="package", distance=1),
        GraphHit(id="document:b", kind="document", distance=2),
        GraphHit(id="bug:1", kind="bug", distance=3),
        GraphHit(id="person:x", kind="person", distance=3),
    ]


def test_expand_depth_limit_kinds(chain: GraphStore) -> None:
    assert [h.id for h in chain.expand(["document:a"], depth=1, limit=10)] == ["document:a", "package:p"]
    assert [h.id for h in chain.expand(["document:a"], depth=3, limit=2)] == ["document:a", "package:p"]
    assert chain.expand(["document:a"], depth=3, limit=10, kinds=["person", "bug"]) == [
        GraphHit(id="bug:1", kind="bug", distance=3),
        GraphHit(id="person:x", kind="person", distance=3),
    ]
    assert chain.expand(["document:a"], depth=3, limit=0) == []


def test_expand_from_several_seeds_keeps_min_distance(chain: GraphStore) -> None:
    hits = chain.expand(["document:a", "person:x", "document:a"], depth=2, limit=10)
    assert {h.id: h.distance for h in hits} == {
        "document:a": 0, "person:x": 0, "package:p": 1, "document:b": 1, "bug:1": 2,
    }


def test_unknown_seeds_and_edges_to_missing_nodes(store: GraphStore) -> None:
    store.upsert([_node("package:q")], [_edge("ghost:1", "package:q")])
    assert store.counts() == {"nodes": 1, "edges": 1}
    assert store.expand(["nothing:here"], depth=2, limit=5) == []
    assert store.expand(["ghost:1"], depth=1, limit=5) == [
        GraphHit(id="package:q", kind="package", distance=1)
    ]
    assert store.expand(["package:q"], depth=2, limit=5) == [
        GraphHit(id="package:q", kind="package", distance=0)
    ]
    assert store.get_nodes(["ghost:1"]) == []
    # the missing endpoint arrives later: it becomes a normal node
    store.upsert([_node("ghost:1")], [])
    assert [h.id for h in store.expand(["package:q"], depth=1, limit=5)] == ["package:q", "ghost:1"]
    assert store.counts() == {"nodes": 2, "edges": 1}


@pytest.mark.parametrize("depth", [0, 6, -1, True, 2.5, "2"])
def test_bad_depth_raises_value_error(chain: GraphStore, depth: object) -> None:
    with pytest.raises(ValueError, match="depth"):
        chain.expand(["document:a"], depth=depth, limit=5)  # type: ignore[arg-type]


def test_upsert_is_idempotent_and_replaces_node_fields(store: GraphStore) -> None:
    edges = [_edge("document:a", "package:p")]
    store.upsert([_node("document:a", v=1), _node("package:p")], edges)
    store.upsert(
        [GraphNode(id="document:a", kind="document", name="renamed", properties={"v": 2, "t": ["x"]}),
         _node("package:p")],
        edges + edges,
    )
    assert store.counts() == {"nodes": 2, "edges": 1}
    (doc,) = store.get_nodes(["document:a"])
    assert (doc.name, dict(doc.properties)) == ("renamed", {"v": 2, "t": ["x"]})
    store.upsert([], [_edge("document:a", "package:p", "FIXES")])
    assert store.counts()["edges"] == 2
    assert sorted(n.id for n in store.get_nodes(["package:p", "document:a", "x:y"])) == [
        "document:a", "package:p",
    ]
    assert store.get_nodes([]) == []


def test_values_are_data_not_query_text(store: GraphStore) -> None:
    nasty = "document:x'}) DETACH DELETE n //\"; DROP TABLE nodes; --"
    store.upsert([_node(nasty, q="'\""), _node("package:p")], [_edge(nasty, "package:p", "MENTIONS")])
    assert [h.id for h in store.expand([nasty], depth=1, limit=5)] == [nasty, "package:p"]
    assert store.counts() == {"nodes": 2, "edges": 1}


@pytest.mark.parametrize("bad", ["", "HAS SPACE", "X`]->(y) DETACH DELETE y //", "1ST", "é"])
def test_edge_types_must_be_identifiers(store: GraphStore, bad: str) -> None:
    with pytest.raises(InputError, match="edge type"):
        store.upsert([_node("document:a")], [_edge("document:a", "package:p"), _edge("document:a", "package:p", bad)])
    assert store.counts() == {"nodes": 0, "edges": 0}


def test_large_batches(store: GraphStore) -> None:
    nodes = [_node(f"document:{i:05d}") for i in range(5000)] + [_node("person:hub")]
    edges = [_edge("person:hub", f"document:{i:05d}", "AUTHORED") for i in range(5000)]
    store.upsert(nodes, edges)
    assert store.counts() == {"nodes": 5001, "edges": 5000}
    hits = store.expand(["document:00000"], depth=2, limit=100)
    assert [h.id for h in hits[:3]] == ["document:00000", "person:hub", "document:00001"]
    assert len(hits) == 100 and hits[-1].id == "document:00098"


def _reference(adj: dict[str, set[str]], kinds: dict[str, str], seeds, depth, limit, want):
    dist: dict[str, int] = {}
    queue = deque()
    for s in seeds:
        if s not in dist:
            dist[s] = 0
            queue.append(s)
    while queue:
        cur = queue.popleft()
        if dist[cur] == depth:
            continue
        for nb in adj.get(cur, ()):
            if nb not in dist:
                dist[nb] = dist[cur] + 1
                queue.append(nb)
    hits = [GraphHit(id=i, kind=kinds[i], distance=d) for i, d in dist.items()
            if i in kinds and (want is None or kinds[i] in want)]
    return sorted(hits, key=lambda h: (h.distance, h.id))[:limit]


def test_matches_reference_bfs_on_random_graphs(store: GraphStore) -> None:
    rng = random.Random(20261122)
    ids = [f"{rng.choice(KINDS)}:{i}" for i in range(300)]
    kinds = {i: i.split(":")[0] for i in ids}
    edges = {(rng.choice(ids), rng.choice(ids), rng.choice(["MENTIONS", "FIXES"])) for _ in range(450)}
    edges |= {(f"ghost:{i}", rng.choice(ids), "MENTIONS") for i in range(10)}
    store.upsert([_node(i) for i in ids], [_edge(*e) for e in edges])
    adj: dict[str, set[str]] = {}
    for src, dst, _ in edges:
        adj.setdefault(src, set()).add(dst)
        adj.setdefault(dst, set()).add(src)
    for _ in range(25):
        seeds = rng.sample(ids, rng.randint(1, 3)) + (["ghost:3"] if rng.random() < 0.2 else [])
        depth = rng.randint(1, 5)
        limit = rng.choice([1, 5, 20, 1000])
        want = rng.choice([None, ["package"], ["cve", "bug"]])
        expected = _reference(adj, kinds, seeds, depth, limit, want)
        assert store.expand(seeds, depth=depth, limit=limit, kinds=want) == expected


def test_neo4j_unreachable_is_backend_unavailable(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        graph={"backend": "neo4j", "neo4j_uri": "bolt://127.0.0.1:1", "neo4j_password": "s3cret",
               "neo4j_connect_timeout_s": 2},
    )
    with pytest.raises(BackendUnavailableError, match=r"bolt://127\.0\.0\.1:1") as err:
        make_graph_store(settings)
    assert "s3cret" not in str(err.value)


def test_neo4j_uri_with_userinfo_is_a_config_error_without_the_secret(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, graph={"backend": "neo4j", "neo4j_uri": "bolt://kos:s3cret@h:1"})
    with pytest.raises(ConfigError, match=r"bolt://kos:\*\*\*@h:1") as err:
        make_graph_store(settings)
    assert "s3cret" not in str(err.value)


def test_delete_removes_nodes_their_edges_and_orphaned_neighbours(chain: GraphStore) -> None:
    chain.upsert([_node("cve:only-b")], [_edge("document:b", "cve:only-b", "FIXES"), _edge("ghost:9", "document:b")])
    chain.delete(["document:b", "never:existed"])
    # bug:1 and cve:only-b had no other edge: gone; person:x too; package:p keeps document:a.
    assert sorted(n.id for n in chain.get_nodes(
        ["document:a", "document:b", "package:p", "person:x", "bug:1", "cve:only-b"])) == ["document:a", "package:p"]
    assert chain.counts() == {"nodes": 2, "edges": 1}
    assert chain.expand(["package:p"], depth=2, limit=10) == [
        GraphHit(id="package:p", kind="package", distance=0),
        GraphHit(id="document:a", kind="document", distance=1),
    ]
    chain.delete([])
    chain.delete(["document:a"])
    assert chain.counts() == {"nodes": 0, "edges": 0}


def test_delete_then_upsert_replaces_a_nodes_edges(chain: GraphStore) -> None:
    """What ingest does for an updated document: its old edges go, the new ones stay."""
    chain.delete(["document:b"])
    chain.upsert([_node("document:b"), _node("package:p")], [_edge("document:b", "package:p", "ENTRY_OF")])
    assert [h.id for h in chain.expand(["document:b"], depth=1, limit=10)] == ["document:b", "package:p"]
    assert chain.counts() == {"nodes": 3, "edges": 2}
