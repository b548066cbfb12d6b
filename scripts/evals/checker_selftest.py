"""Measure the answer checker on this machine's changelogs (no pipeline involved).

Usage::

    python scripts/evals/checker_selftest.py [--doc-dir /usr/share/doc] [--n 2000] [--seed 1]

For ``n`` random entries it writes a faithful answer (the entry restated as the
data-written listing does: ``- <package> <version> (<date>): <change lines> [1]``, citing
the entry) and four corrupted ones, each with one planted error:

* ``version``: the version with a digit appended (a version the package never had);
* ``package``: the version put under another package that never had it;
* ``cve``: a CVE id no entry of the corpus names appended;
* ``year``: "in <year - 7>" appended (no cited entry, no question period has it).

Prints the share of faithful answers flagged (false positives) and, per planted error,
the share detected (the planted token among ``ungrounded``).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from knowledge_os.evals.truth import cached_corpus, check_answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc-dir", type=Path, default=Path("/usr/share/doc"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    corpus = cached_corpus(args.doc_dir)
    rng = random.Random(args.seed)
    entries = [e for e in corpus.entries if e.day is not None]
    sample = rng.sample(entries, min(args.n, len(entries)))
    packages = sorted(corpus.by_package)
    flagged = 0
    detected = {"version": 0, "package": 0, "cve": 0, "year": 0}
    tried = dict.fromkeys(detected, 0)
    question = {"query": "", "expected": {}}
    for e in sample:
        body = " ".join(e.text.split())
        cited = [e.doc_id]
        faithful = f"- {e.package} {e.version} ({e.day}): {body} [1]"
        if check_answer(faithful, cited_ids=cited, corpus=corpus, question=question)["ungrounded"]:
            flagged += 1
        head = f"{e.package} {e.version} ({e.day}) [1]"
        bad_version = f"{e.version}9"
        other = rng.choice(packages)
        cve = f"CVE-{e.day.year}-{rng.randrange(90000, 99999)}"
        plants = {
            "version": (f"{e.package} {bad_version} followed {head}.", f"version {e.package} {bad_version}"),
            "package": (f"{other} {e.version}: {body[:80]} [1]", f"version {other} {e.version}"),
            "cve": (f"{head} fixed {cve}.", f"cve {cve}"),
            "year": (f"{head}, uploaded in {e.day.year - 7}.", f"year {e.day.year - 7}"),
        }
        for kind, (answer, token) in plants.items():
            if kind == "version" and bad_version in corpus.versions.get(e.package, ()):
                continue
            if kind == "package" and (other == e.package or e.version in corpus.versions.get(other, ())):
                continue
            if kind == "cve" and cve in corpus.by_cve:
                continue
            tried[kind] += 1
            found = check_answer(answer, cited_ids=cited, corpus=corpus, question=question)["ungrounded"]
            detected[kind] += token in found
    n = len(sample)
    print(f"entries {n} (seed {args.seed}); faithful answers flagged: {flagged}/{n} = {flagged / n:.2%}")
    for kind in detected:
        print(f"planted {kind:8s} detected {detected[kind]}/{tried[kind]} = {detected[kind] / max(tried[kind], 1):.2%}")


if __name__ == "__main__":
    main()
