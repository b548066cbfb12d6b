"""Structured vs prose answer mode, loops off vs on, on real questions and the real model.

For each configuration every question is run once (answer cache off) and its answer is
checked twice: by the pipeline's own verifier (``quality.grounded``) and by the
independent checker of the eval package (``knowledge_os.evals.truth.check_answer``,
which shares no code with ``knowledge_os.domains.claims`` and traces claims to the
changelogs parsed separately). Printed per configuration: answers with an ungrounded
claim (independent checker), claims grounded (independent), the verifier's grounded
share, data-only answers, answers in the question's language, mean LLM calls, p50/p95
latency. ``--out`` writes every answer as JSON lines, for reading.

    KOS_HOME=... python benchmarks/bench_answer_modes.py --as-of 2026-12-01 [--out answers.jsonl]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import orjson

from knowledge_os.api import KnowledgeOS
from knowledge_os.evals.truth import check_answer, load_corpus
from knowledge_os.i18n import detect_language
from knowledge_os.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import pct, sample_ids  # noqa: E402


def prose_of(answer: str) -> str:
    """The summary paragraph(s): the answer without listing lines (copied changelog text,
    English whatever the question) and without a leading "nothing matched" line."""
    paras = answer.split("\n\n")
    if len(paras) > 1 and ("Nothing matched" in paras[0] or "ничего не нашлось" in paras[0]):
        paras = paras[1:]
    return paras[0]


def questions(home: Path) -> list[str]:
    """The main job's kinds, EN and RU, with ids drawn from the corpus."""
    cves, bugs, pk = sample_ids(home)
    return [
        "What changed in openssl since March?",
        f"Which upload fixed {cves[0]}?",
        "Which kinds of fixes are rising this quarter?",
        "Что изменилось в systemd в этом году?",
        f"What changed in {pk[1]} in 2024?",
        f"Which version closed bug #{bugs[0]}?",
        f"Какая загрузка исправила {cves[1]}?",
        f"Что нового в {pk[2]} с 2025 года?",
        "How many security fixes were uploaded per month this year?",
        "Какие виды исправлений растут в этом квартале?",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--as-of", default=None, help="'today' for relative dates (YYYY-MM-DD)")
    ap.add_argument("--modes", default="structured,prose")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    home = Path(os.environ.get("KOS_HOME", ".kos"))
    qs = questions(home)
    t = time.perf_counter()
    corpus = load_corpus()
    print(f"truth corpus: {len(corpus.by_id)} entries parsed in {time.perf_counter() - t:.1f} s")
    out = args.out.open("wb") if args.out else None
    for mode in args.modes.split(","):
        for loops in (False, True):
            kos = KnowledgeOS(Settings(home=home, llm={"answer_mode": mode}))
            rows = []
            try:
                for q in qs:
                    r = kos.run(q, as_of=args.as_of, use_cache=False, loops=loops)
                    check = check_answer(r.answer, cited_ids=[c.id for c in r.citations], corpus=corpus,
                                         question={"query": q})
                    lang_ok = detect_language(prose_of(r.answer)) == detect_language(q)
                    rows.append((r, check, lang_ok))
                    if out:
                        out.write(orjson.dumps({"mode": mode, "loops": loops, "query": q, "answer": r.answer,
                                                "citations": [c.id for c in r.citations],
                                                "quality": r.quality.model_dump(), "data_only": r.data_only,
                                                "check": check, "latency_s": r.usage.latency_s}) + b"\n")
            finally:
                kos.close()
            n = len(rows)
            bad = sum(1 for _, c, _ in rows if c["ungrounded"])
            claims = sum(c["claims"] for _, c, _ in rows)
            ungrounded = sum(len(c["ungrounded"]) for _, c, _ in rows)
            lat = [r.usage.latency_s for r, _, _ in rows]
            print(f"mode={mode:10s} loops={'on ' if loops else 'off'}: "
                  f"answers with an ungrounded claim {bad}/{n}; claims grounded "
                  f"{claims - ungrounded}/{claims}; verifier grounded "
                  f"{sum(r.quality.grounded for r, _, _ in rows)}/{n}; data-only "
                  f"{sum(r.data_only for r, _, _ in rows)}/{n}; question's language "
                  f"{sum(ok for _, _, ok in rows)}/{n}; LLM calls/run "
                  f"{sum(r.usage.llm_calls for r, _, _ in rows) / n:.2f}; latency p50 {pct(lat, 0.5):.2f} s "
                  f"p95 {pct(lat, 0.95):.2f} s", flush=True)
    if out:
        out.close()


if __name__ == "__main__":
    main()
