"""Vector search latency and recall: qdrant-edge vs qdrant-client local mode vs numpy.

Usage::

    python benchmarks/bench_vectors.py                    # 30,000 random 384-d unit vectors
    python benchmarks/bench_vectors.py --n 10000 --queries 100
    python benchmarks/bench_vectors.py --real .kos        # also the ingested embeddings

Figures, not a pass/fail test. Per engine and filter: p50/p95 latency of ``search``
(top_k=10) through the Knowledge OS adapters (conversion included), the ratio to numpy
brute force, and recall@10 against the exact answer. Filters: one channel (~1% of points),
ten channels (~10%), a ts range (~25%) and ten channels AND the ts range (~2.5%).
The main-job target is a filtered p95 <= 20 ms at ~29k entries. Engine rows keep the
qdrant-edge shard open (``hold()``); the row "a handover" is what a call costs when the
shard must be opened first and given back after, as when processes take turns on it.

qdrant-client local mode warns above 20k points; the adapter logs that once instead.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge_os.retrieval.base import VectorFilter, VectorPoint, VectorStore  # noqa: E402
from knowledge_os.retrieval.vectors import QdrantEdgeVectorStore, QdrantVectorStore  # noqa: E402
from knowledge_os.settings import VectorSettings  # noqa: E402

TOP_K = 10
N_CHANNELS = 100
TS0 = 1_700_000_000
YEAR_S = 365 * 86_400


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def random_corpus(
    n: int, dim: int, seed: int, clusters: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n unit vectors, channel codes (uniform over 100) and ts (uniform over a year).

    ``clusters=0``: isotropic random vectors (the worst case for HNSW: all neighbours
    nearly equidistant). ``clusters>0``: points around that many random centres at cosine
    ~0.75 to their centre -- closer to how text embeddings sit.
    """
    rng = np.random.default_rng(seed)
    if clusters > 0:
        centres = _unit(rng.normal(size=(clusters, dim)))
        noise = rng.normal(scale=0.9 / np.sqrt(dim), size=(n, dim))
        vectors = _unit(centres[rng.integers(0, clusters, size=n)] + noise)
    else:
        vectors = _unit(rng.normal(size=(n, dim)))
    return (
        vectors,
        rng.integers(0, N_CHANNELS, size=n),
        TS0 + rng.integers(0, YEAR_S, size=n),
    )


def real_corpus(home: Path) -> np.ndarray | None:
    """Vectors of an ingested ``.kos`` (qdrant-edge shard), read from a copy of the shard."""
    shards = sorted((home / "vectors" / "edge").glob("*/edge_config.json"))
    if not shards:
        print(f"no qdrant-edge shard under {home}/vectors/edge; skipping real vectors")
        return None
    import qdrant_edge as qe

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "shard"
        shutil.copytree(shards[0].parent, copy)
        shard = qe.EdgeShard.load(str(copy))
        vectors: list[list[float]] = []
        offset = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=1000, with_payload=False, with_vector=True)
            )
            vectors.extend(r.vector for r in records)  # type: ignore[misc]
            if offset is None:
                break
        shard.close()
    print(f"read {len(vectors)} real vectors from {shards[0].parent}")
    return _unit(np.asarray(vectors, dtype=np.float32)) if vectors else None


def filters(ts_cut: int) -> dict[str, tuple[VectorFilter | None, Callable]]:
    """Filter name -> (VectorFilter, mask function over (channel codes, ts))."""
    ten = tuple(f"pkg{c}" for c in range(10))
    return {
        "none": (None, lambda ch, ts: np.ones(len(ch), bool)),
        "channel 1%": (VectorFilter(channels=("pkg7",)), lambda ch, ts: ch == 7),
        "channel 10%": (VectorFilter(channels=ten), lambda ch, ts: ch < 10),
        "ts range ~25%": (VectorFilter(ts_from=ts_cut), lambda ch, ts: ts >= ts_cut),
        "10% + ts ~2.5%": (
            VectorFilter(channels=ten, ts_from=ts_cut),
            lambda ch, ts: (ch < 10) & (ts >= ts_cut),
        ),
    }


def exact_topk(matrix: np.ndarray, q: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """numpy brute force: indices of the k best rows among ``mask``.

    Selective masks gather the matching rows first; broad ones score every row and
    drop the rest (cheaper than copying most of the matrix).
    """
    if mask.mean() > 0.2:
        scores = matrix @ q
        scores[~mask] = -np.inf
        idx = np.flatnonzero(mask)
        if len(idx) <= k:
            return idx[np.argsort(-scores[idx])]
        part = np.argpartition(-scores, k)[:k]
        return part[np.argsort(-scores[part])]
    idx = np.flatnonzero(mask)
    scores = matrix[idx] @ q
    if len(idx) <= k:
        return idx[np.argsort(-scores)]
    part = np.argpartition(-scores, k)[:k]
    return idx[part[np.argsort(-scores[part])]]


def timed(fn: Callable[[], object], repeats: int) -> tuple[list[float], list[object]]:
    lat, out = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        out.append(fn())
        lat.append((time.perf_counter() - t) * 1000.0)
    return lat, out


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def bench(label: str, matrix: np.ndarray, channels: np.ndarray, ts: np.ndarray,
          args: argparse.Namespace) -> None:
    n, dim = matrix.shape
    rng = np.random.default_rng(args.seed + 1)
    # Queries near stored entries (an entry plus noise of norm ~0.5), as real queries are.
    picks = rng.integers(0, n, size=args.queries)
    queries = _unit(matrix[picks] + rng.normal(scale=0.5 / np.sqrt(dim),
                                               size=(args.queries, dim)))
    ts_cut = int(np.percentile(ts, 75))
    flts = filters(ts_cut)
    points = [
        VectorPoint(id=f"doc:{i}", vector=matrix[i],
                    payload={"channel": f"pkg{channels[i]}", "ts": int(ts[i]), "source": "debian"})
        for i in range(n)
    ]
    efs = [int(x) for x in args.ef.split(",")]
    rows: list[tuple[str, str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        edge = QdrantEdgeVectorStore(Path(tmp) / "edge", "bench", dim, efs[0])
        edge.upsert(points)
        t_upsert = time.perf_counter() - t
        edge.optimize()
        print(f"[{label}] qdrant-edge: upsert {t_upsert:.1f} s, + optimize (HNSW) "
              f"{time.perf_counter() - t - t_upsert:.1f} s", flush=True)
        local = None
        if not args.skip_local:
            t = time.perf_counter()
            local = QdrantVectorStore(VectorSettings(backend="qdrant"), Path(tmp) / "local", dim,
                                      collection="bench")
            local.upsert(points)
            print(f"[{label}] qdrant-client local: upsert {time.perf_counter() - t:.1f} s",
                  flush=True)

        # Engine latency: the shard stays open for the loop (one turn).
        with edge.hold():
            for fname, (flt, mask_fn) in flts.items():
                mask = mask_fn(channels, ts)
                truth = [{f"doc:{i}" for i in exact_topk(matrix, q, mask, TOP_K)} for q in queries]
                it = iter(queries)
                np_lat, _ = timed(lambda: exact_topk(matrix, next(it), mask_fn(channels, ts), TOP_K),
                                  len(queries))
                rows.append(("numpy brute", fname, pct(np_lat, 50), pct(np_lat, 95), 1.0))
                runs: list[tuple[str, VectorStore, int]] = []
                for ef in efs:
                    runs.append((f"qdrant-edge ef={ef}", edge, len(queries)))
                if local is not None:
                    runs.append(("qdrant local", local, min(args.local_queries, len(queries))))
                for name, store, nq in runs:
                    if isinstance(store, QdrantEdgeVectorStore):
                        store.hnsw_ef = int(name.rsplit("=", 1)[1])
                    it = iter(queries[:nq])
                    lat, hits = timed(lambda: store.search(next(it), top_k=TOP_K, flt=flt), nq)
                    recall = statistics.fmean(
                        len(want & {h.id for h in got}) / max(1, len(want))  # type: ignore[attr-defined]
                        for got, want in zip(hits, truth[:nq], strict=True)
                    )
                    rows.append((name, fname, pct(lat, 50), pct(lat, 95), recall))
                print(f"[{label}] filter {fname!r}: {int(mask.sum())} matching points", flush=True)
        edge.close()
        it = iter(queries)

        def handover() -> object:  # what a call costs when another process had the shard
            store = QdrantEdgeVectorStore(Path(tmp) / "edge", "bench", dim, efs[0])
            try:
                return store.search(next(it), top_k=TOP_K)
            finally:
                store.close()

        turn_lat, _ = timed(handover, min(20, len(queries)))
        rows.append(("qdrant-edge, open + search + close (a handover)", "none", pct(turn_lat, 50),
                     pct(turn_lat, 95), float("nan")))
        if local is not None:
            local.close()

    np_p50 = {f: p50 for e, f, p50, _, _ in rows if e == "numpy brute"}
    print(f"\n## {label}: n={n}, dim={dim}, top_k={TOP_K}, {len(queries)} queries "
          f"({min(args.local_queries, len(queries))} for local mode)\n")
    print("| filter | engine | p50 ms | p95 ms | p50 / numpy p50 | recall@10 |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for engine, fname, p50, p95, rec in rows:
        ratio = p50 / np_p50[fname] if np_p50[fname] else float("nan")
        print(f"| {fname} | {engine} | {p50:.2f} | {p95:.2f} | {ratio:.2f}x | {rec:.3f} |")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30_000, help="synthetic vectors (30000)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--local-queries", type=int, default=30,
                        help="queries for qdrant-client local mode (slow: exact, in Python)")
    parser.add_argument("--skip-local", action="store_true",
                        help="skip qdrant-client local mode (its 30k upsert takes minutes)")
    parser.add_argument("--ef", default="64,128",
                        help="comma-separated hnsw_ef values for qdrant-edge (64,128)")
    parser.add_argument("--data", choices=["random", "clustered", "both"], default="random")
    parser.add_argument("--real", type=Path, default=None,
                        help="a Knowledge OS home (e.g. .kos) whose edge vectors to add")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    kinds = ["random", "clustered"] if args.data == "both" else [args.data]
    for kind in kinds:
        matrix, channels, ts = random_corpus(args.n, args.dim, args.seed,
                                             clusters=300 if kind == "clustered" else 0)
        bench(kind, matrix, channels, ts, args)
    home = args.real if args.real is not None else (Path(".kos") if Path(".kos").exists() else None)
    if home is not None:
        real = real_corpus(home)
        if real is not None and len(real) > TOP_K:
            rng = np.random.default_rng(args.seed)
            ch = rng.integers(0, N_CHANNELS, size=len(real))
            rts = TS0 + rng.integers(0, YEAR_S, size=len(real))
            bench("real embeddings (synthetic payload)", real, ch, rts, args)


if __name__ == "__main__":
    main()
