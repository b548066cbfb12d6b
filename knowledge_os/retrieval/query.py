"""Query analysis: the ids, packages and date range a question names (English, Russian).

Everything here is deterministic and cheap; the router and the retrieval service both
use it. Dates are resolved against ``as_of`` (the run's "today", UTC).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from knowledge_os.i18n import Lang, detect_language
from knowledge_os.retrieval.base import VectorFilter
from knowledge_os.retrieval.entities import bug_ids, cve_ids

__all__ = ["DateRange", "QueryAnalysis", "analyze_query", "day_ts", "follow_up", "parse_date_range",
           "unknown_package_names"]

_MONTHS_EN = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august",
     "september", "october", "november", "december"], start=1)}
_MONTHS_EN.update({k[:3]: v for k, v in list(_MONTHS_EN.items())})
# Russian month stems cover nominative, genitive and prepositional forms (март, марта, марте).
_MONTHS_RU = {"январ": 1, "феврал": 2, "март": 3, "апрел": 4, "ма": 5, "июн": 6, "июл": 7,
              "август": 8, "сентябр": 9, "октябр": 10, "ноябр": 11, "декабр": 12}
_RU_MONTH_RE = r"(январ\w*|феврал\w*|март\w*|апрел\w*|ма[йяе]|июн\w*|июл\w*|август\w*|сентябр\w*|октябр\w*|ноябр\w*|декабр\w*)"
_EN_MONTH_RE = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_EN_ORDINAL_RE = r"(first|second|third|fourth)"
_RU_ORDINAL_RE = r"(перв\w*|втор\w*|трет\w*|четв[её]рт\w*)"
_ORDINALS = {"fir": 1, "sec": 2, "thi": 3, "fou": 4, "пер": 1, "вто": 2, "тре": 3, "чет": 4}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365,
              "дн": 1, "ден": 1, "недел": 7, "месяц": 30, "год": 365, "лет": 365}

# Words that are also Debian package names but, in a question, are ordinary words.
_STOPWORDS = frozenset("""
a about after all an and any are as at be been before between by can changed changes
did do does done during each for from has have how in into is it its last less make
more most new of on or over past patch recent since so that the their them these this
those time to up was were what when where which while who why will with within year
file files login time less more which show list tell give find top what's fix fixes
fixed bug bugs security update updates upload uploads package packages kind kinds trend
trends rising quarter month week day days version versions debian release
""".split())


@dataclass(frozen=True, slots=True, kw_only=True)
class DateRange:
    """A half-open UTC range ``[ts_from, ts_to)`` in Unix seconds; either end may be open.
    ``label`` is what the query said, for manifests and prompts."""

    ts_from: int | None
    ts_to: int | None
    label: str

    def describe(self) -> str:
        """``"YYYY-MM-DD .. YYYY-MM-DD"``, both days inclusive (the range is half-open, so
        the last day shown is the one before ``ts_to``)."""
        fmt = lambda ts: datetime.fromtimestamp(ts, UTC).date().isoformat()  # noqa: E731
        start = fmt(self.ts_from) if self.ts_from is not None else "the beginning"
        end = fmt(self.ts_to - 86400) if self.ts_to is not None else "now"
        return f"{start} .. {end}"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryAnalysis:
    """What a question names.

    Attributes:
        text: The query, stripped.
        cves: CVE ids, upper-case.
        bugs: Debian bug numbers.
        packages: Channels (source packages) named, resolved through aliases.
        package_names: The question's words that named ``packages``, as written there
            (a binary name or a common name: ``libc6``, ``kernel``), in order.
        dates: The date range named, or None.
        lang: The question's language (``knowledge_os.i18n.detect_language``); answers
            are written in it.
        unknown_packages: Names in a package's place ("what changed in NAME", "что
            изменилось в NAME") that no ingested channel has, when no known package is
            named (:func:`unknown_package_names`); the answer says no entry is about them.
        follows: For a follow-up in a thread ("And in 2024?"), the previous question as
            it was read; ``text`` is then that question and this one (:func:`follow_up`).
            Empty for a question that stands alone.
    """

    text: str
    cves: tuple[str, ...] = ()
    bugs: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    package_names: tuple[str, ...] = ()
    dates: DateRange | None = None
    lang: Lang = "en"
    unknown_packages: tuple[str, ...] = ()
    follows: str = ""

    @property
    def entity_ids(self) -> tuple[str, ...]:
        """Graph/entity ids: ``cve:...``, ``bug:...``, ``package:...``."""
        return (
            tuple(f"cve:{c}" for c in self.cves)
            + tuple(f"bug:{b}" for b in self.bugs)
            + tuple(f"package:{p}" for p in self.packages)
        )

    def to_filter(self, *, with_dates: bool = True, with_packages: bool = True) -> VectorFilter:
        return VectorFilter(
            channels=self.packages or None if with_packages else None,
            ts_from=self.dates.ts_from if (with_dates and self.dates) else None,
            ts_to=self.dates.ts_to if (with_dates and self.dates) else None,
        )


def day_ts(d: date) -> int:
    """The start of day ``d`` (00:00 UTC) in Unix seconds: the unit of :class:`DateRange`."""
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


def _month_days(d: date) -> int:
    return (_add_months(d, 1) - timedelta(days=1)).day


def _ru_month(word: str) -> int:
    for stem, num in sorted(_MONTHS_RU.items(), key=lambda kv: -len(kv[0])):
        if word.startswith(stem):
            return num
    raise ValueError(word)


def parse_date_range(text: str, as_of: date) -> DateRange | None:
    """The date range a query names, resolved against ``as_of``; None if it names none.

    Understands (English / Russian): since <month> [year] / с <месяца> [года];
    in|during <month> <year>; in <year> / в|за <год> [году]; this|last quarter /
    в этом|прошлом квартале; Q1..Q4 <year>, the first..fourth quarter of <year> /
    в 1-м..4-м (первом..четвёртом) квартале <года>; this|last year / в этом|прошлом
    году; last|past N days|weeks|months|years / за последние N дней|недель|месяцев|лет
    (months are calendar months, from the same day N months back); last month|week /
    за последний месяц|неделю; since YYYY-MM[-DD] / с YYYY-MM[-DD]; since|from YYYY /
    с YYYY [года] (after YYYY / после YYYY: the year after); from YYYY to YYYY / с YYYY по
    YYYY [год] (whole years, cut at ``as_of``).
    A month without a year that lies after ``as_of`` means the previous year.
    """
    q = text.lower()
    tomorrow = day_ts(as_of + timedelta(days=1))

    def month_year(month: int, year: str | None) -> date:
        y = int(year) if year else as_of.year
        if not year and month > as_of.month:
            y -= 1
        return _month_start(y, month)

    m = re.search(r"\b(?:since|from|after|с|со|после)\s+(\d{4})-(\d{2})(?:-(\d{2}))?\b", q)
    if m:
        start = date(int(m[1]), int(m[2]), int(m[3] or 1))
        return DateRange(ts_from=day_ts(start), ts_to=tomorrow, label=m[0])
    # Whole years: "from 2021 to 2023" / "с 2021 по 2023 год", then "since 2021" / "с 2021 года"
    # ("after 2021" / "после 2021 года": from 2022).
    m = re.search(r"\b(?:from|between)\s+((?:19|20)\d{2})\s+(?:to|and|until|through|till)\s+((?:19|20)\d{2})\b", q) \
        or re.search(r"(?:^|\s)с\s+((?:19|20)\d{2})\s+(?:по|до)\s+((?:19|20)\d{2})(?!\d)", q)
    if m and int(m[1]) <= int(m[2]):
        return DateRange(ts_from=day_ts(date(int(m[1]), 1, 1)),
                         ts_to=min(day_ts(date(int(m[2]) + 1, 1, 1)), tomorrow), label=m[0].strip())
    m = re.search(r"\b(since|from|after)\s+((?:19|20)\d{2})\b(?!-\d)", q) \
        or re.search(r"(?:^|\s)(с|со|после|начиная с)\s+((?:19|20)\d{2})(?!\d)(?:\s+год\w*)?", q)
    if m:
        year = int(m[2]) + (m[1] in ("after", "после"))
        return DateRange(ts_from=day_ts(date(year, 1, 1)), ts_to=tomorrow, label=m[0].strip())
    m = re.search(rf"\b(?:since|from|after)\s+{_EN_MONTH_RE}\b(?:\s+(\d{{4}}))?", q)
    if m:
        start = month_year(_MONTHS_EN[m[1][:3]], m[2])
        return DateRange(ts_from=day_ts(start), ts_to=tomorrow, label=m[0])
    m = re.search(rf"(?:^|\s)(?:с|со|после)\s+{_RU_MONTH_RE}(?:\s+(\d{{4}}))?", q)
    if m:
        start = month_year(_ru_month(m[1]), m[2])
        return DateRange(ts_from=day_ts(start), ts_to=tomorrow, label=m[0].strip())
    m = re.search(rf"\b(?:in|during)\s+{_EN_MONTH_RE}\s+(\d{{4}})\b", q)
    if m:
        start = _month_start(int(m[2]), _MONTHS_EN[m[1][:3]])
        return DateRange(ts_from=day_ts(start), ts_to=day_ts(_add_months(start, 1)), label=m[0])
    m = re.search(rf"(?:^|\s)(?:в|за)\s+{_RU_MONTH_RE}\s+(\d{{4}})", q)
    if m:
        start = _month_start(int(m[2]), _ru_month(m[1]))
        return DateRange(ts_from=day_ts(start), ts_to=day_ts(_add_months(start, 1)), label=m[0].strip())

    q_start = _month_start(as_of.year, 3 * ((as_of.month - 1) // 3) + 1)
    if re.search(r"\b(this|current)\s+quarter\b|(?:в|за)\s+(?:этом|этот|текущем|текущий)\s+квартал", q):
        return DateRange(ts_from=day_ts(q_start), ts_to=tomorrow, label="this quarter")
    if re.search(r"\b(last|previous|past)\s+quarter\b|(?:в|за)\s+(?:прошлом|прошлый|предыдущем|предыдущий)\s+квартал", q):
        prev = _add_months(q_start, -3)
        return DateRange(ts_from=day_ts(prev), ts_to=day_ts(q_start), label="last quarter")
    if re.search(r"\b(this|current)\s+year\b|(?:в|за)\s+(?:этом|этот|текущем|текущий)\s+год", q):
        return DateRange(ts_from=day_ts(date(as_of.year, 1, 1)), ts_to=tomorrow, label="this year")
    if re.search(r"\b(last|previous)\s+year\b|(?:в|за)\s+(?:прошлом|прошлый)\s+год", q):
        y = as_of.year - 1
        return DateRange(ts_from=day_ts(date(y, 1, 1)), ts_to=day_ts(date(y + 1, 1, 1)), label="last year")
    m = re.search(r"\b(?:last|past)\s+(\d{1,3})\s+(day|week|month|year)s?\b", q) or re.search(
        r"(?:за|в)\s+последни[ейх]\s+(\d{1,3})\s+(дн|ден|недел|месяц|год|лет)\w*", q
    )
    if m and m[2] in ("month", "месяц"):  # calendar months: the same day N months back
        back = _add_months(as_of, -int(m[1]))
        start = date(back.year, back.month, min(as_of.day, _month_days(back)))
        return DateRange(ts_from=day_ts(start), ts_to=tomorrow, label=m[0])
    if m:
        days = int(m[1]) * _UNIT_DAYS[m[2]]
        return DateRange(ts_from=day_ts(as_of - timedelta(days=days - 1)), ts_to=tomorrow, label=m[0])
    m = re.search(r"\b(?:last|past)\s+(day|week|month|year)\b", q) or re.search(
        r"(?:за|в)\s+последн\w+\s+(дн|ден|недел|месяц|год)\w*", q
    )
    if m:
        days = _UNIT_DAYS[m[1]]
        return DateRange(ts_from=day_ts(as_of - timedelta(days=days - 1)), ts_to=tomorrow, label=m[0])
    m = re.search(rf"\bq([1-4])\s*(?:of\s+)?((?:19|20)\d{{2}})\b|\b{_EN_ORDINAL_RE}\s+quarter\s+(?:of\s+)?"
                  r"((?:19|20)\d{2})\b", q) or re.search(
        rf"(?:^|\s)(?:в|за)\s+(?:([1-4])-?(?:м|й|ом|ый|ий)?|{_RU_ORDINAL_RE})\s+квартал\w*\s+((?:19|20)\d{{2}})", q
    )
    if m:
        groups = [g for g in m.groups() if g]
        quarter = int(groups[0]) if groups[0].isdigit() else _ORDINALS[groups[0][:3]]
        start = date(int(groups[1]), 3 * quarter - 2, 1)
        return DateRange(ts_from=day_ts(start), ts_to=day_ts(_add_months(start, 3)), label=m[0].strip())
    m = re.search(r"\b(?:in|during|for)\s+((?:19|20)\d{2})\b", q) or re.search(
        r"(?:^|\s)(?:в|за)\s+((?:19|20)\d{2})(?:\s+год\w*)?", q
    )
    if m:
        y = int(m[1])
        return DateRange(ts_from=day_ts(date(y, 1, 1)), ts_to=day_ts(date(y + 1, 1, 1)), label=m[0].strip())
    return None


_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9.+-]*[a-z0-9+]|[a-z0-9]")
_CYRILLIC_WORD_RE = re.compile(r"[а-яё]{2,}")

# "what changed in NAME", "fixes for NAME", "что изменилось в NAME": the word after the
# verb and preposition stands where a package does (a Latin name in a Russian question).
_PACKAGE_SLOT_RE = re.compile(
    r"\b(?:chang\w*|new|fix\w*|happen\w*|updat\w*|upload\w*|releas\w*)\s+(?:in|for|to|of)\s+"
    r"(?:the\s+)?(?:package\s+)?([a-z][a-z0-9.+-]*[a-z0-9+])"
    r"|(?:измен\w*|нового|нов\w*|исправ\w*|обновл\w*|загруз\w*)\s+(?:в|во|для|у|по)\s+"
    r"(?:пакет\w*\s+)?([a-z][a-z0-9.+-]*[a-z0-9+])")


_NOT_NAMES = frozenset("sept current latest newest recent previous next stable last first".split()
                       # Debian's suites and release code names: "fixed in bookworm" names the
                       # release an upload went to (an entry's distribution), not a package
                       + "unstable testing oldstable oldoldstable experimental sid proposed-updates"
                         " bookworm-security bullseye-security trixie-security buzz rex bo hamm slink"
                         " potato woody sarge etch lenny squeeze wheezy jessie stretch buster bullseye"
                         " bookworm trixie forky duke".split())
_NOT_NAME_RE = re.compile(r"cve-\d{4}-\d+|q[1-4]|h[12]")  # an id, a quarter, a half-year


def unknown_package_names(lowered: str, channels: Mapping[str, str]) -> tuple[str, ...]:
    """Names in a package's place that no channel (or alias) has: ``"nginx"`` in "what
    changed in nginx in 2023?" on a machine without nginx. Stop words, month names and
    numbers are not names. Without this the closest entries of other packages would be
    listed as if they answered the question."""
    names: dict[str, None] = {}
    for m in _PACKAGE_SLOT_RE.finditer(lowered):
        name = (m[1] or m[2]).rstrip(".")
        if (name in _STOPWORDS or name in _MONTHS_EN or name in _NOT_NAMES or name in channels
                or _NOT_NAME_RE.fullmatch(name) or len(name) < 2
                or name.removeprefix("lib") in channels):  # libtiff: the library of tiff
            continue
        names.setdefault(name, None)
    return tuple(names)


def analyze_query(text: str, *, channels: Mapping[str, str], as_of: date) -> QueryAnalysis:
    """Extract ids, packages and dates from a query.

    Args:
        text: The question (any language).
        channels: Known names -> channel (see ``DocumentStore.channels``).
        as_of: "Today" for relative dates.
    """
    q = text.strip()
    lowered = q.lower()
    packages: dict[str, None] = {}
    names: dict[str, None] = {}
    # Latin names, and Cyrillic words for the common names a settings table may give
    # (corpus.names: "ядре" -> linux); a Cyrillic word is never a package's own name
    for tok in [*_TOKEN_RE.findall(lowered), *_CYRILLIC_WORD_RE.findall(lowered)]:
        tok = tok.rstrip(".")
        if tok in _STOPWORDS or tok.isdigit() or len(tok) < 2:
            continue
        if tok in channels:
            packages.setdefault(channels[tok], None)
            names.setdefault(tok, None)
    return QueryAnalysis(
        text=q,
        cves=tuple(cve_ids(q)),
        bugs=tuple(bug_ids(q, closes_only=False)),
        packages=tuple(packages),
        package_names=tuple(names),
        dates=parse_date_range(q, as_of),
        lang=detect_language(q),
        unknown_packages=() if packages else unknown_package_names(lowered, channels),
    )


# A question that continues the one before it: "And in 2024?", "What about curl?",
# "А в 2024?", "А что с curl?", "И для curl?".
_FOLLOW_UP_RE = re.compile(
    r"^\s*(?:and|also|what about|how about|same for|"
    r"а|и|а что|а как|что насч[её]т|то же)(?![\w-])",
    re.IGNORECASE,
)


def follow_up(current: QueryAnalysis, previous: QueryAnalysis | None) -> QueryAnalysis:
    """Read a thread's follow-up question in the context of the question before it.

    A follow-up starts with a continuing word ("and", "what about", "а", "и", "что
    насчёт", ...), names no CVE or bug, and leaves out the packages or the period: it takes
    them from ``previous``; what it names itself wins (2024 over 2025, curl over openssl).
    One that names no package asks about the previous question's topic, so its text
    becomes both questions ("What changed in curl in 2025? And in 2024?"), which retrieval
    and the answer read; one that names its own package keeps its own text (the previous
    package's name would pull in entries that mention it). A follow-up keeps the thread's
    domain (``nodes/route.py``), and the answer-cache key names the previous question.

    Args:
        current: The question as asked, analysed alone.
        previous: The thread's previous question as it was read, or None.

    Returns:
        ``current`` itself when it is not a follow-up of ``previous``; otherwise its
        analysis with ``packages``/``dates`` inherited, ``text`` joined and ``follows`` set.
    """
    if (previous is None or current.cves or current.bugs or not _FOLLOW_UP_RE.match(current.text)
            or (current.packages and current.dates)):
        return current
    packages = current.packages or previous.packages
    return QueryAnalysis(
        text=current.text if current.packages else f"{previous.text} {current.text}",
        cves=(), bugs=(),
        packages=packages,
        package_names=current.package_names if current.packages else previous.package_names,
        dates=current.dates or previous.dates,
        lang=current.lang,
        unknown_packages=() if packages else current.unknown_packages,
        follows=previous.text,
    )
