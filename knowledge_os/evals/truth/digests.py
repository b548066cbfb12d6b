"""Digest cases: "What changed in <package> <period>?" and, with no period, "What changed
in <package>?", in English and Russian.

The expected documents are the package's kept entries dated inside the period
(inclusive, UTC dates), newest first. A period is one of: since the first of a month
(the month of the package's 1st–4th newest entry), a calendar year, a calendar month or
quarter, or — resolved against ``as_of`` — this year, last year, the last 6 or 12
months. Only periods holding 1 to :data:`MAX_EXPECTED` of the package's entries are
asked (a digest retrieves at most 30 documents). Without a period the question means
lately: the expected documents are the package's :data:`LATEST_EXPECTED` newest entries
(:func:`package_latest`). A follow-up in a thread ("And in 2024?") expects the entries
of the package its thread asked about (:func:`package_follow_up`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from typing import Any

from knowledge_os.evals.truth import periods as P
from knowledge_os.evals.truth._common import is_yaml_example, lang_for, make_case
from knowledge_os.evals.truth.corpus import TruthCorpus

__all__ = ["LATEST_EXPECTED", "MAX_EXPECTED", "package_follow_up", "package_latest", "package_period"]

MAX_EXPECTED = 12
#: Newest entries a period-less package question expects to see cited.
LATEST_EXPECTED = 3

_TEMPLATES = {
    "en": ["What changed in {pkg} {period}?",
           "Summarise the {pkg} uploads {period}.",
           "What's new in {pkg} {period}?",
           "Give me a digest of {pkg} changes {period}.",
           "Which {pkg} uploads were there {period}, and what did they change?"],
    "ru": ["Что изменилось в {pkg} {period}?",
           "Какие изменения были в {pkg} {period}?",
           "Сводка изменений {pkg} {period}.",
           "Что нового в {pkg} {period}?",
           "Какие загрузки {pkg} были {period} и что в них изменилось?"],
}


def _packages_until(corpus: TruthCorpus, rng: random.Random, cases: list[dict[str, Any]],
                    n: int) -> Iterator[str]:
    """The corpus's packages in a random order (drawn with ``rng``), until ``cases`` holds ``n``."""
    packages = sorted(corpus.by_package)
    for pkg in rng.sample(packages, len(packages)):
        if len(cases) >= n:
            return
        yield pkg


def _periods_for(corpus: TruthCorpus, pkg: str, as_of: date, rng: random.Random) -> list[P.Period]:
    dated = [e for e in corpus.by_package[pkg] if e.day is not None and e.day <= as_of]
    if not dated:
        return []
    pivot = dated[min(rng.randrange(4), len(dated) - 1)].day
    assert pivot is not None
    years = sorted({e.day.year for e in dated if e.day})
    y = rng.choice(years)
    month_entry = rng.choice(dated).day
    assert month_entry is not None
    quarter = (month_entry.month - 1) // 3 + 1
    return [
        P.since_month(pivot.year, pivot.month, as_of=as_of),
        P.year(y, as_of=as_of),
        P.month_of(month_entry.year, month_entry.month),
        P.quarter_of(month_entry.year, quarter),
        P.this_year(as_of),
        P.last_year(as_of),
        P.last_months(rng.choice((6, 12)), as_of),
    ]


def package_period(corpus: TruthCorpus, *, as_of: date, n: int = 40, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` package/period digest cases, one per package.

    Args:
        corpus: The parsed changelogs.
        as_of: "Today" for relative periods and the end of open ones ("since …").
        n: Number of cases wanted; fewer when the corpus has fewer packages.
        seed: Random seed; same corpus and seed give the same cases.

    Returns:
        Cases with ``expected`` = {domain: "digest", doc_ids, packages: [package],
        period: {from, to}}.
    """
    rng = random.Random(seed)
    cases: list[dict[str, Any]] = []
    for pkg in _packages_until(corpus, rng, cases, n):
        options = _periods_for(corpus, pkg, as_of, rng)
        rng.shuffle(options)
        for period in options:
            found = corpus.in_period(period.start, period.end, package=pkg)
            if not 1 <= len(found) <= MAX_EXPECTED:
                continue
            lang = lang_for(len(cases))
            query = rng.choice(_TEMPLATES[lang]).format(pkg=pkg, period=period.phrase(lang))
            if is_yaml_example(query):
                continue
            tags = ["digest", "period", "relative" if period.relative else "absolute"]
            cases.append(make_case(
                f"digest-{len(cases) + 1:04d}", query, lang, tags,
                {"domain": "digest", "doc_ids": [e.doc_id for e in found], "packages": [pkg],
                 "period": period.as_dict()},
            ))
            break
    return cases


_LATEST_TEMPLATES = {
    "en": ["What changed in {pkg}?", "What's new in {pkg}?", "What are the latest changes in {pkg}?",
           "What changed in the {pkg} package?"],
    "ru": ["Что изменилось в пакете {pkg}?", "Что нового в {pkg}?", "Какие последние изменения в {pkg}?",
           "Что изменилось в {pkg}?"],
}


def package_latest(corpus: TruthCorpus, *, as_of: date, n: int = 40, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` period-less digest cases ("What changed in curl?"), one per package.

    Only packages with more than :data:`LATEST_EXPECTED` dated entries up to ``as_of`` are
    asked (otherwise every entry is "the newest" and the case tests nothing).

    Args:
        corpus: The parsed changelogs.
        as_of: "Today": entries dated after it do not exist yet for the question.
        n: Number of cases wanted; fewer when the corpus has fewer such packages.
        seed: Random seed; same corpus and seed give the same cases.

    Returns:
        Cases with ``expected`` = {domain: "digest", doc_ids: the package's newest
        :data:`LATEST_EXPECTED` entries, newest first, packages: [package]}.
    """
    return _newest_cases(corpus, as_of=as_of, n=n, seed=seed, templates=_LATEST_TEMPLATES, name="latest",
                         expected=LATEST_EXPECTED, more_than=LATEST_EXPECTED)


def _newest_cases(corpus: TruthCorpus, *, as_of: date, n: int, seed: int, templates: dict[str, list[str]],
                  name: str, expected: int, more_than: int) -> list[dict[str, Any]]:
    """One case per package (random order, up to ``n``) with more than ``more_than`` dated
    entries up to ``as_of``: a question of ``templates`` (alternating EN / RU) expecting
    its ``expected`` newest entries, newest first; ids ``{name}-0001``..., tags
    ``["digest", name]``."""
    rng = random.Random(seed)
    cases: list[dict[str, Any]] = []
    for pkg in _packages_until(corpus, rng, cases, n):
        dated = [e for e in corpus.by_package[pkg] if e.day is not None and e.day <= as_of]
        if len(dated) <= more_than:
            continue
        newest = sorted(dated, key=lambda e: (-e.when.timestamp(), e.doc_id))[:expected]  # type: ignore[union-attr]
        lang = lang_for(len(cases))
        query = rng.choice(templates[lang]).format(pkg=pkg)
        if is_yaml_example(query):
            continue
        cases.append(make_case(
            f"{name}-{len(cases) + 1:04d}", query, lang, ["digest", name],
            {"domain": "digest", "doc_ids": [e.doc_id for e in newest], "packages": [pkg]},
        ))
    return cases


_NEWEST_TEMPLATES = {
    "en": ["What is the latest version of {pkg}?", "Which is the newest upload of {pkg}?",
           "What is the current version of {pkg}?", "What was the most recent release of {pkg}?"],
    "ru": ["Какая последняя версия {pkg}?", "Какая самая новая версия {pkg}?", "Какая текущая версия {pkg}?",
           "Какой последний выпуск {pkg}?"],
}


def package_newest(corpus: TruthCorpus, *, as_of: date, n: int = 40, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` cases asking for a package's newest version ("What is the latest version
    of openssl?", "Какая последняя версия curl?"), one per package with more than one
    dated entry up to ``as_of``. Arguments as for :func:`package_latest`; ``expected`` =
    {domain: "digest", doc_ids: [the package's newest entry], packages: [package]}.
    """
    return _newest_cases(corpus, as_of=as_of, n=n, seed=seed, templates=_NEWEST_TEMPLATES, name="newest",
                         expected=1, more_than=1)


_FIRST = {"en": "What changed in {pkg} {period}?", "ru": "Что изменилось в {pkg} {period}?"}
_FOLLOW = {"en": ["And {period}?", "What about {period}?"], "ru": ["А {period}?", "А что {period}?"]}


def package_follow_up(corpus: TruthCorpus, *, as_of: date, n: int = 40, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` follow-up cases, one per package: "What changed in curl in 2025?", then
    in the same thread "And in 2024?" (RU "А в 2024 году?"), which names no package.

    Args:
        corpus: The parsed changelogs.
        as_of: "Today": the current year is cut at it.
        n: Number of cases wanted; fewer when fewer packages have two such years.
        seed: Random seed; same corpus and seed give the same cases.

    Returns:
        Cases with ``before`` = [the first question], ``same_thread`` true, ``query`` the
        follow-up and ``expected`` = {domain: "digest", doc_ids: the package's entries in
        the follow-up's year, packages: [package], period}; both years hold 1 to
        :data:`MAX_EXPECTED` of the package's entries.
    """
    rng = random.Random(seed)
    cases: list[dict[str, Any]] = []
    for pkg in _packages_until(corpus, rng, cases, n):
        years = sorted({e.day.year for e in corpus.by_package[pkg] if e.day is not None and e.day <= as_of})
        fit = [P.year(y, as_of=as_of) for y in years]
        fit = [p for p in fit if 1 <= len(corpus.in_period(p.start, p.end, package=pkg)) <= MAX_EXPECTED]
        if len(fit) < 2:
            continue
        first, then = rng.sample(fit, 2)
        lang = lang_for(len(cases))
        found = corpus.in_period(then.start, then.end, package=pkg)
        case = make_case(
            f"follow-{len(cases) + 1:04d}", rng.choice(_FOLLOW[lang]).format(period=then.phrase(lang)), lang,
            ["digest", "follow_up"],
            {"domain": "digest", "doc_ids": [e.doc_id for e in found], "packages": [pkg], "period": then.as_dict()},
        )
        cases.append({**case, "before": [_FIRST[lang].format(pkg=pkg, period=first.phrase(lang))], "same_thread": True})
    return cases
