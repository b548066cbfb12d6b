"""k-hop expansion latency: the embedded SQLite store vs Neo4j, side by side.

Graph: the real ingested graph when ``.kos/kos.db`` holds one (``--db`` to point
elsewhere), otherwise a synthetic graph shaped like the Debian-changelog corpus: 30,000
documents, 700 packages with Zipf-like entry counts, 300 maintainers (one hub authoring
~2,000 documents), 2,500 CVEs, 1,500 bugs, ~100k edges. Neo4j is measured when
``KOS_TEST_NEO4J_URI`` (or ``--neo4j-uri``) is set; its database is CLEARED first, so
point it at a test server only (``scripts/services/neo4j.sh start``).

Run: ``python benchmarks/bench_graph.py [--queries 60] [--limit 50]``. Prints p50/p95
per depth (1, 2, 3) for each store and the Neo4j/SQLite ratio. A figure, not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge_os.retrieval.base import GraphEdge, GraphNode, GraphStore  # noqa: E402
from knowledge_os.retrieval.graph_sqlite import SqliteGraphStore  # noqa: E402


def synthetic_graph(seed: int = 7) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Corpus-shaped graph (see the module docstring); deterministic for ``seed``."""
    rng = random.Random(seed)
    packages = [f"package:p{i}" for i in range(700)]
    people = [f"person:m{i}" for i in range(300)]
    cves = [f"cve:CVE-2024-{i}" for i in range(2500)]
    bugs = [f"bug:{1_000_000 + i}" for i in range(1500)]
    nodes = [GraphNode(id=i, kind=i.split(":")[0], name=i.split(":")[1])
             for i in packages + people + cves + bugs]
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(packages))]  # Zipf-like entries
    edges: list[GraphEdge] = []
    for d in range(30_000):
        doc = f"document:{d:06d}"
        nodes.append(GraphNode(id=doc, kind="document", name=doc, properties={"n": d}))
        pkg = rng.choices(packages, weights)[0]
        edges.append(GraphEdge(src=doc, dst=pkg, type="ENTRY_OF"))
        author = people[0] if d % 15 == 0 else people[min(int(rng.paretovariate(1.2)), 299)]
        edges.append(GraphEdge(src=author, dst=doc, type="AUTHORED"))
        for _ in range(rng.choice((0, 0, 1, 2))):
            edges.append(GraphEdge(src=doc, dst=rng.choice(cves), type="FIXES"))
        for _ in range(rng.choice((0, 1, 1, 2))):
            edges.append(GraphEdge(src=doc, dst=rng.choice(bugs), type="CLOSES"))
    for pkg in packages:
        edges.append(GraphEdge(src=rng.choice(people), dst=pkg, type="MAINTAINS"))
    return nodes, edges


def real_graph(db: Path) -> tuple[list[GraphNode], list[GraphEdge]] | None:
    """Nodes and edges of an ingested ``kos.db``, or None if it holds no graph."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        nodes = [GraphNode(id=r[0], kind=r[1], name=r[2])
                 for r in conn.execute("SELECT id, kind, name FROM nodes")]
        edges = [GraphEdge(src=r[0], dst=r[1], type=r[2])
                 for r in conn.execute("SELECT src, dst, type FROM edges")]
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return (nodes, edges) if nodes and edges else None


def pick_seeds(nodes: list[GraphNode], edges: list[GraphEdge], n: int, seed: int = 11) -> list[str]:
    """A query mix: half documents, the rest entities, always including the top hub."""
    rng = random.Random(seed)
    degree: dict[str, int] = {}
    for e in edges:
        degree[e.src] = degree.get(e.src, 0) + 1
        degree[e.dst] = degree.get(e.dst, 0) + 1
    by_kind: dict[str, list[str]] = {}
    for node in nodes:
        by_kind.setdefault(node.kind, []).append(node.id)
    docs = by_kind.get("document", [])
    entities = [i for k, ids in by_kind.items() if k != "document" for i in ids]
    hub = max(degree, key=degree.__getitem__)
    seeds = [hub]
    while len(seeds) < n:
        pool = docs if (len(seeds) % 2 and docs) else (entities or docs)
        seeds.append(rng.choice(pool))
    return seeds


def measure(store: GraphStore, seeds: list[str], depth: int, limit: int) -> tuple[float, float, float]:
    """(p50 ms, p95 ms, mean hits) over one expand per seed, after one warm-up pass."""
    for s in seeds[:5]:
        store.expand([s], depth=depth, limit=limit)
    times, hits = [], []
    for s in seeds:
        start = time.perf_counter()
        result = store.expand([s], depth=depth, limit=limit)
        times.append((time.perf_counter() - start) * 1000)
        hits.append(len(result))
    q = statistics.quantiles(times, n=20, method="inclusive")
    return statistics.median(times), q[18], statistics.fmean(hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path(".kos/kos.db"))
    parser.add_argument("--synthetic", action="store_true", help="ignore --db, use the synthetic graph")
    parser.add_argument("--neo4j-uri", default=os.environ.get("KOS_TEST_NEO4J_URI"))
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()

    graph = None if args.synthetic or not args.db.exists() else real_graph(args.db)
    source = f"real graph from {args.db}" if graph else "synthetic corpus-shaped graph"
    nodes, edges = graph or synthetic_graph()
    seeds = pick_seeds(nodes, edges, args.queries)
    print(f"{source}: {len(nodes):,} nodes, {len(edges):,} edges; {len(seeds)} queries, "
          f"limit {args.limit}")

    stores: dict[str, GraphStore] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_store = SqliteGraphStore(Path(tmp) / "bench.db")
        start = time.perf_counter()
        sqlite_store.upsert(nodes, edges)
        print(f"sqlite: loaded in {time.perf_counter() - start:.1f} s")
        stores["sqlite"] = sqlite_store
        if args.neo4j_uri:
            from knowledge_os.retrieval.graph_neo4j import Neo4jGraphStore

            neo = Neo4jGraphStore(args.neo4j_uri)
            neo.clear()
            start = time.perf_counter()
            neo.upsert(nodes, edges)
            print(f"neo4j: loaded in {time.perf_counter() - start:.1f} s ({neo.counts()})")
            stores["neo4j"] = neo
        else:
            print("neo4j: skipped (set KOS_TEST_NEO4J_URI)")

        header = f"{'depth':>5} | " + " | ".join(
            f"{name + ' p50':>12} {name + ' p95':>12} {'hits':>6}" for name in stores
        )
        if "neo4j" in stores:
            header += f" | {'p50 ratio neo4j/sqlite':>22}"
        print(header)
        print("-" * len(header))
        for depth in (1, 2, 3):
            row, p50s = [], {}
            for name, store in stores.items():
                p50, p95, hits = measure(store, seeds, depth, args.limit)
                p50s[name] = p50
                row.append(f"{p50:>9.2f} ms {p95:>9.2f} ms {hits:>6.1f}")
            line = f"{depth:>5} | " + " | ".join(row)
            if "neo4j" in stores:
                line += f" | {p50s['neo4j'] / p50s['sqlite']:>21.2f}x"
            print(line)
        for store in stores.values():
            store.close()


if __name__ == "__main__":
    main()
