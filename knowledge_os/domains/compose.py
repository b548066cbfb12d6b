"""Build the answer text around the LLM's summary: a cited listing or a statistics table
taken from the data, so every number and citation in it is checkable."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from knowledge_os.domains.steps import StepContext

__all__ = ["compose_answer", "entry_line", "fallback_summary"]

_ENTRY_CHARS = 170


def entry_line(doc: dict[str, Any]) -> str:
    """One line about a document: version, date, distribution and its first changes."""
    md = doc.get("metadata", {})
    body_lines = doc["text"].split("\n")[1:] if doc.get("metadata", {}).get("version") else doc["text"].split("\n")
    changes = []
    for ln in body_lines:
        ln = ln.strip()
        if not ln or ln.startswith("[") and ln.endswith("]"):
            continue
        changes.append(re.sub(r"^[*+-]\s*", "", ln))
    text = " ".join(changes)
    if len(text) > _ENTRY_CHARS:
        text = text[: _ENTRY_CHARS - 1].rsplit(" ", 1)[0] + "…"
    head = md.get("version") or doc["title"]
    where = ", ".join(x for x in (doc.get("date"), md.get("distribution")) if x)
    return f"{head} ({where}): {text}" if where else f"{head}: {text}"


def compose_answer(ctx: StepContext, summary: str, listing: list[dict[str, Any]]) -> str:
    """Summary, then the listing (grouped by channel) or the statistics table. After a
    broadening replan the answer says what was dropped."""
    parts = [summary.strip()]
    if ctx.broaden >= 1 and ctx.analysis.dates is not None and ctx.spec.answer_style == "grouped":
        parts.insert(0, f"Nothing matched {ctx.analysis.dates.label} ({ctx.analysis.dates.describe()}); "
                        "these are the closest entries from any date.")
    if ctx.spec.answer_style == "stats" and ctx.stats is not None:
        parts.append("Figures (computed from the changelogs):\n" + ctx.stats["table"])
        if listing:
            parts.append("Examples:\n" + "\n".join(
                f"- {d['channel']} {entry_line(d)} [{n}]" for n, d in enumerate(listing, start=1)
            ))
        return "\n\n".join(parts)
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
        s = ctx.stats
        rising = [r for r in s["kinds"] if r["delta"] > 0]
        if rising:
            top = ", ".join(f"{r['kind']} ({r['previous']} -> {r['current']})" for r in rising[:3])
            return (f"Between {s['window']['from']} and {s['window']['to']} the rising kinds of change "
                    f"were {top}, over {s['uploads']['current']} uploads.")
        return (f"No kind of change rose between {s['window']['from']} and {s['window']['to']} "
                f"({s['uploads']['current']} uploads against {s['uploads']['previous']} before).")
    if not listing:
        return "Nothing in the ingested data matches this question."
    channels = list(dict.fromkeys(d["channel"] for d in listing))
    cves = sorted({e for d in listing for e in re.findall(r"CVE-\d{4}-\d{4,7}", d["text"])})
    dated = sorted(d["date"] for d in listing if d["date"])
    span = f" between {dated[0]} and {dated[-1]}" if dated else ""
    cve_part = f", fixing {', '.join(cves[:5])}{' and more' if len(cves) > 5 else ''}" if cves else ""
    return (f"{len(listing)} uploads of {', '.join(channels[:5])}{span}{cve_part}; "
            f"the newest is {listing[0]['title']} [1].")
