"""The registry of case builders and :func:`build_cases`, the eval contract's entry point.

A builder is ``fn(corpus, *, as_of, n, seed) -> list[case]``; cases follow the schema of
the eval contract (``{id, query, lang, tags, expected}``). ``answers`` mixes every
changelog builder into one set for the answer and retrieval suites. ``qa_narrativeqa``
reads the public QA set instead of the changelogs (see :mod:`knowledge_os.evals.truth.qa`;
its posts must be ingested with :func:`~knowledge_os.evals.truth.qa.prepare_qa`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from knowledge_os.evals.truth.corpus import DEFAULT_DOC_DIR, TruthCorpus, fingerprint, load_corpus
from knowledge_os.evals.truth.digests import package_follow_up, package_latest, package_newest, package_period
from knowledge_os.evals.truth.lookups import bug_lookup, cve_lookup, free_text
from knowledge_os.evals.truth.qa import qa_narrativeqa
from knowledge_os.evals.truth.trends import trend_kinds, trend_rankings

__all__ = ["BUILDERS", "MIX", "NO_CORPUS", "Builder", "answers", "build_cases", "cached_corpus"]

Builder = Callable[..., list[dict[str, Any]]]

# Share of each builder in the ``answers`` mix (sums to 1).
MIX: tuple[tuple[str, float], ...] = (
    ("cve_lookup", 0.20), ("bug_lookup", 0.15), ("package_period", 0.25),
    ("trend_kinds", 0.10), ("trend_rankings", 0.15), ("free_text", 0.15),
)


def answers(corpus: TruthCorpus, *, as_of: date, n: int = 120, seed: int = 7) -> list[dict[str, Any]]:
    """About ``n`` cases drawn from every builder in the proportions of :data:`MIX`
    (each share rounded; fewer when a builder runs short). Ids keep their builder's
    prefix (``cve-0001``, ``rank-0003``, ...), so they stay unique."""
    out: list[dict[str, Any]] = []
    for name, share in MIX:
        out += BUILDERS[name](corpus, as_of=as_of, n=round(n * share), seed=seed)
    return out


BUILDERS: dict[str, Builder] = {
    "cve_lookup": cve_lookup,
    "bug_lookup": bug_lookup,
    "package_period": package_period,
    "package_latest": package_latest,
    "package_newest": package_newest,
    "package_follow_up": package_follow_up,
    "trend_kinds": trend_kinds,
    "trend_rankings": trend_rankings,
    "free_text": free_text,
    "answers": answers,
    "qa_narrativeqa": qa_narrativeqa,
}
# Builders whose cases do not come from the changelogs (no corpus is parsed for them).
NO_CORPUS = frozenset({"qa_narrativeqa"})


@functools.lru_cache(maxsize=4)
def _corpus_at(doc_dir: str, stamp: str) -> TruthCorpus:
    del stamp  # part of the cache key only
    return load_corpus(Path(doc_dir))


def cached_corpus(doc_dir: Path = DEFAULT_DOC_DIR) -> TruthCorpus:
    """:func:`load_corpus`, parsed once per folder and process while its changelogs stay
    the same (keyed on their :func:`~knowledge_os.evals.truth.corpus.fingerprint`)."""
    folder = Path(doc_dir).resolve()
    return _corpus_at(str(folder), fingerprint(sorted(folder.glob("*/changelog.Debian.gz"))))


def build_cases(name: str, *, doc_dir: Path = DEFAULT_DOC_DIR, as_of: date, n: int,
                seed: int) -> list[dict[str, Any]]:
    """Build ``n`` cases (fewer if the corpus runs short) with a registered builder.

    Args:
        name: A key of :data:`BUILDERS`.
        doc_dir: Folder of package folders holding ``changelog.Debian.gz``.
        as_of: "Today" for relative periods ("this year", "this quarter").
        n: Number of cases wanted, >= 0.
        seed: Random seed; the same corpus, as_of, n and seed give the same cases.

    Returns:
        Cases in the eval contract's schema.

    Raises:
        KeyError: ``name`` is not registered (the message lists the allowed names).
        ValueError: ``n`` is negative.
    """
    if name not in BUILDERS:
        raise KeyError(f"unknown case builder {name!r}; allowed: {', '.join(sorted(BUILDERS))}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    corpus = None if name in NO_CORPUS else cached_corpus(doc_dir)
    return BUILDERS[name](corpus, as_of=as_of, n=n, seed=seed)
