"""Plans made for the query: Smart Path runs against Fast Path runs on the same questions.

Every question runs on the Smart Path and on the Fast Path with the answer cache off, the
order alternating (smart, fast; fast, smart; ...) so that load on the shared cores falls
on both arms alike. Printed side by side: the share of runs whose first plan came from the
LLM and validated (``plan.source``; ``plan.earlier`` holds the plans a replan replaced),
why the others did not, the share that replanned, from the check or from the gate after
``rank``, and whether the final execution passed its check; answer correctness
(``knowledge_os.evals.metrics.correct``) and the pooled grounded-claim rate of the
independent checker (``knowledge_os.evals.truth.check_answer``); LLM calls, tokens,
latency p50/p95 and CPU per run, the plan call's own latency, with the load average.

The questions are the eval builders' ``answers`` mix (CVE and bug lookups, package
periods, trend kinds and rankings, free text; English and Russian), built from this
machine's changelogs. Needs the corpus ingested (``kos ingest``; KOS_HOME).

    .venv/bin/python benchmarks/bench_planner.py [--n 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
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


def run_one(kos: KnowledgeOS, case: dict[str, Any], corpus: Any, path: str) -> dict[str, Any]:
    t = time.perf_counter()
    cpu = time.process_time()
    r = kos.run(case["query"], path=path, use_cache=False, as_of=AS_OF)
    latency = time.perf_counter() - t
    cited = [c.id for c in r.citations]
    grounding = truth.check_answer(r.answer, cited_ids=cited, corpus=corpus, question=case)
    record = {"expected": case.get("expected") or {}, "answer": r.answer, "cited": cited, "grounding": grounding}
    plan = r.manifest["plan"]
    plans = [*(plan.get("earlier") or []), plan]
    spec = kos.services.domains.get(r.domain)
    usual = {"steps": list(spec.plans.smart), "args": {"top_k": spec.retrieval.top_k,
                                                       "graph_depth": spec.retrieval.graph_depth}}
    return {"id": case["id"], "correct": correct(record), "claims": grounding.get("claims", 0),
            "ungrounded": len(grounding.get("ungrounded") or []), "llm_calls": r.usage.llm_calls,
            "tokens": r.usage.prompt_tokens + r.usage.completion_tokens, "latency_s": latency,
            "cpu_s": time.process_time() - cpu, "first": plans[0], "final": plan, "replans": r.manifest["replans"],
            "check_replans": sum(1 for p in plans[:-1] if (p.get("check") or {}).get("passed") is False),
            "plan_ms": r.manifest["timings_ms"].get("llm.plan", 0.0), "answer": r.answer,
            "usual": plans[0].get("steps") == usual["steps"] and plans[0].get("args") == usual["args"]}


def _p50_p95(values: list[float], fmt: str) -> str:
    return f"{fmt.format(pct(values, 0.5))}/{fmt.format(pct(values, 0.95))}"


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    decided = [c for c in (r["correct"] for r in rows) if c is not None]
    first_sources = Counter(r["first"].get("source") for r in rows)
    replanned = [r for r in rows if r["replans"]]
    from_check = [r for r in replanned if r["check_replans"]]
    fixed = [r for r in from_check if (r["final"].get("check") or {}).get("passed")]
    why_not_llm = Counter(r["first"].get("reason", "")[:48] for r in rows if r["first"].get("source") != "llm")
    plan_ms = [r["plan_ms"] for r in rows if r["plan_ms"]]
    return {
        "runs": n,
        "first plan source": dict(first_sources.most_common()),
        "LLM plan validated": f"{first_sources.get('llm', 0)}/{n}",
        "why not an LLM plan": dict(why_not_llm.most_common(3)),
        "LLM plan = the YAML's": sum(r["first"].get("source") == "llm" and r["usual"] for r in rows),
        "replanned": f"{len(replanned)}/{n}",
        "replanned from the check": f"{len(from_check)}/{n}",
        "check passed after replan": f"{len(fixed)}/{len(from_check)}" if from_check else "n/a",
        "final check failed": sum(1 for r in rows if (r["final"].get("check") or {}).get("passed") is False),
        "correct": f"{sum(decided)}/{len(decided)} = {sum(decided) / len(decided):.3f}" if decided else "n/a",
        "grounded-claim rate": round(grounded_claim_rate([r["claims"] for r in rows],
                                                         [r["ungrounded"] for r in rows]) or 0.0, 3),
        "LLM calls p50/p95": _p50_p95([r["llm_calls"] for r in rows], "{:.0f}"),
        "tokens p50/p95": _p50_p95([r["tokens"] for r in rows], "{:.0f}"),
        "latency p50/p95 s": _p50_p95([r["latency_s"] for r in rows], "{:.1f}"),
        "CPU s mean": round(statistics.mean(r["cpu_s"] for r in rows), 2),
        "plan call ms p50/p95": f"{pct(plan_ms, 0.5):.0f}/{pct(plan_ms, 0.95):.0f}" if plan_ms else "n/a",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    args = ap.parse_args()
    load0 = os.getloadavg()
    kos = KnowledgeOS()
    cases = truth.build_cases("answers", as_of=AS_OF, n=args.n, seed=SEED)
    corpus = truth.cached_corpus()  # the changelogs under /usr/share/doc, parsed with python-debian
    kos.run("warm up: what changed in openssl?", use_cache=False, as_of=AS_OF)
    arms: dict[str, list[dict[str, Any]]] = {"smart": [], "fast": []}
    for i, case in enumerate(cases):
        for path in (("smart", "fast") if i % 2 == 0 else ("fast", "smart")):
            arms[path].append(run_one(kos, case, corpus, path))
        print(f"{i + 1}/{len(cases)} load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    kos.close()
    sums = {k: summary(v) for k, v in arms.items()}
    print(f"{len(cases)} questions ({sum(c.get('lang') == 'ru' for c in cases)} Russian), as of {AS_OF}; "
          f"load average {load0[0]:.2f} at start, {load1[0]:.2f} at end (2 cores)")
    print(f"{'':28} {'Smart Path':>44} {'Fast Path':>44}")
    for key in sums["smart"]:
        print(f"{key:28} {str(sums['smart'][key]):>44} {str(sums['fast'][key]):>44}")


if __name__ == "__main__":
    main()
