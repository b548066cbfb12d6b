"""Rank by the LLM judge against rank by the checks alone, on Smart Path runs.

Every question runs twice on the Smart Path with the answer cache off: once with the
judge (``rank.judge: true``) and once without (``false``), the order alternating (on, off;
off, on; ...) so that load on the shared cores falls on both arms alike. Printed side by
side: answer correctness (``knowledge_os.evals.metrics.correct``: expected ids named, an
expected entry cited, no claim the independent checker cannot ground), the pooled
grounded-claim rate of the independent checker (``knowledge_os.evals.truth.check_answer``,
which parses the changelogs with python-debian), how often the judge was asked and why
not, its order-swap agreement rate, how often it chose another draft than the rank key,
and the LLM calls, tokens and latency per run (p50/p95) with the load average.

The questions are the eval builders' ``answers`` mix (CVE and bug lookups, package periods,
trend kinds and rankings, free text; English and Russian), built from this machine's
changelogs. Needs the corpus ingested (``kos ingest``; KOS_HOME).

    .venv/bin/python benchmarks/bench_rank_judge.py [--n 30] [--answer-mode auto|prose|structured]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import pct  # noqa: E402

from knowledge_os.api import KnowledgeOS  # noqa: E402
from knowledge_os.evals import truth  # noqa: E402
from knowledge_os.evals.metrics import correct  # noqa: E402
from knowledge_os.evals.metrics.answers import grounded_claim_rate  # noqa: E402

AS_OF = date(2026, 12, 1)
SEED = 23


@dataclass
class Arm:
    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def run_one(kos: KnowledgeOS, case: dict[str, Any], corpus: Any) -> dict[str, Any]:
    t = time.perf_counter()
    cpu = time.process_time()
    r = kos.run(case["query"], path="smart", use_cache=False, as_of=AS_OF)
    latency = time.perf_counter() - t
    cited = [c.id for c in r.citations]
    grounding = truth.check_answer(r.answer, cited_ids=cited, corpus=corpus, question=case)
    record = {"expected": case.get("expected") or {}, "answer": r.answer, "cited": cited, "grounding": grounding}
    judgements = [j for j in [*(r.manifest["rank"]["earlier"] or []), r.manifest["rank"]["judgement"]] if j]
    return {"id": case["id"], "correct": correct(record), "claims": grounding.get("claims", 0),
            "ungrounded": len(grounding.get("ungrounded") or []), "llm_calls": r.usage.llm_calls,
            "tokens": r.usage.prompt_tokens + r.usage.completion_tokens, "latency_s": latency,
            "cpu_s": time.process_time() - cpu, "judgements": judgements, "answer": r.answer,
            "judge_ms": sum(v for k, v in r.manifest["timings_ms"].items() if k.startswith("llm.judge."))}


def summary(arm: Arm) -> dict[str, Any]:
    rows = arm.rows
    js = [j for r in rows for j in r["judgements"]]
    asked = [j for j in js if j["asked"]]
    decided = [c for c in (r["correct"] for r in rows) if c is not None]
    return {
        "runs": len(rows),
        "correct": f"{sum(decided)}/{len(decided)} = {sum(decided) / len(decided):.3f}" if decided else "n/a",
        "grounded-claim rate": round(grounded_claim_rate([r["claims"] for r in rows],
                                                         [r["ungrounded"] for r in rows]) or 0.0, 3),
        "rankings of 2 drafts": len(js),
        "judge asked": len(asked),
        "orders agree": f"{sum(bool(j['agree']) for j in asked)}/{len(asked)}" if asked else "n/a",
        "judge chose other than key": sum(j["winner"] != j["pair"][0] for j in asked),
        "LLM calls mean": round(statistics.mean(r["llm_calls"] for r in rows), 2),
        "tokens mean": round(statistics.mean(r["tokens"] for r in rows)),
        "latency p50 s": round(pct([r["latency_s"] for r in rows], 0.5), 2),
        "latency p95 s": round(pct([r["latency_s"] for r in rows], 0.95), 2),
        "CPU s mean": round(statistics.mean(r["cpu_s"] for r in rows), 2),
        "judge ms mean (asked runs)": round(statistics.mean(r["judge_ms"] for r in rows if r["judge_ms"]) or 0)
        if any(r["judge_ms"] for r in rows) else 0,
        "why not asked": dict(Counter(j["why"].split(":")[0] for j in js if not j["asked"]).most_common()),
        "verdicts": dict(Counter(str(o["verdict"]) for j in asked for o in j["orders"]).most_common()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--answer-mode", choices=("auto", "prose", "structured"), default="auto")
    args = ap.parse_args()
    load0 = os.getloadavg()
    kos = KnowledgeOS()
    base = kos.services.settings
    llm = base.llm.model_copy(update={"answer_mode": args.answer_mode})
    on = base.model_copy(update={"llm": llm, "rank": base.rank.model_copy(update={"judge": True})})
    off = base.model_copy(update={"llm": llm, "rank": base.rank.model_copy(update={"judge": False})})
    cases = truth.build_cases("answers", as_of=AS_OF, n=args.n, seed=SEED)
    corpus = truth.cached_corpus()  # the changelogs under /usr/share/doc, parsed with python-debian
    kos.run("warm up: what changed in openssl?", use_cache=False, as_of=AS_OF)
    arms = [Arm("judge"), Arm("score only")]
    settings = [on, off]
    for i, case in enumerate(cases):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            kos.services.settings = settings[k]  # the same stores and models, one switch changed
            arms[k].rows.append(run_one(kos, case, corpus))
    kos.services.settings = base
    load1 = os.getloadavg()
    kos.close()
    sums = [summary(a) for a in arms]
    print(f"{len(cases)} questions ({sum(c.get('lang') == 'ru' for c in cases)} Russian), Smart Path, "
          f"answer_mode={args.answer_mode}, as of {AS_OF}; load average {load0[0]:.2f} at start, "
          f"{load1[0]:.2f} at end (2 cores)")
    print(f"{'':32} {arms[0].name:>28} {arms[1].name:>28}")
    for key in sums[0]:
        print(f"{key:32} {str(sums[0][key]):>28} {str(sums[1][key]):>28}")
    differ = sum(a["answer"] != b["answer"] for a, b in zip(arms[0].rows, arms[1].rows, strict=True))
    print(f"answers that differ between the arms: {differ}/{len(cases)}")


if __name__ == "__main__":
    main()
