"""Run built cases through the real pipeline and check each answer independently.

Usage::

    KOS_HOME=<an ingested home> python scripts/evals/check_live.py [--builder answers]
        [--n 60] [--seed 7] [--as-of 2026-11-22] [--per-kind 1] [--out FILE]

Takes ``--per-kind`` cases of each (builder prefix, language) pair from the built set
(so a small run still holds CVE, bug, digest, trend and free-text questions in English
and Russian), runs each with the answer cache off, and prints per case the domain, how
the summary was made (``answer_mode``, ``data_only``), the seconds taken and :func:`~knowledge_os.evals.truth.check_answer`'s verdict; then the
share of answers with an ungrounded claim. ``--out`` keeps answers and verdicts as JSON.
This is a quick probe; ``kos eval`` runs the full suites.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

from knowledge_os.api import KnowledgeOS
from knowledge_os.evals.truth import build_cases, cached_corpus, check_answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builder", default="answers")
    parser.add_argument("--doc-dir", type=Path, default=Path("/usr/share/doc"))
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date.today())
    parser.add_argument("--per-kind", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cases = build_cases(args.builder, doc_dir=args.doc_dir, as_of=args.as_of, n=args.n, seed=args.seed)
    taken: dict[tuple[str, str], int] = {}
    chosen = []
    for c in cases:
        key = (c["id"].split("-")[0], c["lang"])
        if taken.get(key, 0) < args.per_kind:
            taken[key] = taken.get(key, 0) + 1
            chosen.append(c)
    corpus = cached_corpus(args.doc_dir)
    kos = KnowledgeOS()
    records = []
    try:
        for c in chosen:
            t0 = time.perf_counter()
            result = kos.run(c["query"], as_of=args.as_of.isoformat(), use_cache=False)
            cited = [x.id for x in result.citations]
            verdict = check_answer(result.answer, cited_ids=cited, corpus=corpus, question=c)
            seconds = time.perf_counter() - t0
            print(f"{c['id']:11s} {c['lang']} {result.domain:7s} {result.answer_mode:10s} "
                  f"data_only={result.data_only!s:5s} {seconds:5.1f} s  claims {verdict['claims']:3d}  "
                  f"ungrounded {verdict['ungrounded']}", flush=True)
            records.append({"case": c, "domain": result.domain, "answer": result.answer, "cited": cited,
                            "answer_mode": result.answer_mode, "data_only": result.data_only,
                            "check": verdict, "seconds": round(seconds, 2)})
    finally:
        kos.close()
    bad = sum(1 for r in records if r["check"]["ungrounded"])
    print(f"answers with an ungrounded claim: {bad}/{len(records)}")
    if args.out:
        args.out.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
