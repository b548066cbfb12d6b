"""Trend statistics computed from the documents; the LLM only narrates them.

A document (one upload) counts once for each change kind whose patterns match any of
its lines. The asked window is compared with the window of the same length just before
it; with no window in the query the domain's ``default_window_days`` is used.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from knowledge_os.domains.entries import entry_line
from knowledge_os.domains.spec import DomainSpec
from knowledge_os.retrieval.base import VectorFilter
from knowledge_os.retrieval.query import QueryAnalysis

if TYPE_CHECKING:
    from knowledge_os.domains.steps import StepContext
    from knowledge_os.retrieval.docstore import DocumentStore

__all__ = ["compose_stats_answer", "compute_trend", "stats_summary"]


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def compute_trend(
    store: DocumentStore,
    spec: DomainSpec,
    analysis: QueryAnalysis,
    *,
    as_of: date,
    use_packages: bool = True,
) -> dict[str, Any]:
    """Counts per change kind and entity type, current window against the previous one.

    Returns:
        ``{"window": {"from", "to"}, "previous": {"from", "to"}, "uploads": {"current",
        "previous"}, "kinds": [{"kind", "current", "previous", "delta", "change_pct"}]
        sorted by delta (rising first), "entities": {"cves": {...}, "bugs": {...}},
        "monthly": {"YYYY-MM": {kind: n}}, "top_channels": [[channel, n], ...],
        "table": str, "numbers": [int, ...]}`` (``numbers`` = every figure reported).
    """
    tomorrow = int(datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp()) + 86400
    if analysis.dates and analysis.dates.ts_from is not None:
        ts_from = analysis.dates.ts_from
        ts_to = analysis.dates.ts_to if analysis.dates.ts_to is not None else tomorrow
    else:
        days = spec.retrieval.default_window_days or 365
        ts_to = tomorrow
        ts_from = ts_to - days * 86400
    length = ts_to - ts_from
    prev_from = ts_from - length
    kinds = [(k.name, [re.compile(p, re.IGNORECASE) for p in k.patterns]) for k in spec.change_kinds]
    flt = VectorFilter(
        channels=analysis.packages or None if use_packages else None, ts_from=prev_from, ts_to=ts_to
    )
    current: Counter[str] = Counter()
    previous: Counter[str] = Counter()
    uploads = Counter()
    cves = Counter()
    bugs = Counter()
    monthly: dict[str, Counter[str]] = defaultdict(Counter)
    channels: Counter[str] = Counter()
    for doc in store.iter_documents(flt):
        period = "current" if doc.ts >= ts_from else "previous"
        uploads[period] += 1
        lines = doc.text.splitlines()[1:] or [doc.text]
        matched = {name for name, pats in kinds if any(p.search(ln) for p in pats for ln in lines)}
        (current if period == "current" else previous).update(matched)
        cves[period] += sum(1 for e in doc.entities if e.startswith("cve:"))
        bugs[period] += sum(1 for e in doc.entities if e.startswith("bug:"))
        if period == "current":
            monthly[_day(doc.ts)[:7]].update(matched)
            channels[doc.channel] += 1
    rows = []
    for name, _ in kinds:
        cur, prev = current[name], previous[name]
        pct = round(100.0 * (cur - prev) / prev) if prev else None
        rows.append({"kind": name, "current": cur, "previous": prev, "delta": cur - prev, "change_pct": pct})
    rows.sort(key=lambda r: (-r["delta"], -r["current"], r["kind"]))
    window = {"from": _day(ts_from), "to": _day(ts_to - 1)}
    prev_window = {"from": _day(prev_from), "to": _day(ts_from - 1)}
    table_lines = [
        f"Window {window['from']}..{window['to']} vs {prev_window['from']}..{prev_window['to']}; "
        f"uploads {uploads['current']} vs {uploads['previous']}; CVE mentions {cves['current']} vs "
        f"{cves['previous']}; bugs closed {bugs['current']} vs {bugs['previous']}."
    ]
    for r in rows:
        pct = f", {r['change_pct']:+d}%" if r["change_pct"] is not None else ""
        table_lines.append(f"- {r['kind']}: {r['current']} (previous {r['previous']}, {r['delta']:+d}{pct})")
    numbers = {uploads["current"], uploads["previous"], cves["current"], cves["previous"],
               bugs["current"], bugs["previous"]}
    for r in rows:
        numbers.update({r["current"], r["previous"], abs(r["delta"])})
        if r["change_pct"] is not None:
            numbers.add(abs(r["change_pct"]))
    for part in (window, prev_window):
        for v in part.values():
            numbers.update(int(x) for x in v.split("-"))
    return {
        "window": window,
        "previous": prev_window,
        "uploads": {"current": uploads["current"], "previous": uploads["previous"]},
        "kinds": rows,
        "entities": {
            "cves": {"current": cves["current"], "previous": cves["previous"]},
            "bugs": {"current": bugs["current"], "previous": bugs["previous"]},
        },
        "monthly": {m: dict(c) for m, c in sorted(monthly.items())},
        "top_channels": channels.most_common(5),
        "table": "\n".join(table_lines),
        "numbers": sorted(numbers),
        "as_of": as_of.isoformat(),
    }


def compose_stats_answer(ctx: StepContext, summary: str, listing: list[dict[str, Any]]) -> str:
    """A stats-style answer: the summary, the figures table computed from the data, and
    example entries cited as ``[n]`` (``listing`` in citation order)."""
    assert ctx.stats is not None
    parts = [summary.strip(), "Figures (computed from the changelogs):\n" + ctx.stats["table"]]
    if listing:
        parts.append("Examples:\n" + "\n".join(
            f"- {d['channel']} {entry_line(d)} [{n}]" for n, d in enumerate(listing, start=1)
        ))
    return "\n\n".join(parts)


def stats_summary(ctx: StepContext) -> str:
    """The summary of a stats-style answer written from the figures alone (no LLM)."""
    s = ctx.stats
    assert s is not None
    rising = [r for r in s["kinds"] if r["delta"] > 0]
    if rising:
        top = ", ".join(f"{r['kind']} ({r['previous']} -> {r['current']})" for r in rising[:3])
        return (f"Between {s['window']['from']} and {s['window']['to']} the rising kinds of change "
                f"were {top}, over {s['uploads']['current']} uploads.")
    return (f"No kind of change rose between {s['window']['from']} and {s['window']['to']} "
            f"({s['uploads']['current']} uploads against {s['uploads']['previous']} before).")
