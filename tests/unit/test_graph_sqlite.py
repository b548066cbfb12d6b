"""Unit tests of the embedded SQLite graph store and the shared bounded walk."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from knowledge_os.retrieval.base import GraphEdge, GraphHit, GraphNode, GraphStore
from knowledge_os.retrieval.graph_sqlite import SqliteGraphStore, bounded_bfs


def _node(node_id: str, **props: object) -> GraphNode:
    kind, _, key = node_id.partition(":")
    return GraphNode(id=node_id, kind=kind, name=key, properties=props)


@pytest.fixture
def store(tmp_path: Path) -> SqliteGraphStore:
    s = SqliteGraphStore(tmp_path / "kos.db")
    yield s
    s.close()


@pytest.fixture
def chain(store: SqliteGraphStore) -> SqliteGraphStore:
    """doc:a -MENTIONS-> package:p <-MENTIONS- doc:b -AUTHORED- person:x ; doc:b -CLOSES-> bug:1."""
    nodes = [_node(i) for i in ("document:a", "document:b", "package:p", "person:x", "bug:1")]
    edges = [
        GraphEdge(src="document:a", dst="package:p", type="MENTIONS"),
        GraphEdge(src="document:b", dst="package:p", type="MENTIONS"),
        GraphEdge(src="person:x", dst="document:b", type="AUTHORED"),
        GraphEdge(src="document:b", dst="bug:1", type="CLOSES"),
    ]
    store.upsert(nodes, edges)
    return store


def test_is_a_graph_store(store: SqliteGraphStore) -> None:
    assert isinstance(store, GraphStore)


def test_expand_orders_by_distance_then_id_and_walks_both_directions(chain) -> None:
    hits = chain.expand(["document:a"], depth=3, limit=10)
    assert hits == [
        GraphHit(id="document:a", kind="document", distance=0),
        GraphHit(id="package:p", kind="package", distance=1),
        GraphHit(id="document:b", kind="document", distance=2),
        GraphHit(id="bug:1", kind="bug", distance=3),
        GraphHit(id="person:x", kind="person", distance=3),
    ]


def test_expand_depth_bounds_the_walk(chain) -> None:
    assert [h.id for h in chain.expand(["document:a"], depth=1, limit=10)] == [
        "document:a",
        "package:p",
    ]


def test_expand_min_distance_from_nearest_seed(chain) -> None:
    hits = chain.expand(["document:a", "person:x"], depth=2, limit=10)
    assert {h.id: h.distance for h in hits} == {
        "document:a": 0,
        "person:x": 0,
        "package:p": 1,
        "document:b": 1,
        "bug:1": 2,
    }


def test_expand_kinds_filters_results_not_walk(chain) -> None:
    hits = chain.expand(["document:a"], depth=3, limit=10, kinds=["person"])
    assert hits == [GraphHit(id="person:x", kind="person", distance=3)]


def test_expand_limit_keeps_nearest(chain) -> None:
    assert [h.id for h in chain.expand(["document:a"], depth=3, limit=3)] == [
        "document:a",
        "package:p",
        "document:b",
    ]
    assert chain.expand(["document:a"], depth=3, limit=0) == []


def test_expand_unknown_seed_and_dangling_edge(store: SqliteGraphStore) -> None:
    store.upsert([_node("package:q")], [GraphEdge(src="ghost:1", dst="package:q", type="X")])
    assert store.expand(["nothing:here"], depth=2, limit=5) == []
    # A seed without a node row is walked from but not returned.
    assert store.expand(["ghost:1"], depth=1, limit=5) == [
        GraphHit(id="package:q", kind="package", distance=1)
    ]


@pytest.mark.parametrize("depth", [0, 6, -1, True, 2.0, "2"])
def test_expand_rejects_bad_depth(chain, depth) -> None:
    with pytest.raises(ValueError, match="depth"):
        chain.expand(["document:a"], depth=depth, limit=5)


def test_upsert_is_idempotent_and_updates(store: SqliteGraphStore) -> None:
    edges = [GraphEdge(src="document:a", dst="package:p", type="MENTIONS")]
    store.upsert([_node("document:a", v=1), _node("package:p")], edges)
    store.upsert([_node("document:a", v=2), _node("package:p")], edges + edges)
    assert store.counts() == {"nodes": 2, "edges": 1}
    (doc,) = store.get_nodes(["document:a"])
    assert doc.properties == {"v": 2}
    # A second edge type between the same nodes is a second edge.
    store.upsert([], [GraphEdge(src="document:a", dst="package:p", type="FIXES")])
    assert store.counts()["edges"] == 2


def test_get_nodes_returns_existing_only(chain) -> None:
    got = chain.get_nodes(["package:p", "missing:1"])
    assert [(n.id, n.kind, n.name) for n in got] == [("package:p", "package", "p")]
    assert chain.get_nodes([]) == []


def test_upsert_failure_rolls_back(store: SqliteGraphStore) -> None:
    with pytest.raises(TypeError):
        store.upsert([_node("document:a"), _node("document:b", bad=object())], [])
    assert store.counts() == {"nodes": 0, "edges": 0}


def test_reopen_keeps_data(tmp_path: Path) -> None:
    s = SqliteGraphStore(tmp_path / "g.db")
    s.upsert([_node("package:p")], [])
    s.close()
    s2 = SqliteGraphStore(tmp_path / "g.db")
    assert s2.counts()["nodes"] == 1
    s2.close()


def test_bounded_bfs_frontier_cap_keeps_distances_exact() -> None:
    # star: hub -- leaf0..leaf9, each leaf -- tail<i>
    adj: dict[str, set[str]] = {"hub": set()}
    for i in range(10):
        leaf, tail = f"leaf{i}", f"tail{i}"
        adj.setdefault(leaf, set()).update({"hub", tail})
        adj["hub"].add(leaf)
        adj.setdefault(tail, set()).add(leaf)

    def neighbours(frontier: list[str]) -> dict[str, str]:
        return {n: "k" for f in frontier for n in adj.get(f, ())}

    hits = bounded_bfs(
        ["hub"], depth=5, limit=100, kinds=None,
        lookup=lambda ids: {i: "k" for i in ids if i in adj},
        neighbours=neighbours, max_frontier=3,
    )
    # level 1 (10 leaves) exceeds the cap: 3 leaves expanded, walk stops after level 2.
    assert [(h.id, h.distance) for h in hits] == (
        [("hub", 0)] + [(f"leaf{i}", 1) for i in range(10)] + [(f"tail{i}", 2) for i in range(3)]
    )


def test_hub_graph_expansion_is_fast(store: SqliteGraphStore) -> None:
    """A maintainer with 2,000 documents across 50 packages; depth 4 reaches all via the hub."""
    nodes = [_node("person:hub")]
    edges = []
    for d in range(2000):
        doc, pkg = f"document:{d:05d}", f"package:p{d % 50}"
        nodes.append(_node(doc))
        edges += [
            GraphEdge(src="person:hub", dst=doc, type="AUTHORED"),
            GraphEdge(src=doc, dst=pkg, type="ENTRY_OF"),
            GraphEdge(src=doc, dst=f"cve:CVE-{d}", type="FIXES"),
        ]
        nodes.append(_node(f"cve:CVE-{d}"))
    nodes += [_node(f"package:p{i}") for i in range(50)]
    store.upsert(nodes, edges)
    start = time.perf_counter()
    hits = store.expand(["package:p0"], depth=4, limit=100_000)
    elapsed = time.perf_counter() - start
    assert len(hits) == len(nodes)
    assert {h.id: h.distance for h in hits}["person:hub"] == 2
    assert elapsed < 2.0


def test_concurrent_threads_share_one_store(chain) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(20):
                chain.upsert([_node(f"tag:t{i}-{j}")], [])
                assert chain.expand(["document:a"], depth=2, limit=5)
        except BaseException as exc:  # noqa: BLE001 - collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert chain.counts()["nodes"] == 5 + 80
