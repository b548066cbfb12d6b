"""Run the offline eval suite against the ingested corpus (KOS_HOME) and print metrics.

    .venv/bin/python -m evals.run [--cve 10] [--period 10] [--json]

Uses the configured models (embedded default or production settings); the answer cache
is off so every case runs the whole graph.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import orjson

from evals.changelog_suite import build_cases
from knowledge_os.api import KnowledgeOS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cve", type=int, default=10)
    ap.add_argument("--period", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    kos = KnowledgeOS()
    cases = build_cases(kos.settings.home, n_cve=args.cve, n_period=args.period)
    rows = []
    for case in cases:
        t = time.perf_counter()
        r = kos.run(case.question, use_cache=False)
        cited = [c.id for c in r.citations]
        row = {"kind": case.kind, "question": case.question, "domain": r.domain, "route": r.route.method,
               "seconds": round(time.perf_counter() - t, 2), "quality": r.quality.score}
        if case.kind == "cve":
            row["hit@1"] = bool(cited) and cited[0] in case.expected
            row["recall"] = len(case.expected & set(cited)) / len(case.expected) if case.expected else 0.0
        elif case.kind == "period":
            row["precision"] = (len([c for c in cited if c in case.expected]) / len(cited)) if cited else 0.0
            row["newest_cited"] = case.newest in cited
        else:
            row["route_ok"] = r.domain == case.domain
        rows.append(row)
        if not args.json:
            print(f"{row['seconds']:6.1f}s {case.kind:6} {r.domain:6} {r.route.method:9} {case.question}", file=sys.stderr)
    summary = {
        "cve_hit@1": statistics.mean(r["hit@1"] for r in rows if r["kind"] == "cve") if args.cve else None,
        "cve_recall": statistics.mean(r["recall"] for r in rows if r["kind"] == "cve") if args.cve else None,
        "period_precision": statistics.mean(r["precision"] for r in rows if r["kind"] == "period") if args.period else None,
        "period_newest_cited": statistics.mean(r["newest_cited"] for r in rows if r["kind"] == "period") if args.period else None,
        "route_accuracy": statistics.mean(r["route_ok"] for r in rows if r["kind"] == "route"),
        "quality_mean": statistics.mean(r["quality"] for r in rows),
        "seconds_p50": statistics.median(r["seconds"] for r in rows),
        "cases": len(rows),
    }
    if args.json:
        sys.stdout.write(orjson.dumps({"summary": summary, "cases": rows}).decode() + "\n")
    else:
        for k, v in summary.items():
            print(f"{k:22} {v if not isinstance(v, float) else round(v, 3)}")
    kos.close()


if __name__ == "__main__":
    main()
