"""Build the answer text around the LLM's summary: a cited listing taken from the data, so
every version, date and citation in it is checkable. The statistics style (``answer_style:
stats``) is composed by :mod:`knowledge_os.domains.trend`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from knowledge_os.domains.entries import entry_line
from knowledge_os.domains.trend import compose_stats_answer, stats_summary

if TYPE_CHECKING:
    from knowledge_os.domains.steps import StepContext

__all__ = ["compose_answer", "entry_line", "fallback_summary"]


def compose_answer(ctx: StepContext, summary: str, listing: list[dict[str, Any]]) -> str:
    """Summary, then the listing (grouped by channel) or the statistics table. After a
    broadening replan the answer says what was dropped."""
    parts = [summary.strip()]
    if ctx.broaden >= 1 and ctx.analysis.dates is not None and ctx.spec.answer_style == "grouped":
        parts.insert(0, f"Nothing matched {ctx.analysis.dates.label} ({ctx.analysis.dates.describe()}); "
                        "these are the closest entries from any date.")
    if ctx.spec.answer_style == "stats" and ctx.stats is not None:
        return compose_stats_answer(ctx, summary, listing)
    if not listing:
        parts.append("No matching entries were found.")
        return "\n\n".join(parts)
    lines: list[str] = []
    current = None
    for n, d in enumerate(listing, start=1):
        if d["channel"] != current:
            current = d["channel"]
            lines.append(f"{current}:")
        lines.append(f"  - {entry_line(d)} [{n}]")
    more = len(ctx.documents) - len(listing)
    if more > 0:
        lines.append(f"(and {more} more related entries)")
    parts.append("\n".join(lines))
    return "\n\n".join(parts)


def fallback_summary(ctx: StepContext, listing: list[dict[str, Any]]) -> str:
    """A summary written from the data alone, used when the LLM is unavailable or out of
    budget. Cites the entries it names."""
    if ctx.spec.answer_style == "stats" and ctx.stats is not None:
        return stats_summary(ctx)
    if not listing:
        return "Nothing in the ingested data matches this question."
    channels = list(dict.fromkeys(d["channel"] for d in listing))
    cves = sorted({e for d in listing for e in re.findall(r"CVE-\d{4}-\d{4,7}", d["text"])})
    dated = sorted(d["date"] for d in listing if d["date"])
    span = f" between {dated[0]} and {dated[-1]}" if dated else ""
    cve_part = f", fixing {', '.join(cves[:5])}{' and more' if len(cves) > 5 else ''}" if cves else ""
    return (f"{len(listing)} uploads of {', '.join(channels[:5])}{span}{cve_part}; "
            f"the newest is {listing[0]['title']} [1].")
