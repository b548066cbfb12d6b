"""Trend cases: kinds of change over a period, and rankings of entities by counting.

* ``trend_kinds`` — "Which kinds of fixes are becoming more common this quarter?"-style
  questions, corpus-wide or about one package. The truth is the routing label (trend)
  and the period the question names; which kinds rose is not scored here, because
  "kind" is defined by the domain YAML and a truth built on it would not be independent.
* ``trend_rankings`` — "Which five packages had the most uploads in 2024?": entities are
  counted over the kept entries dated in the period and the top N named in order
  (``expected.top_entities``, with ``expected.counts``). Rankings counted:

  - ``uploads``: entries per source package;
  - ``cve``: distinct CVE ids named per source package;
  - ``bugs``: distinct bug numbers closed per source package;
  - ``uploaders``: entries per author e-mail, named by that author's most frequent name.

  Ties are ordered by name; a ranking whose N-th and (N+1)-th counts are equal is never
  asked (its top N would be ambiguous), nor one with fewer than N non-zero entities.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import date
from typing import Any

from knowledge_os.evals.truth import periods as P
from knowledge_os.evals.truth._common import is_yaml_example, lang_for, make_case
from knowledge_os.evals.truth.corpus import TruthCorpus, TruthEntry

__all__ = ["RANKINGS", "rank", "trend_kinds", "trend_rankings"]

RANKINGS = ("uploads", "cve", "bugs", "uploaders")

_KIND_TEMPLATES = {
    "en": ["Which kinds of changes grew {period} compared with the period before?",
           "What types of fixes are becoming more common {period}?",
           "Is security work rising or falling {period}?",
           "How did the mix of bug fixes, security fixes and packaging work shift {period}?",
           "Which kinds of fixes dominated {pkg} uploads {period}, and how does that compare with before?",
           "Is {pkg} getting more or fewer security uploads {period} than before?"],
    "ru": ["Какие типы изменений стали встречаться чаще {period}?",
           "Как менялась доля исправлений безопасности {period}?",
           "Каких исправлений стало больше {period}, а каких меньше?",
           "Какие виды изменений преобладали в {pkg} {period} по сравнению с прошлым периодом?",
           "Стало ли у {pkg} больше обновлений безопасности {period}?"],
}

_N_EN = {3: "three", 5: "five", 10: "ten"}
_N_RU_PKG = {3: "три пакета", 5: "пять пакетов", 10: "десять пакетов"}
_N_RU_PEOPLE = {3: "трёх", 5: "пятерых", 10: "десятерых"}
_RANK_TEMPLATES = {
    ("uploads", "en"): ["Which {n} packages had the most uploads {period}?",
                        "Name the top {n} packages by number of uploads {period}.",
                        "What were the {n} most frequently updated packages {period}?"],
    ("uploads", "ru"): ["Какие {n_pkg} обновлялись чаще всего {period}?",
                        "Назови {n_pkg} с наибольшим числом загрузок {period}."],
    ("cve", "en"): ["Which {n} packages got the most CVE fixes {period}?",
                    "Rank the top {n} packages by CVE ids fixed {period}."],
    ("cve", "ru"): ["Какие {n_pkg} получили больше всего исправлений CVE {period}?",
                    "Назови {n_pkg}, где {period} закрыли больше всего CVE."],
    ("bugs", "en"): ["Which {n} packages closed the most Debian bugs {period}?",
                     "Top {n} packages by bugs closed {period}?"],
    ("bugs", "ru"): ["Какие {n_pkg} закрыли больше всего багов {period}?",
                     "Назови {n_pkg} с наибольшим числом закрытых ошибок {period}."],
    ("uploaders", "en"): ["Who were the {n} most active uploaders {period}?",
                          "Which {n} maintainers signed the most uploads {period}?"],
    ("uploaders", "ru"): ["Назови {n_people} самых активных сопровождающих {period}.",
                          "Кто из сопровождающих загрузил больше всего версий {period}? Назови {n_people}."],
}


def _kind_periods(as_of: date) -> list[P.Period]:
    out = [P.this_quarter(as_of), P.last_quarter(as_of), P.this_year(as_of), P.last_year(as_of),
           P.last_months(6, as_of), P.last_months(12, as_of)]
    out += [P.year(y, as_of=as_of) for y in range(as_of.year - 7, as_of.year)]
    out += [P.quarter_of(y, q) for y in range(as_of.year - 6, as_of.year - 3) for q in (1, 2, 3, 4)]
    return out


def trend_kinds(corpus: TruthCorpus, *, as_of: date, n: int = 20, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` "which kinds of change rose" cases; a third name a package that has
    entries in the period.

    Returns:
        Cases with ``expected`` = {domain: "trend", period: {from, to}} and, for package
        questions, ``packages``.
    """
    rng = random.Random(seed)
    periods = _kind_periods(as_of)
    cases: list[dict[str, Any]] = []
    attempts = 0
    while len(cases) < n and attempts < 20 * max(n, 1):
        attempts += 1
        period = rng.choice(periods)
        lang = lang_for(len(cases))
        with_pkg = len(cases) % 3 == 2
        templates = [t for t in _KIND_TEMPLATES[lang] if ("{pkg}" in t) == with_pkg]
        expected: dict[str, Any] = {"domain": "trend", "period": period.as_dict()}
        pkg = ""
        if with_pkg:
            active = sorted({e.package for e in corpus.in_period(period.start, period.end)})
            if not active:
                continue
            pkg = rng.choice(active)
            expected["packages"] = [pkg]
        query = rng.choice(templates).format(period=period.phrase(lang), pkg=pkg)
        if is_yaml_example(query) or any(c["query"] == query for c in cases):
            continue
        tags = ["trend", "kinds", "relative" if period.relative else "absolute"]
        cases.append(make_case(f"kinds-{len(cases) + 1:04d}", query, lang, tags, expected))
    return cases


def rank(entries: list[TruthEntry], ranking: str) -> list[tuple[str, int]]:
    """Count entities over ``entries`` for one of :data:`RANKINGS`.

    Returns:
        ``(entity, count)`` pairs with count > 0, by count descending then name.

    Raises:
        ValueError: an unknown ranking name.
    """
    counts: Counter[str] = Counter()
    if ranking == "uploads":
        counts.update(e.package for e in entries)
    elif ranking in ("cve", "bugs"):
        ids: dict[str, set[str]] = defaultdict(set)
        for e in entries:
            ids[e.package].update(e.cves if ranking == "cve" else e.bugs)
        counts.update({p: len(s) for p, s in ids.items() if s})
    elif ranking == "uploaders":
        names: dict[str, Counter[str]] = defaultdict(Counter)
        for e in entries:
            if e.author_email:
                names[e.author_email][e.author_name or e.author_email] += 1
        for mail, by_name in names.items():
            best = sorted(by_name.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            counts[best] += sum(by_name.values())
    else:
        raise ValueError(f"unknown ranking {ranking!r}; allowed: {', '.join(RANKINGS)}")
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def trend_rankings(corpus: TruthCorpus, *, as_of: date, n: int = 30, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` "which N packages had the most …" cases with counted answers.

    Returns:
        Cases with ``expected`` = {domain: "trend", period, top_entities: [N names in
        order], counts: [N ints], ranking: one of :data:`RANKINGS`}.
    """
    periods = _kind_periods(as_of)[2:]  # quarters "this"/"last" are too thin to rank
    combos: list[tuple[str, P.Period, int]] = []
    for period in periods:
        entries = corpus.in_period(period.start, period.end)
        for ranking in RANKINGS:
            ranked = rank(entries, ranking)
            for top in (3, 5, 10):
                if len(ranked) <= top or ranked[top - 1][1] == ranked[top][1]:
                    continue
                combos.append((ranking, period, top))
    rng = random.Random(seed)
    rng.shuffle(combos)
    cases: list[dict[str, Any]] = []
    used: set[tuple[str, date, date]] = set()
    for ranking, period, top in combos:
        if len(cases) >= n:
            break
        if (ranking, period.start, period.end) in used:
            continue
        used.add((ranking, period.start, period.end))
        ranked = rank(corpus.in_period(period.start, period.end), ranking)[:top]
        lang = lang_for(len(cases))
        query = rng.choice(_RANK_TEMPLATES[(ranking, lang)]).format(
            n=_N_EN[top], n_pkg=_N_RU_PKG[top], n_people=_N_RU_PEOPLE[top],
            period=period.phrase(lang))
        if is_yaml_example(query):
            continue
        cases.append(make_case(
            f"rank-{len(cases) + 1:04d}", query, lang,
            ["trend", "ranking", ranking, "relative" if period.relative else "absolute"],
            {"domain": "trend", "period": period.as_dict(), "ranking": ranking,
             "top_entities": [name for name, _ in ranked], "counts": [c for _, c in ranked]},
        ))
    return cases
