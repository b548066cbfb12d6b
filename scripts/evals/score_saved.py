"""Score answers saved from any build of Knowledge OS with today's eval metrics.

The way to give "today's figure first" for a change: run the cases through the old build,
save each ``RunResult.model_dump()``, then score old and new answers with the same
independent checker and metrics. Usage::

    # 1. the cases (deterministic for a builder, n, seed and as-of day)
    python scripts/evals/score_saved.py cases --builder answers --n 120 --seed 7 \
        --as-of 2026-12-01 > cases.jsonl
    # 2. answers from a build (run with that build first on PYTHONPATH)
    python scripts/evals/score_saved.py answer cases.jsonl answers.jsonl --as-of 2026-12-01 [--no-loops]
    # 3. the figures (run with this build)
    python scripts/evals/score_saved.py score cases.jsonl answers.jsonl [more.jsonl ...] [--doc-dir DIR]

``answer`` appends one ``{"id", "result" | "error", "seconds"}`` line per case and skips the
cases already in the file, so an interrupted run continues. ``score`` prints one column per
answers file: the grounded-claim rate and the share of answers with an ungrounded claim
(independent checker, ``knowledge_os.evals.truth``), language match, id accuracy, citation
precision/recall, correctness, LLM calls and latency.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any


def _cases(args: argparse.Namespace) -> None:
    from knowledge_os.evals.truth import build_cases

    for case in build_cases(args.builder, as_of=args.as_of, n=args.n, seed=args.seed):
        sys.stdout.write(json.dumps(case, ensure_ascii=False) + "\n")


def _answer(args: argparse.Namespace) -> None:
    from knowledge_os.api import KnowledgeOS

    cases = [json.loads(line) for line in args.cases.read_text().splitlines() if line.strip()]
    done: set[str] = set()
    if args.answers.exists():
        done = {json.loads(line)["id"] for line in args.answers.read_text().splitlines() if line.strip()}
    kos = KnowledgeOS()
    try:
        with args.answers.open("a") as out:
            for case in cases:
                if case["id"] in done:
                    continue
                t = time.perf_counter()
                try:
                    extra = {"loops": False} if args.no_loops else {}
                    r = kos.run(case["query"], use_cache=False, as_of=args.as_of.isoformat(), **extra)
                    rec: dict[str, Any] = {"id": case["id"], "result": r.model_dump(mode="json")}
                except Exception as exc:  # a failed run is a figure too
                    rec = {"id": case["id"], "error": f"{type(exc).__name__}: {exc}"}
                rec["seconds"] = round(time.perf_counter() - t, 3)
                out.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
                out.flush()
    finally:
        kos.close()


def _record(case: dict[str, Any], saved: dict[str, Any], check: Any) -> dict[str, Any]:
    """A CaseRecord (knowledge_os.evals.records) from a saved RunResult dump."""
    base = {"id": case["id"], "query": case["query"], "lang": case["lang"], "tags": case.get("tags", []),
            "expected": case.get("expected", {})}
    if "error" in saved:
        return {**base, "error": saved["error"]}
    r = saved["result"]
    docs = (r.get("manifest") or {}).get("documents") or []
    usage = r.get("usage") or {}
    cited = [c["id"] for c in r.get("citations") or []]
    return {
        **base, "error": None, "domain": r["domain"], "route_method": r["route"]["method"],
        "route_confidence": r["route"]["confidence"], "path": r["path"], "answer": r["answer"], "cited": cited,
        "retrieved": [d["id"] for d in docs],
        "retrieved_sources": [list(d.get("sources") or []) for d in docs[:10]],
        "quality_score": r["quality"]["score"], "quality_passed": r["quality"]["passed"],
        "llm_calls": usage.get("llm_calls", 0),
        "tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
        "steps": usage.get("steps", 0), "latency_s": saved.get("seconds", usage.get("latency_s", 0.0)),
        "data_only": bool(r.get("data_only", False)),
        "grounding": check(r["answer"], cited_ids=cited, question=case),
    }


METRICS = ("answers.grounded_rate", "answers.ungrounded_answer_rate", "answers.lang_match",
           "answers.id_accuracy", "answers.citation_precision", "answers.citation_recall",
           "answers.correct_rate", "routing.accuracy", "kpi.llm_calls_mean", "kpi.fast_latency_p95_s",
           "kpi.tokens_p95", "run.error_rate")


def _score(args: argparse.Namespace) -> None:
    from knowledge_os.evals import metrics
    from knowledge_os.evals.truth import cached_corpus, check_answer

    corpus = cached_corpus(args.doc_dir)

    def check(answer: str, *, cited_ids: list[str], question: dict[str, Any]) -> dict[str, Any]:
        return check_answer(answer, cited_ids=cited_ids, corpus=corpus, question=question)

    cases = {c["id"]: c for c in (json.loads(line) for line in args.cases.read_text().splitlines() if line.strip())}
    columns: list[tuple[str, dict[str, Any]]] = []
    for path in args.answers:
        saved = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        records = [_record(cases[s["id"]], s, check) for s in saved if s["id"] in cases]
        ru = [r for r in records if r["lang"] == "ru" and not r.get("error")]
        values: dict[str, Any] = {"cases": len(records)}
        for name in METRICS:
            try:
                values[name] = metrics.compute(name, records)
            except (KeyError, ValueError):
                values[name] = _fallback(name, records)
        values["ru_answered_in_ru"] = (sum(metrics.answers.language_of(metrics.answers.lead_paragraph(r["answer"]))
                                           == "ru" for r in ru) / len(ru)) if ru else None
        values["data_only_share"] = sum(r.get("data_only", False) for r in records) / max(1, len(records))
        columns.append((path.name, values))
    names = ["cases", *METRICS, "ru_answered_in_ru", "data_only_share"]
    print("metric".ljust(34) + "".join(name[:22].rjust(24) for name, _ in columns))
    for n in names:
        row = n.ljust(34)
        for _, values in columns:
            v = values.get(n)
            row += (f"{v:.3f}" if isinstance(v, float) else str(v)).rjust(24)
        print(row)


def _fallback(name: str, records: list[dict[str, Any]]) -> float | None:
    """Metrics this script needs that the registry may not have under that name."""
    ok = [r for r in records if not r.get("error")]
    if name == "answers.ungrounded_answer_rate":
        return sum(bool(r["grounding"]["ungrounded"]) for r in ok) / len(ok) if ok else None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cases")
    c.add_argument("--builder", default="answers")
    c.add_argument("--n", type=int, default=120)
    c.add_argument("--seed", type=int, default=7)
    c.add_argument("--as-of", type=date.fromisoformat, required=True)
    a = sub.add_parser("answer")
    a.add_argument("cases", type=Path)
    a.add_argument("answers", type=Path)
    a.add_argument("--as-of", type=date.fromisoformat, required=True)
    a.add_argument("--no-loops", action="store_true", help="first draft final (verify, correct, rank off)")
    s = sub.add_parser("score")
    s.add_argument("cases", type=Path)
    s.add_argument("answers", type=Path, nargs="+")
    s.add_argument("--doc-dir", type=Path, default=Path("/usr/share/doc"),
                   help="changelogs the truth is parsed from: the folder the answers' corpus was ingested from")
    args = ap.parse_args()
    {"cases": _cases, "answer": _answer, "score": _score}[args.cmd](args)


if __name__ == "__main__":
    main()
