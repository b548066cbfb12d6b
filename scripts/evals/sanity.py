"""Print how many cases each ground-truth builder yields on this machine's corpus.

Usage::

    python scripts/evals/sanity.py [--doc-dir /usr/share/doc] [--as-of 2026-12-01] [--n 200] [--seed 7]

Prints the corpus size (entries kept, entries read, packages, CVE ids, bugs, problems,
the changelogs' fingerprint),
then one line per builder: cases, English/Russian split, seconds.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import date
from pathlib import Path

from knowledge_os.evals.truth import BUILDERS, build_cases, cached_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc-dir", type=Path, default=Path("/usr/share/doc"))
    parser.add_argument("--as-of", type=date.fromisoformat, default=date.today())
    parser.add_argument("--n", type=int, default=200, help="cases asked of each builder")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    t0 = time.perf_counter()
    corpus = cached_corpus(args.doc_dir)
    print(f"corpus {args.doc_dir}: {len(corpus.entries)} entries kept of {len(corpus.all_entries)} read, "
          f"{len(corpus.by_package)} packages, {len(corpus.by_cve)} CVE ids, {len(corpus.by_bug)} bugs, "
          f"{len(corpus.problems)} problems, fingerprint {corpus.fingerprint}, {time.perf_counter() - t0:.1f} s")
    print(f"as_of {args.as_of}, n {args.n}, seed {args.seed}")
    for name in BUILDERS:
        t0 = time.perf_counter()
        cases = build_cases(name, doc_dir=args.doc_dir, as_of=args.as_of, n=args.n, seed=args.seed)
        langs = Counter(c["lang"] for c in cases)
        print(f"{name:16s} {len(cases):4d} cases  en {langs['en']:4d}  ru {langs['ru']:4d}  "
              f"{time.perf_counter() - t0:5.1f} s")


if __name__ == "__main__":
    main()
