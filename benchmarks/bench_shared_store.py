"""The shared stores on PostgreSQL against the embedded ones, side by side.

Usage::

    python benchmarks/bench_shared_store.py --dsn postgresql://postgres@127.0.0.1:5433/kos_bench --home .kos

Figures, not a pass/fail test; the database's document, embedding and corpus tables are
emptied first, so give it a database of its own.

1. Documents: the SQLite corpus of ``--home`` copied into the PostgreSQL document store
   (wall and CPU s); for each query of :data:`QUERIES`, both stores' top-10 full-text
   hits (top-1 equal? how many of the 10 shared?) and the latency of ``search_text``
   (median and max over ``--repeat`` calls, interleaved SQLite / PostgreSQL).
2. Shared embeddings (``vectors.backend=postgres_edge``): host A writes ``--points``
   random 384-d unit vectors (random: the copy and HNSW build do not depend on what the
   vectors mean) in batches of 256; host B, new, opens its store: the time to copy every
   vector into its qdrant-edge index and build HNSW; then the cost of the check an
   up-to-date host makes before a search (one read), and of a search.

The load average is printed before and after: on the shared 2-core machine a latency is
only meaningful next to it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from knowledge_os.retrieval.base import VectorPoint
from knowledge_os.retrieval.factory import make_document_store, make_vector_store
from knowledge_os.settings import Settings

QUERIES = [
    "CVE-2024-6387", "openssh CVE-2024-6387", "what changed in openssl since March", "CVE-2023-4806 glibc",
    "#1055473", "security fix buffer overflow", "systemd regression", "curl CVE-2024-2398 http2",
    "python3 upgrade new upstream", "libxml2 use after free", "что изменилось в openssl", "3.0.11-1",
]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def empty(dsn: str) -> None:
    import psycopg

    from knowledge_os.db.sync import upgrade_once

    upgrade_once(Settings(postgres={"dsn": dsn}))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE kos_documents, kos_doc_entities, kos_package_aliases, kos_corpus_meta, "
                     "kos_embeddings, kos_embedding_deletes")


def documents(dsn: str, home: Path, repeat: int) -> None:
    sqlite = make_document_store(Settings(home=home))
    pg = make_document_store(Settings(home=home, storage={"documents": "postgres"}, postgres={"dsn": dsn}))
    docs = list(sqlite.iter_documents())
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(docs), 256):
        pg.upsert(docs[i : i + 256])
    pg.add_aliases([(a, c) for a, c in sqlite.channels().items() if a != c])
    print(f"documents: {len(docs)} copied into PostgreSQL in {time.perf_counter() - wall:.1f} s wall, "
          f"{time.process_time() - cpu:.1f} s CPU (this process)")
    print(f"{'query':42} {'top-1 same':>10} {'shared@10':>9} {'sqlite ms p50/max':>18} {'postgres ms p50/max':>20}")
    for q in QUERIES:
        times: dict[str, list[float]] = {"s": [], "p": []}
        for _ in range(repeat):
            for key, store in (("s", sqlite), ("p", pg)):
                t = time.perf_counter()
                hits = store.search_text(q, limit=10)
                times[key].append((time.perf_counter() - t) * 1000)
                if key == "s":
                    a = [i for i, _ in hits]
                else:
                    b = [i for i, _ in hits]
        same = "yes" if a[:1] == b[:1] else "no"
        print(f"{q!r:42} {same:>10} {len(set(a) & set(b)):>4}/{len(a):<4} "
              f"{statistics.median(times['s']):8.1f}/{max(times['s']):<8.1f} "
              f"{statistics.median(times['p']):9.1f}/{max(times['p']):<9.1f}")
    sqlite.close()
    pg.close()


def embeddings(dsn: str, n: int, repeat: int) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tmp = Path(tempfile.mkdtemp(prefix="kos-bench-shared-"))
    try:
        def settings(name: str) -> Settings:
            return Settings(home=tmp / name, postgres={"dsn": dsn},
                            vectors={"backend": "postgres_edge", "shared_check_s": 0})

        a = make_vector_store(settings("a"), 384)
        wall = time.perf_counter()
        for i in range(0, n, 256):
            a.upsert([VectorPoint(id=f"doc:{j}", vector=vectors[j], payload={"channel": f"c{j % 50}", "ts": j,
                                                                               "source": "debian"})
                      for j in range(i, min(n, i + 256))])
        a.optimize()
        print(f"embeddings: host A wrote {n} x 384 float32 (PostgreSQL + its own index, HNSW built) in "
              f"{time.perf_counter() - wall:.1f} s")
        wall, cpu = time.perf_counter(), time.process_time()
        b = make_vector_store(settings("b"), 384)
        print(f"embeddings: new host B copied them and built its HNSW graph in {time.perf_counter() - wall:.1f} s "
              f"wall, {time.process_time() - cpu:.1f} s CPU")
        checks, searches = [], []
        for k in range(repeat):
            t = time.perf_counter()
            assert b.sync() == 0
            checks.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            hits = b.search(vectors[k], top_k=10)
            searches.append((time.perf_counter() - t) * 1000)
            assert hits[0].id == f"doc:{k}"
        print(f"embeddings: up-to-date check (one read) p50 {statistics.median(checks):.2f} ms, max {max(checks):.2f} ms; "
              f"search with the check p50 {statistics.median(searches):.2f} ms, max {max(searches):.2f} ms")
        a.close()
        b.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="A PostgreSQL database of the benchmark's own.")
    parser.add_argument("--home", type=Path, default=Path(".kos"), help="KOS_HOME with an ingested SQLite corpus.")
    parser.add_argument("--points", type=int, default=9_609, help="Vectors in part 2 (the real corpus' size).")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {loadavg()}")
    empty(args.dsn)
    documents(args.dsn, args.home, args.repeat)
    embeddings(args.dsn, args.points, args.repeat * 4)
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
