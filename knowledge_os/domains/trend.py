"""Trend statistics computed from the documents; the LLM only narrates them.

Two kinds of question are answered from the same pass over the data:

* Kinds of change: a document (one upload) counts once for each change kind whose
  patterns match any of its lines, in the asked window and in the window it is compared
  with (see :func:`compare_windows`).
* Rankings ("Which five packages had the most uploads in 2024?"): counts per entity
  (:mod:`knowledge_os.domains.ranking`) in the asked window, with each entity's count in
  the previous window beside it.

The example entries an answer shows are taken from the compared windows (never from
retrieval over all dates), a window without entries is reported as such (not as a fall
to zero), and every figure, date and entity name written is listed in the returned
statistics so the verifier can trace the prose to it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from knowledge_os.domains._trend_text import T, render_summary, render_table, render_total
from knowledge_os.domains.entries import entry_line
from knowledge_os.domains.ranking import RankingQuery, count_entities, parse_ranking
from knowledge_os.domains.spec import DomainSpec
from knowledge_os.i18n import pick
from knowledge_os.retrieval.base import Document, VectorFilter
from knowledge_os.retrieval.query import DateRange, QueryAnalysis, day_ts

if TYPE_CHECKING:
    from knowledge_os.domains.steps import StepContext
    from knowledge_os.retrieval.docstore import DocumentStore

__all__ = [
    "EXAMPLES_MAX",
    "Window",
    "compare_windows",
    "compose_stats_answer",
    "compute_trend",
    "stats_summary",
]

EXAMPLES_MAX = 5  # entries shown (and cited) under a stats answer
_TIES_MAX = 10  # entities tied with the N-th named beyond N, at most
_DAY_S = 86400


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """A span of whole UTC days ``[start, end)``; ``start`` None means all dates.

    Attributes:
        start: First day, or None (no lower bound).
        end: The day after the last one, or None (no upper bound).
    """

    start: date | None
    end: date | None

    @property
    def ts_from(self) -> int | None:
        return day_ts(self.start) if self.start else None

    @property
    def ts_to(self) -> int | None:
        return day_ts(self.end) if self.end else None

    @property
    def days(self) -> int | None:
        return (self.end - self.start).days if self.start and self.end else None

    @property
    def last(self) -> date | None:
        return self.end - timedelta(days=1) if self.end else None

    def span(self) -> str:
        """``"YYYY-MM-DD..YYYY-MM-DD"`` (both days included)."""
        return f"{self.start.isoformat() if self.start else '…'}..{self.last.isoformat() if self.last else '…'}"

    def contains(self, ts: int) -> bool:
        return (self.ts_from is None or ts >= self.ts_from) and (self.ts_to is None or ts < self.ts_to)


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


def compare_windows(
    dates: DateRange | None, *, as_of: date, default_days: int
) -> tuple[Window, Window | None, str]:
    """The window a question asks about, the one it is compared with, and how.

    Like is compared with like: a whole year, quarter or month with the previous one;
    a year, quarter or month *to date* (it starts on the period's first day and runs to
    ``as_of``) with the same number of days from the start of the previous period
    (clipped to that period); any other window with the window of the same length just
    before it. A window reaching past ``as_of`` is cut at ``as_of`` first. A quarter to
    date is one only when the question says "quarter" (``dates.label``), so "since
    October" is compared with the days just before it.

    Args:
        dates: The range the query names; None: the last ``default_days`` days.
        as_of: The run's "today" (UTC); its day is inside the current window.
        default_days: Window length when the query names no range.

    Returns:
        ``(current, previous, basis)``; ``previous`` is None when ``current`` has no
        start (all dates). ``basis`` is one of ``year``, ``ytd``, ``quarter``, ``qtd``,
        ``month``, ``mtd``, ``preceding``, ``all``.
    """
    tomorrow = as_of + timedelta(days=1)
    if dates is None:
        current = Window(start=tomorrow - timedelta(days=default_days), end=tomorrow)
        return current, _preceding(current), "preceding"
    if dates.ts_from is None:
        end = _day(dates.ts_to) if dates.ts_to is not None else tomorrow
        return Window(start=None, end=min(end, tomorrow)), None, "all"
    start = _day(dates.ts_from)
    end = _day(dates.ts_to) if dates.ts_to is not None else tomorrow
    to_date = end >= tomorrow
    end = min(end, tomorrow)
    if end <= start:
        end = start + timedelta(days=1)
    current = Window(start=start, end=end)
    label = dates.label.lower()
    months = 0
    quarter_start = start.day == 1 and start.month % 3 == 1
    if quarter_start and (end == _add_months(start, 3) or "quarter" in label or "квартал" in label):
        months = 3
    elif start.day == 1 and start.month == 1:
        months = 12
    elif start.day == 1:
        months = 1
    if months:
        period_end = _add_months(start, months)
        prev_start = _add_months(start, -months)
        name = {12: "year", 3: "quarter", 1: "month"}[months]
        if end == period_end:
            return current, Window(start=prev_start, end=start), name
        if to_date and end < period_end:
            prev_end = min(prev_start + (end - start), start)
            return current, Window(start=prev_start, end=prev_end), {12: "ytd", 3: "qtd", 1: "mtd"}[months]
    return current, _preceding(current), "preceding"


def _preceding(w: Window) -> Window:
    assert w.start is not None and w.end is not None
    return Window(start=w.start - (w.end - w.start), end=w.start)


# -- counting --------------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    """What one window holds."""

    docs: list[Document] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    cves: set[str] = field(default_factory=set)
    cve_mentions: int = 0
    bugs: set[str] = field(default_factory=set)

    def add(self, doc: Document, matched: set[str]) -> None:
        self.docs.append(doc)
        self.kinds.update(matched)
        doc_cves = [e for e in doc.entities if e.startswith("cve:")]
        self.cves.update(doc_cves)
        self.cve_mentions += len(doc_cves)
        self.bugs.update(e for e in doc.entities if e.startswith("bug:"))

    def totals(self) -> dict[str, int]:
        return {"uploads": len(self.docs), "cve_ids": len(self.cves),
                "cve_mentions": self.cve_mentions, "bugs_closed": len(self.bugs)}


def _kinds_of(doc: Document, kinds: list[tuple[str, re.Pattern[str]]]) -> set[str]:
    """The kinds whose patterns match the entry's change lines (the body under its
    ``<package> <version>`` head line)."""
    head, _, body = doc.text.partition("\n")
    text = body or head
    return {name for name, pattern in kinds if pattern.search(text)}


# -- a count per month, quarter or year ------------------------------------------------

_SERIES_UNITS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("month", re.compile(r"\b(?:per|each|every|by) month\b|\bmonth(?:ly|[- ]by[- ]month)\b"
                         r"|по месяц\w*|помесячн\w*|ежемесячн\w*|за каждый месяц", re.IGNORECASE)),
    ("quarter", re.compile(r"\b(?:per|each|every|by) quarter\b|\bquarter(?:ly|[- ]by[- ]quarter)\b"
                           r"|по квартал\w*|поквартальн\w*|ежекварталь?н\w*|за каждый квартал", re.IGNORECASE)),
    ("year", re.compile(r"\b(?:per|each|every|by) year\b|\b(?:yearly|annual(?:ly)?|year[- ]by[- ]year)\b"
                        r"|по годам|ежегодн\w*|за каждый год", re.IGNORECASE)),
)
_SERIES_MAX = 48
"""Most periods a series lists; past it, months become quarters and quarters years."""
_CVE_WORD = re.compile(r"\bcves?\b", re.IGNORECASE)
_BUGS_CLOSED = re.compile(r"\bbugs? (?:(?:were|got|have been|has been) )?(?:closed|closures?|fixed)"
                          r"|\b(?:closed|fixed) bugs|\bbug closures?"
                          r"|закры\w* (?:баг|ошиб)\w*|(?:баг|ошиб)\w* (?:\w+ )?закры\w*", re.IGNORECASE)


def series_unit(question: str) -> str | None:
    """The period a question asks its count per ("per month", "quarterly", "по кварталам",
    "помесячно", "by year"): ``month``, ``quarter`` or ``year``, the one named first; None
    when it asks none ("this year" and "last quarter" name a window, not a breakdown)."""
    hits = [(m.start(), unit) for unit, pattern in _SERIES_UNITS if (m := pattern.search(question))]
    return min(hits)[1] if hits else None


def series_measure(question: str, asked_kinds: list[str]) -> tuple[str, str | None]:
    """What a series counts: ``("cve_ids", None)`` when the question names CVEs, ``("bugs_closed",
    None)`` for bug closures, ``("kind", name)`` when it names one kind of change (``asked_kinds``,
    :func:`knowledge_os.domains.complete.asked_kinds`), else ``("uploads", None)``."""
    if _CVE_WORD.search(question):
        return "cve_ids", None
    if _BUGS_CLOSED.search(question):
        return "bugs_closed", None
    if len(asked_kinds) == 1:
        return "kind", asked_kinds[0]
    return "uploads", None


def _period_of(d: date, unit: str) -> tuple[str, date]:
    """The calendar period holding ``d``: its label ("2025-03", "2025-Q1", "2025") and first day."""
    if unit == "month":
        return f"{d.year}-{d.month:02d}", d.replace(day=1)
    if unit == "quarter":
        q = (d.month - 1) // 3
        return f"{d.year}-Q{q + 1}", date(d.year, 3 * q + 1, 1)
    return str(d.year), date(d.year, 1, 1)


def _next_period(first: date, unit: str) -> date:
    return _add_months(first, {"month": 1, "quarter": 3, "year": 12}[unit])


def _series(window: Window, docs: list[Document], matched: dict[str, set[str]], unit: str,
            measure: tuple[str, str | None]) -> dict[str, Any] | None:
    """The count of ``measure`` in each calendar ``unit`` the window touches, oldest first
    (periods without an upload included, each clipped to the window), or None without a
    bounded window. Coarsens the unit when the window holds more than :data:`_SERIES_MAX` periods."""
    if window.start is None or window.last is None:
        return None
    while True:
        firsts = [_period_of(window.start, unit)[1]]
        while (nxt := _next_period(firsts[-1], unit)) <= window.last:
            firsts.append(nxt)
        if len(firsts) <= _SERIES_MAX or unit == "year":
            break
        unit = "quarter" if unit == "month" else "year"
    tallies = {first: _Tally() for first in firsts}
    for doc in docs:
        tallies[_period_of(_day(doc.ts), unit)[1]].add(doc, matched[doc.id])
    what, kind = measure
    rows = []
    for first, tally in tallies.items():
        last = _next_period(first, unit) - timedelta(days=1)
        value = tally.kinds[kind] if what == "kind" and kind else tally.totals()[what]
        rows.append({"period": _period_of(first, unit)[0], "from": max(first, window.start).isoformat(),
                     "to": min(last, window.last).isoformat(), "value": value})
    return {"unit": unit, "measure": what, "kind": kind, "rows": rows}


def newest_before(store: DocumentStore, channels: tuple[str, ...] | None, ts_to: int | None) -> date | None:
    """Day of the newest entry of ``channels`` (None: any) before ``ts_to`` (None: ever),
    or None when there is none; looks back two years first, then over all dates."""
    for lookback in (2 * 366 * _DAY_S, None):
        ts_from = ts_to - lookback if (ts_to is not None and lookback) else None
        newest = None
        for doc in store.iter_documents(VectorFilter(channels=channels, ts_from=ts_from, ts_to=ts_to)):
            if doc.ts:
                newest = doc.ts
        if newest is not None:
            return _day(newest)
    return None


def _ranking_rows(
    query: RankingQuery, current: _Tally, previous: _Tally | None
) -> tuple[list[dict[str, Any]], int]:
    """The top ``query.n`` entities and those tied with the N-th (at most ``_TIES_MAX``
    more); competition ranks (1, 2, 2, 4). Returns ``(rows, tied_left_out)``."""
    counts, display, members = count_entities(current.docs, query)
    prev_counts = count_entities(previous.docs, query)[0] if previous is not None else None
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], display[kv[0]].lower(), kv[0]))
    if not ordered:
        return [], 0
    cut = ordered[min(query.n, len(ordered)) - 1][1]
    within = [kv for kv in ordered if kv[1] >= cut]
    shown = within[: query.n + _TIES_MAX]
    rows = []
    for key, value in shown:
        rank = 1 + sum(1 for _, v in ordered if v > value)
        rows.append({"rank": rank, "key": key, "name": display[key], "members": sorted(members[key]),
                     "current": value,
                     "previous": prev_counts.get(key, 0) if prev_counts is not None else None})
    return rows, len(within) - len(shown)


def _examples(
    current: _Tally, previous: _Tally | None, kind_rows: list[dict[str, Any]],
    matched: dict[str, set[str]], query: RankingQuery | None, rows: list[dict[str, Any]],
) -> list[str]:
    """Up to :data:`EXAMPLES_MAX` document ids from the compared windows: the newest
    upload of each named entity that adds to the measure (rankings), or of each rising
    kind and then the newest of the window; from the previous window when the current
    one is empty."""
    pool = current.docs if current.docs else (previous.docs if previous else [])
    newest_first = sorted(pool, key=lambda d: (-d.ts, d.id))
    picked: dict[str, None] = {}
    if query is not None:
        for row in rows:
            for doc in newest_first:
                if _entity_keys(doc, query) & set(row["members"]) and _counts_toward(doc, query):
                    picked.setdefault(doc.id, None)
                    break
    else:
        pool_key = "current" if current.docs else "previous"
        for row in sorted(kind_rows, key=lambda r: -(r["delta"] if r["delta"] is not None else r[pool_key] or 0)):
            if (row["delta"] if row["delta"] is not None else row[pool_key] or 0) <= 0:
                continue
            for doc in newest_first:
                if row["kind"] in matched.get(doc.id, ()):
                    picked.setdefault(doc.id, None)
                    break
    if query is None:
        for doc in newest_first:
            picked.setdefault(doc.id, None)
    return list(picked)[:EXAMPLES_MAX]


def _counts_toward(doc: Document, query: RankingQuery) -> bool:
    """Whether the entry adds to the ranking's measure (names a CVE, closes a bug)."""
    prefix = {"cves": "cve:", "bugs": "bug:"}.get(query.measure)
    return prefix is None or any(e.startswith(prefix) for e in doc.entities)


def _entity_keys(doc: Document, query: RankingQuery) -> set[str]:
    if query.entity == "package":
        return {doc.channel}
    prefix = {"maintainer": "person:", "cve": "cve:", "bug": "bug:"}[query.entity]
    return {e.removeprefix(prefix) for e in doc.entities if e.startswith(prefix)}


def compute_trend(
    store: DocumentStore,
    spec: DomainSpec,
    analysis: QueryAnalysis,
    *,
    as_of: date,
    use_packages: bool = True,
    asked_kinds: list[str] | None = None,
) -> dict[str, Any]:
    """Counts per change kind (or per entity, for a ranking question) in the asked
    window against the window it is compared with (:func:`compare_windows`), and, when
    the question asks for a count per month, quarter or year (:func:`series_unit`), that
    count in each such period of the asked window (:func:`series_measure` says of what).

    A ranking question (:func:`~knowledge_os.domains.ranking.parse_ranking`) without a
    date range ranks over all dates; any other question without one uses the domain's
    ``default_window_days`` (365 when unset).

    Args:
        store: The documents; read with ``iter_documents`` (one pass over both windows).
        spec: The domain (``change_kinds``, ``retrieval.default_window_days``).
        analysis: The question (dates, packages, language).
        as_of: The run's "today" (UTC).
        use_packages: Restrict to the packages the question names.
        asked_kinds: The kinds of change the question names (a series counts the uploads
            of the one it names).

    Returns:
        A JSON-able dict::

            {"lang": "en"|"ru", "basis": str, "as_of": "YYYY-MM-DD",
             "window": {"from", "to", "days"}, "previous": {"from", "to", "days"} | None,
             "packages": [str],                       # the scope; [] = all packages
             "totals": {"current": {"uploads", "cve_ids", "cve_mentions", "bugs_closed"},
                        "previous": {...} | None},
             "uploads": {"current": int, "previous": int | None},
             "empty": {"current": bool, "previous": bool},
             "newest": "YYYY-MM-DD" | None,   # newest entry in scope before the window's
                                              # end, when the current window is empty
             "kinds": [{"kind", "current", "previous", "delta", "change_pct",
                        "share_pct", "previous_share_pct"}],
                                              # rising first; delta/pct None without data;
                                              # share: % of the window's uploads, None
                                              # without uploads;
                                              # [] for a ranking question
             "ranking": {"entity", "measure", "n", "rows": [{"rank", "key", "name",
                         "members", "current", "previous"}], "tied_left_out": int} | None,
                                              # members: a maintainer's e-mail addresses
             "series": {"unit": "month"|"quarter"|"year", "measure": "uploads"|"cve_ids"|
                        "bugs_closed"|"kind", "kind": str | None,
                        "rows": [{"period", "from", "to", "value"}]} | None,
                                              # a count per period of the current window
             "examples": [doc id],            # from the compared windows, shown first
             "table": str, "summary": str,    # in the question's language
             "numbers": [int],                # every figure in table and summary
             "names": [str],                  # every entity named (packages, people,
                                              # e-mails, CVE ids, bug numbers)
             "dates": ["YYYY-MM-DD"]}         # every date written
    """
    query = parse_ranking(analysis.text)
    default_days = spec.retrieval.default_window_days or 365
    dates = analysis.dates
    if query is not None and dates is None:
        dates = DateRange(ts_from=None, ts_to=None, label="all dates")
    current_w, previous_w, basis = compare_windows(dates, as_of=as_of, default_days=default_days)
    channels = (analysis.packages or None) if use_packages else None
    lo = previous_w.ts_from if previous_w is not None else current_w.ts_from
    flt = VectorFilter(channels=channels, ts_from=lo, ts_to=current_w.ts_to)
    # One alternation per kind, searched over the body at once (a pattern is searched in
    # each change line alike: none of the YAML's patterns spans a line break on purpose).
    kinds = [(k.name, re.compile("|".join(f"(?:{p})" for p in k.patterns), re.IGNORECASE))
             for k in spec.change_kinds]
    current = _Tally()
    previous = _Tally() if previous_w is not None else None
    matched: dict[str, set[str]] = {}
    for doc in store.iter_documents(flt):
        if query is not None and current_w.start is None and not doc.ts:
            continue  # undated entries cannot be placed in a period
        if current_w.contains(doc.ts):
            target = current
        elif previous is not None and previous_w is not None and previous_w.contains(doc.ts):
            target = previous
        else:
            continue  # between a to-date window's like-for-like part and the current one
        # A ranking shows no kinds of change: they are not counted for it.
        matched[doc.id] = _kinds_of(doc, kinds) if query is None else set()
        target.add(doc, matched[doc.id])

    has_prev = previous is not None and bool(previous.docs)
    kind_rows = []
    for name, _ in kinds if query is None else ():
        cur = current.kinds[name]
        prev = previous.kinds[name] if previous is not None else 0
        comparable = bool(current.docs) and has_prev
        delta = cur - prev if comparable else None
        pct = round(100.0 * (cur - prev) / prev) if (comparable and prev) else None
        kind_rows.append({"kind": name, "current": cur, "previous": prev if previous is not None else None,
                          "delta": delta, "change_pct": pct, "share_pct": _share(cur, len(current.docs)),
                          "previous_share_pct": _share(prev, len(previous.docs)) if previous is not None else None})
    kind_rows.sort(key=lambda r: (-(r["delta"] or 0), -r["current"], -(r["previous"] or 0), r["kind"]))

    rows, tied_left_out = _ranking_rows(query, current, previous) if query is not None else ([], 0)
    unit = series_unit(analysis.text) if query is None else None
    series = (_series(current_w, current.docs, matched, unit, series_measure(analysis.text, list(asked_kinds or ())))
              if unit else None)
    newest = None
    if not current.docs:
        newest = newest_before(store, channels, current_w.ts_to)
    if current_w.start is None and current.docs:  # all dates: say what the data spans
        current_w = Window(start=_day(current.docs[0].ts), end=_day(current.docs[-1].ts) + timedelta(days=1))

    stats: dict[str, Any] = {
        "lang": analysis.lang,
        "basis": basis,
        "as_of": as_of.isoformat(),
        "window": _window_dict(current_w),
        "previous": _window_dict(previous_w) if previous_w is not None else None,
        "packages": list(channels or ()),
        "totals": {"current": current.totals(), "previous": previous.totals() if previous is not None else None},
        "uploads": {"current": len(current.docs), "previous": len(previous.docs) if previous is not None else None},
        "empty": {"current": not current.docs, "previous": previous is not None and not previous.docs},
        "newest": newest.isoformat() if newest else None,
        "kinds": kind_rows,
        "ranking": ({"entity": query.entity, "measure": query.measure, "n": query.n, "rows": rows,
                     "tied_left_out": tied_left_out} if query is not None else None),
        "series": series,
        "examples": _examples(current, previous, kind_rows, matched, query, rows),
    }
    stats["table"] = render_table(stats)
    stats["summary"] = render_summary(stats)
    text = stats["table"] + "\n" + stats["summary"]
    stats["dates"] = sorted(set(re.findall(r"\b\d{4}-\d{2}-\d{2}\b", text)))
    stats["numbers"] = _figures(stats)
    names = set(stats["packages"])
    for row in rows:
        names.update({row["key"], row["name"], *row["members"]})
    stats["names"] = sorted(n for n in names if n)
    return stats


def _figures(s: dict[str, Any]) -> list[int]:
    """Every figure the table and summary write: counts, differences and percentages
    (as magnitudes), ranks, N, window lengths and the parts of each date written."""
    out: set[int] = set()
    for totals in s["totals"].values():
        out.update((totals or {}).values())
    for k in s["kinds"]:
        out.update(abs(v) for v in (k["current"], k["previous"], k["delta"], k["change_pct"], k.get("share_pct"),
                                    k.get("previous_share_pct")) if v is not None)
    r = s["ranking"]
    if r is not None:
        out.update((r["n"], r["tied_left_out"]))
        for row in r["rows"]:
            out.update(v for v in (row["rank"], row["current"], row["previous"]) if v is not None)
    out.update(w["days"] for w in (s["window"], s["previous"]) if w and w["days"] is not None)
    for row in (s.get("series") or {}).get("rows", ()):
        out.add(row["value"])
    for d in s["dates"]:
        out.update(int(part) for part in d.split("-"))
    return sorted(out)


def _share(count: int, uploads: int) -> int | None:
    """``count`` as a whole percentage of ``uploads`` (None when there is none)."""
    return round(100.0 * count / uploads) if uploads else None


def _window_dict(w: Window) -> dict[str, Any]:
    return {"from": w.start.isoformat() if w.start else None,
            "to": w.last.isoformat() if w.last else None, "days": w.days}


_EXAMPLES = {"en": "Examples from the compared windows:", "ru": "Примеры из сравниваемых периодов:"}
_EXAMPLES_RANKED = {"en": "Examples (the newest entry of each named):",
                    "ru": "Примеры (самая новая запись каждого из названных):"}


def compose_stats_answer(ctx: StepContext, summary: str, listing: list[dict[str, Any]]) -> str:
    """A stats-style answer: the summary, the figures table computed from the data, and
    example entries cited as ``[n]`` (``listing`` in citation order), all framework
    text in the question's language (``ctx.analysis.lang``)."""
    assert ctx.stats is not None
    lang = ctx.analysis.lang
    parts = [summary.strip(), pick(T["header"], lang) + "\n" + ctx.stats["table"]]
    if listing:
        head = _EXAMPLES_RANKED if ctx.stats.get("ranking") else _EXAMPLES
        parts.append(pick(head, lang) + "\n" + "\n".join(
            f"- {d['channel']} {entry_line(d)} [{n}]" for n, d in enumerate(listing, start=1)
        ))
    return "\n\n".join(parts)


def stats_summary(ctx: StepContext) -> str:
    """The summary of a stats-style answer written from the figures alone (no LLM), in
    the question's language."""
    s = ctx.stats
    assert s is not None
    if s.get("lang") != ctx.analysis.lang or "summary" not in s:
        s = {**s, "lang": ctx.analysis.lang}
        return render_summary(s)
    return str(s["summary"])


def total_summary(ctx: StepContext, measure: str) -> str:
    """One sentence with the total of ``measure`` (``uploads``, ``cve_ids``, ``bugs_closed``)
    in each compared window, in the question's language, written from the figures."""
    s = ctx.stats
    assert s is not None
    return render_total({**s, "lang": ctx.analysis.lang}, measure)
