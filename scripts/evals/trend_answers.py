"""Score ranking answers: how many of the true top N each answer names.

Usage::

    kos run --json "Which five packages had the most uploads in 2024?" > a1.json
    ...
    python scripts/evals/trend_answers.py [--doc-dir /usr/share/doc] [--as-of 2026-12-01] a1.json a2.json ...

Each file holds one ``kos run --json`` result (any version of the project: only
``answer``, ``domain`` and the question are read; the question is taken from the
manifest's ``query`` or from ``--questions`` in file order). The truth is computed with
the independent ground truth (``knowledge_os.evals.truth``: changelogs parsed with
python-debian): the ranking and N the question asks for, over the period it names
(parsed here by the same rules as the truth's periods: a year, "this year", or all
dates). An entity counts as named when its name appears in the answer text; entities
tied with the N-th are listed but only the truth's first N (ties by name) are scored.
"""

from __future__ import annotations

import argparse
import re
from datetime import date
from pathlib import Path

import orjson

from knowledge_os.evals.truth import cached_corpus
from knowledge_os.evals.truth.trends import rank

_N_WORDS = {"three": 3, "five": 5, "ten": 10, "три": 3, "пять": 5, "десять": 10}


def _ask(question: str, as_of: date) -> tuple[str, int, date, date]:
    """(ranking, n, start, end) for the question kinds this script scores."""
    q = question.lower()
    if re.search(r"maintainer|uploader|сопровожда", q):
        ranking = "uploaders"
    elif re.search(r"cve|уязвим", q):
        ranking = "cve"
    elif re.search(r"bug|ошиб|баг", q):
        ranking = "bugs"
    else:
        ranking = "uploads"
    n = next((v for w, v in _N_WORDS.items() if re.search(rf"\b{w}\b", q)), None)
    m = re.search(r"\b(\d{1,2})\b", q)
    n = n or (int(m[1]) if m else 5)
    y = re.search(r"\b(19|20)(\d{2})\b", q)
    if y:
        year = int(y[0])
        return ranking, n, date(year, 1, 1), min(date(year, 12, 31), as_of)
    if re.search(r"this year|в этом году", q):
        return ranking, n, date(as_of.year, 1, 1), as_of
    return ranking, n, date(1900, 1, 1), as_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc-dir", type=Path, default=Path("/usr/share/doc"))
    parser.add_argument("--as-of", type=date.fromisoformat, default=date.today())
    parser.add_argument("--questions", nargs="*", help="the questions, in file order (else from the manifest)")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    corpus = cached_corpus(args.doc_dir)
    total_named = total = 0
    for i, path in enumerate(args.files):
        result = orjson.loads(path.read_bytes())
        question = args.questions[i] if args.questions else result.get("manifest", {}).get("query", "")
        ranking, n, start, end = _ask(question, args.as_of)
        ranked = rank(corpus.in_period(start, end), ranking)
        truth = [name for name, _ in ranked[:n]]
        tied = [name for name, c in ranked[n:] if ranked and c == ranked[n - 1][1]]
        named = [name for name in truth if name in result["answer"]]
        total_named += len(named)
        total += len(truth)
        print(f"{path.name}: {question!r} -> domain {result.get('domain')}; {ranking} top {n} "
              f"{start}..{end}: named {len(named)}/{len(truth)}")
        print(f"    truth {list(zip(truth, [c for _, c in ranked[:n]], strict=True))}"
              + (f" (tied with the {n}th: {', '.join(tied)})" if tied else ""))
        print(f"    named {named}")
    print(f"\nnamed {total_named}/{total} of the true top-N entities")


if __name__ == "__main__":
    main()
