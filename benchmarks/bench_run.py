"""p50/p95 of a run over 20 varied questions, split into route / retrieve / LLM / rest,
and the process's peak RSS. Needs an ingested corpus: run `kos ingest` first (KOS_HOME).

    .venv/bin/python benchmarks/bench_run.py [--repeat 1]

Runs go through the Python API (the same graph, checkpointer and models as `kos run`),
with the answer cache off so every run does the work; the process start (model load)
is reported separately.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import pct, questions  # noqa: E402

from knowledge_os.api import KnowledgeOS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    kos = KnowledgeOS()
    qs = questions(kos.settings.home)
    kos.run("warm up: what changed in openssl?", use_cache=False)
    warm = time.perf_counter() - t0
    rows: dict[str, list[float]] = {"total": [], "route": [], "retrieve": [], "llm": [], "rest": []}
    methods: dict[str, int] = {}
    for _ in range(args.repeat):
        for q in qs:
            t = time.perf_counter()
            r = kos.run(q, use_cache=False)
            total = (time.perf_counter() - t) * 1000
            tm = r.manifest["timings_ms"]
            llm = sum(v for k, v in tm.items() if k.startswith("llm."))
            retrieve = sum(v for k, v in tm.items() if k.startswith("retrieve."))
            route = tm.get("route", 0.0)
            rows["total"].append(total)
            rows["route"].append(route)
            rows["retrieve"].append(retrieve)
            rows["llm"].append(llm)
            rows["rest"].append(max(0.0, total - route - retrieve - llm))
            methods[r.route.method] = methods.get(r.route.method, 0) + 1
            print(f"{total:8.0f} ms  {r.domain:6} {r.path:5} {r.route.method:9} q={r.quality.score:.2f} "
                  f"llm_calls={r.usage.llm_calls}  {q}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nruns: {len(rows['total'])}  first run incl. model load: {warm:.1f} s  route methods: {methods}")
    print(f"{'part':10} {'p50 ms':>10} {'p95 ms':>10} {'share of p50':>13}")
    p50_total = pct(rows["total"], 0.5)
    for k, v in rows.items():
        print(f"{k:10} {pct(v, 0.5):10.1f} {pct(v, 0.95):10.1f} {pct(v, 0.5) / p50_total:12.0%}")
    print(f"\npeak RSS: {rss_mb:.0f} MB (goal < 1024 MB) -> {'ok' if rss_mb < 1024 else 'OVER'}")
    print(f"mean LLM share of run time: {statistics.mean(rows['llm']) / statistics.mean(rows['total']):.0%}")
    kos.close()


if __name__ == "__main__":
    main()
