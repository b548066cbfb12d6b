"""Ranking questions: which entities lead by some measure in a period (English, Russian).

"Which five packages had the most uploads in 2024?", "which packages got the most CVE
fixes this year?", "Какие пакеты чаще всего обновлялись в 2025 году?", "top maintainers
by uploads". :func:`parse_ranking` reads the entity type, the measure and N from the
question (the period is the query's :class:`~knowledge_os.retrieval.query.DateRange`);
:func:`count_entities` counts per entity from documents. Both are pure functions.

Entity keys are the ingest's entity ids without their prefix
(:mod:`knowledge_os.retrieval.entities`): the source package (a changelog's channel), a
maintainer's e-mail address (lower-case; the entry's ``author`` metadata), a CVE id, a
Debian bug number closed by the entry.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from knowledge_os.retrieval.base import Document

__all__ = [
    "DEFAULT_N",
    "MAX_N",
    "Entity",
    "Measure",
    "RankingQuery",
    "count_entities",
    "parse_ranking",
]

Entity = Literal["package", "maintainer", "cve", "bug"]
Measure = Literal["uploads", "cves", "bugs", "packages"]

DEFAULT_N = 5  # the "top five" when the question gives no number
MAX_N = 50

_SUPERLATIVE = re.compile(
    r"\b(top|most|busiest|highest|largest|biggest|leading|rank(?:ing|ed)?)\b"
    r"|чаще\s+всего|больше\s+всего|наибольш|самы[йеихм]|\bтоп\b|топ-|лидир|лидер",
    re.IGNORECASE,
)
# The words that name each entity type; the first one in the question is what is ranked.
_ENTITY_WORDS: tuple[tuple[Entity, re.Pattern[str]], ...] = (
    ("maintainer", re.compile(
        r"\b(maintainers?|uploaders?|authors?|developers?|people|persons?|who)\b"
        r"|сопровожда\w*|мейнтейнер\w*|разработчик\w*|автор\w*|\bкто\b", re.IGNORECASE)),
    ("package", re.compile(r"\bpackages?\b|\bsource packages?\b|пакет\w*", re.IGNORECASE)),
    ("cve", re.compile(r"\bCVEs?\b|\bvulnerabilit(?:y|ies)\b|уязвимост\w*", re.IGNORECASE)),
    ("bug", re.compile(r"\bbugs?\b|\bбаг\w*|ошибк\w*|ошибок", re.IGNORECASE)),
)
_CVE_MEASURE = re.compile(
    r"\bCVEs?\b|\bsecurity\b|\bvulnerabilit|уязвимост|безопасност", re.IGNORECASE)
_BUG_MEASURE = re.compile(
    r"\bbugs?\b|\bcloses\b|\bclosed\b|\bбаг|ошибк|ошибок|закры", re.IGNORECASE)
_PACKAGE_MEASURE = re.compile(r"\bpackages\b|пакет", re.IGNORECASE)

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15,
    "twenty": 20, "dozen": 12,
}
# Russian stems cover the cases a question uses (пять, пяти; три, трёх; десять, десяти).
_NUMBER_STEMS_RU = (
    ("одиннадцат", 11), ("двенадцат", 12), ("пятнадцат", 15), ("двадцат", 20),
    ("один", 1), ("одн", 1), ("два", 2), ("две", 2), ("двух", 2), ("три", 3), ("трёх", 3),
    ("трех", 3), ("четыр", 4), ("пят", 5), ("шест", 6), ("сем", 7), ("восем", 8),
    ("девят", 9), ("десят", 10), ("дюжин", 12),
)
_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
# A number that is a period ("last 6 months", "за 3 месяца"), a year, an id or a version
# is not N.
_NUMBER_RE = re.compile(
    r"(?<![\w.#-])(\d{1,3})(?![\w.-])(?!\s*(?:days?|weeks?|months?|years?|quarters?|"
    r"дн|ден|недел|месяц|год|лет|квартал))",
    re.IGNORECASE,
)
_TOP_N_RE = re.compile(r"(?:\btop|\bтоп)[-\s]?(\d{1,3})\b", re.IGNORECASE)
_RU_UNIT_AFTER = re.compile(r"\s*(дн|ден|недел|месяц|год|лет|квартал)", re.IGNORECASE)
_EN_UNIT_AFTER = re.compile(r"\s*(days?|weeks?|months?|years?|quarters?)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class RankingQuery:
    """What a ranking question asks.

    Attributes:
        entity: What is ranked.
        measure: What each entity is ranked by: ``uploads`` (changelog entries),
            ``cves`` (distinct CVE ids its entries name), ``bugs`` (distinct Debian bugs
            its entries close) or ``packages`` (distinct source packages whose entries
            name it; CVEs and bugs only).
        n: How many to name, 1..:data:`MAX_N` (default :data:`DEFAULT_N`).
    """

    entity: Entity
    measure: Measure
    n: int = DEFAULT_N


def _first_entity(text: str) -> tuple[Entity, int, int] | None:
    best: tuple[Entity, int, int] | None = None
    for entity, pattern in _ENTITY_WORDS:
        m = pattern.search(text)
        if m and (best is None or m.start() < best[1]):
            best = (entity, m.start(), m.end())
    return best


def _number(text: str) -> int | None:
    m = _TOP_N_RE.search(text)
    if m and 1 <= int(m[1]) <= MAX_N:
        return int(m[1])
    for m in _NUMBER_RE.finditer(text):
        value = int(m[1])
        if 1 <= value <= MAX_N:
            return value
    for m in _WORD_RE.finditer(text):
        word = m[0].lower()
        if word in _NUMBER_WORDS:
            if _EN_UNIT_AFTER.match(text, m.end()):
                continue
            return _NUMBER_WORDS[word]
        for stem, value in _NUMBER_STEMS_RU:
            # Whole number words only: "пять", "пяти", "пятёрку" — not "пятница".
            if word.startswith(stem) and len(word) <= len(stem) + 4 and not word.startswith("пятниц"):
                if _RU_UNIT_AFTER.match(text, m.end()):
                    break
                return value
    return None


def parse_ranking(text: str) -> RankingQuery | None:
    """The ranking a question asks for, or None when it asks for none.

    A ranking question has a superlative ("most", "top", "busiest", "чаще всего",
    "больше всего", "самые", "топ") and names an entity type; the first entity word is
    what is ranked ("Which CVEs were fixed in the most packages?" ranks CVEs by
    packages), "who"/"кто" counts as maintainers. The measure is CVE fixes when the
    rest of the question speaks of CVEs or security, bugs when it speaks of bugs or
    closing, packages (for CVE and bug rankings) when it speaks of packages, uploads
    otherwise. N is the first number 1..50 in digits or words (English; Russian stems
    in any case) that is not a period length, a year, a version or an id.

    Args:
        text: The question.

    Returns:
        The parsed ranking, or None.
    """
    if not _SUPERLATIVE.search(text):
        return None
    first = _first_entity(text)
    if first is None:
        return None
    entity, _, end = first
    rest = text[:first[1]] + " " + text[end:]
    measure: Measure = "uploads"
    if entity in ("package", "maintainer"):
        if _CVE_MEASURE.search(rest):
            measure = "cves"
        elif _BUG_MEASURE.search(rest):
            measure = "bugs"
    elif _PACKAGE_MEASURE.search(rest):
        measure = "packages"
    return RankingQuery(entity=entity, measure=measure, n=_number(text) or DEFAULT_N)


def _keys(doc: Document, entity: Entity) -> list[str]:
    if entity == "package":
        return [doc.channel]
    if entity == "maintainer":
        return [e.removeprefix("person:") for e in doc.entities if e.startswith("person:")]
    prefix = "cve:" if entity == "cve" else "bug:"
    return [e.removeprefix(prefix) for e in doc.entities if e.startswith(prefix)]


def count_entities(
    docs: Iterable[Document], query: RankingQuery
) -> tuple[Counter[str], dict[str, str], dict[str, set[str]]]:
    """Count ``query.measure`` per ``query.entity`` over ``docs``.

    A maintainer is a person, not an address: the e-mail addresses an entry's
    ``author`` gives are grouped under the name each is most often given with (ties: the
    alphabetically first), so "Matthias Klose" counts his uploads from two addresses.

    Args:
        docs: The documents of one window (each an upload).
        query: What to count.

    Returns:
        ``(counts, display, members)``: ``counts[key]`` is the measure for the entity
        (uploads: entries; cves / bugs: distinct ids over its entries; packages:
        distinct channels); ``display[key]`` the name to show (the package, CVE id or
        bug number itself, or the maintainer's name); ``members[key]`` the entity keys
        of the documents it groups (the maintainer's e-mail addresses; the key itself
        otherwise).
    """
    per: dict[str, set[str]] = defaultdict(set)
    uploads: Counter[str] = Counter()
    names: dict[str, Counter[str]] = defaultdict(Counter)
    for doc in docs:
        for key in _keys(doc, query.entity):
            uploads[key] += 1
            if query.entity == "maintainer":
                author = str(doc.metadata.get("author", ""))
                names[key][re.sub(r"\s*<[^<>]*>\s*$", "", author).strip() or key] += 1
            if query.measure == "cves":
                per[key].update(e for e in doc.entities if e.startswith("cve:"))
            elif query.measure == "bugs":
                per[key].update(e for e in doc.entities if e.startswith("bug:"))
            elif query.measure == "packages":
                per[key].add(doc.channel)
    members: dict[str, set[str]] = defaultdict(set)
    for key in uploads:
        group = key
        if query.entity == "maintainer":
            group = sorted(names[key].items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        members[group].add(key)
    counts: Counter[str] = Counter()
    for group, keys in members.items():
        if query.measure == "uploads":
            counts[group] = sum(uploads[k] for k in keys)
        elif value := len(set().union(*(per[k] for k in keys))):
            counts[group] = value
    return counts, {k: k for k in counts}, {k: members[k] for k in counts}
