"""Lookup cases: an upload named by a CVE id, a Debian bug number, or one of its lines.

* ``cve_lookup`` — "Which Debian upload contains the fix for CVE-…?": expected doc ids
  are the kept entries whose text names the CVE (restricted to one package when the
  question names it); ``ids`` = [the CVE id].
* ``bug_lookup`` — "Какая версия закрыла баг #…?": expected doc ids are the kept entries
  whose ``Closes:`` field lists the bug; ``ids`` = ["#NNN"].
* ``free_text`` — a question quoting a change line that occurs in exactly one entry of
  the corpus and has rare words (document frequency <= :data:`RARE_DF`): that entry has
  grade 3; other entries of the same package that share at least half of the line's rare
  words have grade 1 (``expected.graded``, for nDCG).

Every builder is deterministic for a corpus, ``n`` and ``seed`` and alternates English
and Russian questions.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date
from typing import Any

from knowledge_os.evals.truth._common import is_yaml_example, lang_for, make_case
from knowledge_os.evals.truth.corpus import TruthCorpus

__all__ = ["RARE_DF", "bug_lookup", "cve_lookup", "free_text"]

RARE_DF = 5  # a word in at most this many kept entries is "rare"

_CVE_TEMPLATES = {
    "en": ["Which Debian upload contains the fix for {id}?",
           "In which {pkg} version was {id} fixed?",
           "Where was {id} patched?",
           "{id}: which package version addresses it?",
           "Show me the changelog entry that mentions {id}."],
    "ru": ["В какой загрузке исправлена уязвимость {id}?",
           "В какой версии {pkg} закрыта {id}?",
           "Где была исправлена {id}?",
           "Какое обновление устраняет {id}?",
           "Покажи запись журнала изменений, где упоминается {id}."],
}
_BUG_TEMPLATES = {
    "en": ["Which upload closes Debian bug #{id}?",
           "In which version of {pkg} was bug #{id} fixed?",
           "What fixed bug #{id}?",
           "Which changelog entry closes #{id}?"],
    "ru": ["Какая версия закрыла баг #{id}?",
           "В какой версии {pkg} исправлен баг #{id}?",
           "Какая загрузка закрывает ошибку #{id}?",
           "Где закрыт баг #{id}?"],
}
_TEXT_TEMPLATES = {
    "en": ['Which upload says "{line}"?',
           'When did {pkg} get this change: "{line}"?',
           'Which version of {pkg} has the entry "{line}"?',
           'Find the changelog entry: "{line}"'],
    "ru": ["В какой загрузке есть изменение «{line}»?",
           "Когда в {pkg} появилось изменение «{line}»?",
           "В какой версии {pkg} есть запись «{line}»?",
           "Найди запись журнала изменений «{line}»."],
}

_WORD_RE = re.compile(r"[a-z][a-z0-9_+.-]{3,}")
_BULLET_RE = re.compile(r"^[*+-]\s+")
_HAS_ID_RE = re.compile(r"CVE-\d|#\d|closes:|\bbug\b", re.IGNORECASE)


def _stratified(corpus: TruthCorpus, table: dict[str, tuple[str, ...]],
                rng: random.Random) -> list[str]:
    """Ids in a seeded order that takes one id per package in turn, so a package
    naming thousands of ids (the kernel) does not fill the set alone."""
    by_package: dict[str, list[str]] = {}
    for key in sorted(table):
        by_package.setdefault(corpus.by_id[table[key][0]].package, []).append(key)
    queues = []
    for pkg in rng.sample(sorted(by_package), len(by_package)):
        keys = by_package[pkg]
        queues.append(rng.sample(keys, len(keys)))
    order: list[str] = []
    while queues:
        order += [q.pop() for q in queues]
        queues = [q for q in queues if q]
    return order


def _id_cases(corpus: TruthCorpus, *, table: dict[str, tuple[str, ...]], templates: dict,
              prefix: str, tag: str, id_form: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cases: list[dict[str, Any]] = []
    for key in _stratified(corpus, table, rng):
        if len(cases) >= n:
            break
        doc_ids = list(table[key])
        packages = sorted({corpus.by_id[d].package for d in doc_ids})
        lang = lang_for(len(cases))
        template = rng.choice(templates[lang])
        if "{pkg}" in template:
            if len(packages) != 1:
                template = next(t for t in templates[lang] if "{pkg}" not in t)
        query = template.format(id=key, pkg=packages[0])
        if is_yaml_example(query):
            continue
        cases.append(make_case(
            f"{prefix}-{len(cases) + 1:04d}", query, lang, [tag, "lookup", "digest"],
            {"domain": "digest", "doc_ids": doc_ids, "ids": [id_form.format(key)],
             "packages": packages},
        ))
    return cases


def cve_lookup(corpus: TruthCorpus, *, as_of: date, n: int = 40, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` "which upload fixed CVE-…" cases (``as_of`` unused: ids need no date).

    Returns:
        Cases with ``expected`` = {domain: "digest", doc_ids, ids: [CVE id], packages}.
    """
    del as_of
    return _id_cases(corpus, table=corpus.by_cve, templates=_CVE_TEMPLATES, prefix="cve",
                     tag="cve", id_form="{}", n=n, seed=seed)


def bug_lookup(corpus: TruthCorpus, *, as_of: date, n: int = 30, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` "which version closed bug #…" cases (``as_of`` unused).

    Returns:
        Cases with ``expected`` = {domain: "digest", doc_ids, ids: ["#NNN"], packages}.
    """
    del as_of
    return _id_cases(corpus, table=corpus.by_bug, templates=_BUG_TEMPLATES, prefix="bug",
                     tag="bug", id_form="#{}", n=n, seed=seed)


def _clean_line(line: str) -> str:
    return _BULLET_RE.sub("", line).strip().rstrip(".").strip()


def _items(lines: tuple[str, ...]) -> list[str]:
    """Change items: a bullet line (``*``, ``-``, ``+``) with the unbulleted lines that
    continue it (a long item wraps over lines), without the bullet; ``[ Name ]`` lines
    end an item and are not one."""
    items: list[str] = []
    current: list[str] | None = None
    for line in lines:
        if line.startswith("["):
            current = None
        elif _BULLET_RE.match(line):
            current = [_clean_line(line)]
            items.append("")
        elif current is not None:
            current.append(line.strip())
        else:
            continue
        if current is not None:
            items[-1] = " ".join(current)
    return [_clean_line(i) for i in items if i]


def free_text(corpus: TruthCorpus, *, as_of: date, n: int = 30, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` questions quoting a distinctive change line (``as_of`` unused).

    A change item (a bullet and the lines that continue it) qualifies when, without its
    bullet, it is 30–110 characters and 5 or more words long, names no CVE or bug, occurs (case-folded) in exactly one kept entry, and
    has at least two rare words. One line per entry, at most one entry per package.

    Returns:
        Cases with ``expected`` = {domain: "digest", doc_ids: [the entry],
        graded: {doc_id: 3 | 1}, packages: [package]}.
    """
    del as_of
    df: Counter[str] = Counter()
    line_count: Counter[str] = Counter()
    for e in corpus.entries:
        df.update(set(_WORD_RE.findall(e.text.casefold())))
        line_count.update({item.casefold() for item in _items(e.lines)})
    candidates: dict[str, tuple[str, str, frozenset[str]]] = {}  # package -> (doc id, line, rare)
    for e in corpus.entries:
        if e.package in candidates:
            continue
        for line in _items(e.lines):
            if not 30 <= len(line) <= 110 or len(line.split()) < 5:
                continue
            if _HAS_ID_RE.search(line) or line_count[line.casefold()] != 1:
                continue
            rare = frozenset(w for w in _WORD_RE.findall(line.casefold()) if df[w] <= RARE_DF)
            if len(rare) >= 2:
                candidates[e.package] = (e.doc_id, line, rare)
                break
    rng = random.Random(seed)
    packages = sorted(candidates)
    cases: list[dict[str, Any]] = []
    for pkg in rng.sample(packages, len(packages)):
        if len(cases) >= n:
            break
        doc_id, line, rare = candidates[pkg]
        lang = lang_for(len(cases))
        query = rng.choice(_TEXT_TEMPLATES[lang]).format(line=line, pkg=pkg)
        graded = {doc_id: 3}
        for other in corpus.by_package[pkg]:
            if other.doc_id == doc_id:
                continue
            words = set(_WORD_RE.findall(other.text.casefold()))
            if len(rare & words) * 2 >= len(rare):
                graded[other.doc_id] = 1
        cases.append(make_case(
            f"text-{len(cases) + 1:04d}", query, lang, ["free_text", "digest"],
            {"domain": "digest", "doc_ids": [doc_id], "graded": graded, "packages": [pkg]},
        ))
    return cases
