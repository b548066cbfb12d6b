"""Build the answer text around the summary: a cited listing taken from the data, so
every version, date and citation in it is checkable, in the question's language.

Three kinds of summary exist. The LLM's prose (``answer_mode: prose``); a summary the
framework renders from the entries the LLM chose and labelled (``structured``, see
:func:`render_choice`); and the summary written from the data alone
(:func:`fallback_summary`), used when the LLM is unavailable or its summary failed the
checks twice. The last two are grounded by construction: every token they write is
copied from a listed document (cited in the same sentence) or from a computed figure.
The statistics answer body (``answer_style: stats``) is composed by
:mod:`knowledge_os.domains.trend`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from knowledge_os.domains.claims import cve_ids
from knowledge_os.domains.entries import entry_line, signer
from knowledge_os.domains.relevance import bearing
from knowledge_os.domains.trend import compose_stats_answer, newest_before, stats_summary
from knowledge_os.i18n import pick
from knowledge_os.retrieval.query import day_ts

if TYPE_CHECKING:
    from knowledge_os.domains.steps import StepContext

__all__ = [
    "DEFAULT_CHANGE_KINDS",
    "authors_summary",
    "compose_answer",
    "data_notice",
    "entry_kind",
    "entry_line",
    "fallback_summary",
    "has_kind",
    "kind_names",
    "kind_patterns",
    "missing_ids",
    "render_choice",
]

_MONTH_NAME = re.compile(r"\b(?:january|february|march|april|may|june|july|august|september|october|november|december"
                         r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\b")
"""English month names as the question's lowercased words have them ("since june"), capitalised when echoed."""

# -- framework-written lines, one table per line, {lang: template} ----------------------
NOTHING_IN_PERIOD = {
    "en": "Nothing matched {label} ({period}); these are the closest entries from any date.",
    "ru": "За период {period} ничего не нашлось; ниже ближайшие записи за любое время.",
}
NO_ENTRIES = {"en": "No matching entries were found.", "ru": "Подходящих записей не нашлось."}
NONE_IN_PERIOD_FOR = {"en": "No entry of {name} is dated {period}{newest}.",
                      "ru": "У {name} нет записей за {period}{newest}."}
"""Said of each package a question names beside others that has no entry in its period."""
NEWEST_IS = {"en": " (its newest is from {d})", "ru": " (самая новая от {d})"}
ID_NOT_FOUND = {
    "en": "No ingested entry names {ids}; the entries below are the closest ones and do not answer that.",
    "ru": "Ни одна загруженная запись не упоминает {ids}; ниже ближайшие записи, они на этот вопрос не отвечают.",
}
PACKAGE_NOT_FOUND = {
    "en": "No ingested entry is about {names}; the entries below are the closest ones and do not answer that.",
    "ru": "Ни одна загруженная запись не относится к {names}; ниже ближайшие записи, они на этот вопрос не отвечают.",
}
AND_MORE = {"en": "(and {n} more related entries)", "ru": "(и ещё связанных записей: {n})"}
NOTHING_MATCHES = {"en": "Nothing in the ingested data matches this question.",
                   "ru": "В загруженных данных нет ничего по этому вопросу."}
DATA_SPAN = {"en": "The listing holds {n} entries of {channels}, dated {first} to {last}.",
             "ru": "Записей в списке: {n} ({channels}), с {first} по {last}."}
DATA_COUNT = {"en": "The listing holds {n} entries of {channels}.",
              "ru": "Записей в списке: {n} ({channels})."}
DATA_ONE = {"en": "The listing holds one entry of {channels}, dated {first}.",
            "ru": "Записей в списке: 1 ({channels}), от {first}."}
DATA_ONE_UNDATED = {"en": "The listing holds one entry of {channels}.", "ru": "Записей в списке: 1 ({channels})."}
DATA_NEWEST = {"en": "The newest is {entry} [{n}].", "ru": "Самая новая: {entry} [{n}]."}
DATA_CVES = {"en": "CVE ids fixed: {cves}.", "ru": "Исправленные CVE: {cves}."}
NOTICE = {
    "rejected": {
        "en": "Note: the model's summary did not pass the checks against the cited entries; "
              "the summary above is written from the data alone.",
        "ru": "Примечание: сводка модели не прошла проверку по цитируемым записям; "
              "сводка выше составлена только по данным.",
    },
    "unavailable": {
        "en": "Note: the model was not available; the summary above is written from the data alone.",
        "ru": "Примечание: модель была недоступна; сводка выше составлена только по данным.",
    },
}
CHOICE_LEAD = {"en": "The entries that bear on the question:", "ru": "Записи по вопросу:"}
AUTHORS_LEAD = {"en": "The listed uploads were signed by", "ru": "Перечисленные загрузки подписали:"}
"""Said before the uploaders of the listed entries (:func:`authors_summary`)."""
AUTHORS_MORE = {"en": "; and {more} more people", "ru": "; и ещё человек: {more}"}
CHOICE_ENTRY = {"en": "{entry}: {kind}{ids} [{n}].", "ru": "{entry}: {kind}{ids} [{n}]."}
IDS_TOTAL = {"en": "{ids}; {total} CVE ids in all", "ru": "{ids}; всего CVE: {total}"}
"""An entry's ids when it names more than :func:`_ids_shown` lists, with how many CVE ids
it names (a count ``verify`` traces to the entry: ``claims.cve_ids``)."""
STATS_KIND = {
    "en": "Uploads with a {kind}: {current} from {cur_from} to {cur_to}, against {previous} from {prev_from} to {prev_to}.",
    "ru": "Загрузок с видом изменений «{kind}»: {current} с {cur_from} по {cur_to}, против {previous} с {prev_from} по {prev_to}.",
}
STATS_KIND_ONE = {
    "en": "Uploads with a {kind}: {current} from {cur_from} to {cur_to}.",
    "ru": "Загрузок с видом изменений «{kind}»: {current} с {cur_from} по {cur_to}.",
}
STATS_SHARE = {"en": "{count} of {uploads} ({share}%)", "ru": "{count} из {uploads} ({share}%)"}
"""A kind's count with its share of the window's uploads, as "what share" questions ask."""

DEFAULT_CHANGE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # "CVE-...-regression" names the fix whose regression an upload repairs: not a security fix.
    ("security", (r"CVE-\d{4}-\d+(?!\d|[-_ ]regression)", r"\bsecurity\b", "vulnerab", "overflow", "use-after-free",
                  r"\bDSA[- ]\d+", r"\bDLA[- ]\d+")),
    ("bugfix", (r"Closes:\s*#\d+", r"\bfix(es|ed)?\b", r"\bcrash", r"\bregression")),
    ("new_upstream", ("new upstream", "upstream (release|version)", r"\bimport(ed)? \d", r"\brebase")),
    ("packaging", ("debian/", "standards-version", "lintian", "build-dep", r"\bdh\b", "debhelper",
                   r"\bpackaging\b")),
    ("translation", ("translation", r"\bl10n\b", r"\bpo/", r"\.po\b", "debconf templates")),
    ("documentation", (r"\bdocumentation\b", r"\bmanpage", r"\bman page", r"\btypo")),
)
"""Kinds of change for domains whose YAML lists none (the trend YAML's list)."""

KIND_LABELS = {
    "security": {"en": "security fix", "ru": "исправление безопасности"},
    "bugfix": {"en": "bug fix", "ru": "исправление ошибок"},
    "new_upstream": {"en": "new upstream version", "ru": "новая версия апстрима"},
    "packaging": {"en": "packaging change", "ru": "изменение сборки пакета"},
    "translation": {"en": "translation update", "ru": "обновление переводов"},
    "documentation": {"en": "documentation change", "ru": "изменение документации"},
    "other": {"en": "other changes", "ru": "прочие изменения"},
}


def _lang(ctx: StepContext) -> str:
    return getattr(ctx.analysis, "lang", "en") or "en"


def kind_patterns(ctx: StepContext) -> list[tuple[str, Any]]:
    """``(kind, regex patterns)`` of the domain's kinds of change in their fixed order:
    its ``change_kinds``, else :data:`DEFAULT_CHANGE_KINDS`."""
    return [(k.name, k.patterns) for k in ctx.spec.change_kinds] or list(DEFAULT_CHANGE_KINDS)


def kind_names(ctx: StepContext) -> list[str]:
    """The fixed list of kinds of change a structured answer may use (``other`` last)."""
    return [*(name for name, _ in kind_patterns(ctx)), "other"]


def has_kind(doc: Mapping[str, Any], patterns: Sequence[str]) -> bool:
    """Whether any line of a document's entry body (its text after the header line)
    matches one of a kind's ``patterns`` (regexes, case-insensitive)."""
    body = str(doc.get("text", "")).split("\n", 1)[-1]
    return any(re.search(p, body, re.IGNORECASE) for p in patterns)


def entry_kind(ctx: StepContext, doc: dict[str, Any], proposed: str | None = None) -> str:
    """The kind of change of an entry, from the data: the first kind of the fixed list
    whose patterns match one of its lines (``other`` when none does). ``proposed`` (the
    model's label) is kept only when it is that kind: a model cannot call a packaging
    upload a security fix, nor a CVE fix a mere bug fix."""
    for name, pats in kind_patterns(ctx):
        if has_kind(doc, pats):
            return name
    return "other" if proposed != "other" else proposed


def kind_label(kind: str, lang: str) -> str:
    return pick(KIND_LABELS[kind], lang) if kind in KIND_LABELS else kind.replace("_", " ")


def _entry_name(doc: dict[str, Any]) -> str:
    """``package version (date)`` of a changelog entry, else ``title (date)``."""
    md = doc.get("metadata") or {}
    head = f"{doc['channel']} {md['version']}" if md.get("version") else doc["title"]
    return f"{head} ({doc['date']})" if doc.get("date") else head


def compose_answer(ctx: StepContext, summary: str, listing: list[dict[str, Any]], *,
                   notice: str | None = None) -> str:
    """Summary, then the listing (grouped by channel) or the statistics table. After a
    broadening replan the answer says what was dropped.

    Args:
        ctx: The step context (spec, analysis with ``lang``, documents, stats).
        summary: The summary text (any of the three kinds).
        listing: The documents shown, in ``[n]`` order.
        notice: ``"rejected"`` or ``"unavailable"`` adds the one-line data-only notice.
    """
    lang = _lang(ctx)
    if ctx.spec.answer_style == "stats" and ctx.stats is not None:
        answer = compose_stats_answer(ctx, summary, listing)
        return f"{answer}\n\n{data_notice(notice, lang)}" if notice else answer
    missing = missing_ids(ctx)
    unknown = ctx.analysis.unknown_packages
    # The question names an id or a package no entry holds: say so instead of a summary
    # of other uploads.
    if missing:
        parts = [pick(ID_NOT_FOUND, lang, ids=", ".join(missing))]
    elif unknown:
        parts = [pick(PACKAGE_NOT_FOUND, lang, names=", ".join(unknown))]
    else:
        parts = [summary.strip()]
    if not ctx.use_dates and ctx.analysis.dates is not None and ctx.spec.answer_style == "grouped":
        parts.insert(0, pick(NOTHING_IN_PERIOD, lang, label=_MONTH_NAME.sub(lambda m: m[0].capitalize(),
                                                                             ctx.analysis.dates.label),
                             period=ctx.analysis.dates.describe()))
    parts += _packages_without_entries(ctx, lang)
    if not listing:
        parts.append(pick(NO_ENTRIES, lang))
    else:
        lines: list[str] = []
        current = None
        for n, d in enumerate(listing, start=1):
            if d["channel"] != current:
                current = d["channel"]
                lines.append(f"{current}:")
            lines.append(f"  - {entry_line(d)} [{n}]")
        more = _more(ctx, listing)
        if more > 0:
            lines.append(pick(AND_MORE, lang, n=more))
        parts.append("\n".join(lines))
    if notice:
        parts.append(data_notice(notice, lang))
    return "\n\n".join(parts)


def _packages_without_entries(ctx: StepContext, lang: str) -> list[str]:
    """One line for each package a question names beside others ("compare curl and openssl
    since March") that has no entry in the asked period, with the date of its newest one: a
    listing of the others alone would pass it over in silence."""
    dates = ctx.analysis.dates
    if ctx.spec.answer_style != "grouped" or not ctx.use_dates or dates is None or len(ctx.analysis.packages) < 2:
        return []
    present = {d["channel"] for d in ctx.documents}
    lines = []
    for name in ctx.analysis.packages:
        if name in present:
            continue
        # Read from the store, not the retrieved documents: a package with entries in the
        # period that retrieval ranked below its top_k is not "without entries".
        newest = newest_before(ctx.docstore, (name,), dates.ts_to)
        if newest is not None and (dates.ts_from is None or day_ts(newest) >= dates.ts_from):
            continue
        lines.append(pick(NONE_IN_PERIOD_FOR, lang, name=name, period=dates.describe(),
                          newest=pick(NEWEST_IS, lang, d=newest.isoformat()) if newest else ""))
    return lines


def missing_ids(ctx: StepContext) -> list[str]:
    """The CVE ids and ``#bug`` numbers the question names that no retrieved document
    holds (exact matching ignores the date filter, so such an id is in no entry at all)."""
    texts = [d["text"].upper() for d in ctx.documents]
    asked = [c.upper() for c in ctx.analysis.cves] + [f"#{b}" for b in ctx.analysis.bugs]
    return [i for i in asked if not any(re.search(rf"(?<![\w-]){re.escape(i.lstrip('#'))}(?!\d)", t)
                                        for t in texts)]


def data_notice(reason: str, lang: str) -> str:
    """The one line that says the summary is written from the data alone.

    Args:
        reason: ``"rejected"`` (the model's summary failed the checks) or
            ``"unavailable"`` (the model failed or was over budget).
        lang: ``"en"`` or ``"ru"``.
    """
    return pick(NOTICE[reason], lang)


def fallback_summary(ctx: StepContext, listing: list[dict[str, Any]]) -> str:
    """A summary written from the data alone, in the question's language. Every token is
    copied from the listing (cited in its sentence) or is the listing's own count, so
    the claim check grounds it by construction (tested)."""
    lang = _lang(ctx)
    if ctx.spec.answer_style == "stats" and ctx.stats is not None:
        return _stats_data_summary(ctx, lang)
    if not listing:
        return pick(NOTHING_MATCHES, lang)
    channels = ", ".join(list(dict.fromkeys(d["channel"] for d in listing))[:5])
    dated = sorted(d["date"] for d in listing if d.get("date"))
    if len(listing) == 1:
        parts = [pick(DATA_ONE, lang, channels=channels, first=dated[0]) if dated
                 else pick(DATA_ONE_UNDATED, lang, channels=channels)]
    elif dated:
        parts = [pick(DATA_SPAN, lang, n=len(listing), channels=channels, first=dated[0], last=dated[-1])]
    else:
        parts = [pick(DATA_COUNT, lang, n=len(listing), channels=channels)]
    # The newest dated entry (a persona or the grouping may list another one first).
    newest = max(range(len(listing)), key=lambda i: (listing[i].get("ts") or 0, -i))
    parts.append(pick(DATA_NEWEST, lang, entry=_entry_name(listing[newest]), n=newest + 1))
    cves: list[str] = []
    for n, d in enumerate(listing, start=1):
        for cve in cve_ids(d["text"]):
            if len(cves) < 6:
                cves.append(f"{cve} [{n}]")
    if cves:
        parts.append(pick(DATA_CVES, lang, cves=", ".join(cves)))
    return " ".join(parts)


def _stats_rows(ctx: StepContext) -> list[dict[str, Any]] | None:
    """The statistics' kind rows, or None when they have a shape this module does not know."""
    s = ctx.stats or {}
    rows = s.get("kinds")
    if not (isinstance(rows, list) and isinstance(s.get("window"), dict)):
        return None
    if not all(isinstance(r, dict) and {"kind", "current", "previous"} <= set(r) for r in rows):
        return None
    return rows


def _stats_kind_line(ctx: StepContext, row: dict[str, Any], lang: str) -> str:
    s = ctx.stats or {}
    prev = s.get("previous")
    totals = s.get("totals") or {}

    def count(n: int, window: str, share: Any) -> str:
        uploads = (totals.get(window) or {}).get("uploads")
        if share is None or not uploads:
            return str(n)
        return pick(STATS_SHARE, lang, count=n, uploads=uploads, share=share)

    current = count(row["current"], "current", row.get("share_pct"))
    if row["previous"] is None or not isinstance(prev, dict):
        return pick(STATS_KIND_ONE, lang, kind=kind_label(row["kind"], lang), current=current,
                    cur_from=s["window"]["from"], cur_to=s["window"]["to"])
    return pick(STATS_KIND, lang, kind=kind_label(row["kind"], lang), current=current,
                previous=count(row["previous"], "previous", row.get("previous_share_pct")),
                cur_from=s["window"]["from"], cur_to=s["window"]["to"], prev_from=prev["from"], prev_to=prev["to"])


def _stats_data_summary(ctx: StepContext, lang: str) -> str:
    """Trend's own :func:`stats_summary` (written from the figures, in the question's language)."""
    return stats_summary(ctx)


def _ids_shown(ctx: StepContext, doc: dict[str, Any], *, most: int = 3) -> tuple[list[str], int]:
    """Up to ``most`` ids of an entry (those the question asks about first, then its CVE
    ids) and how many CVE ids it names when that leaves some out (0 when every id is shown)."""
    asked = [c.upper() for c in ctx.analysis.cves if c.upper() in doc["text"].upper()]
    asked += [f"#{b}" for b in ctx.analysis.bugs if re.search(rf"(?<!\d){b}(?!\d)", doc["text"])]
    cves = cve_ids(doc["text"])
    ids = list(dict.fromkeys([*asked, *cves]))
    shown = ids[:max(most, len(asked))]
    return shown, len(cves) if len(shown) < len(ids) else 0


def _ids_text(ctx: StepContext, doc: dict[str, Any], lang: str, *, most: int = 3) -> str:
    """`` (CVE-1, CVE-2, CVE-3; 5 CVE ids in all)`` for an entry's sentence, or "" when it
    names none."""
    shown, total = _ids_shown(ctx, doc, most=most)
    if not shown:
        return ""
    listed = ", ".join(shown)
    return f" ({pick(IDS_TOTAL, lang, ids=listed, total=total) if total else listed})"


def _more(ctx: StepContext, listing: list[dict[str, Any]]) -> int:
    """Documents that bear on the question but are not listed: for a named CVE or bug the
    other uploads naming it, otherwise the other documents past the citation cut-off."""
    shown = {d["id"] for d in listing}
    if listing and all("exact" in d["sources"] for d in listing) and (ctx.analysis.cves or ctx.analysis.bugs):
        pool = [d for d in ctx.documents if "exact" in d["sources"]]
    else:
        pool = bearing(ctx.documents, ctx.analysis.text)
    return sum(1 for d in pool if d["id"] not in shown)


IDS_LISTED_MAX = 12
"""Most CVE ids an entry's sentence names when the question asks for the ids themselves."""


AUTHORS_MAX = 6


def authors_summary(ctx: StepContext, listing: list[dict[str, Any]]) -> str | None:
    """Who signed the listed entries: "The listed uploads were signed by Sebastian Andrzej
    Siewior [1], [2], [3]." (the changelog trailer's name, ``metadata.author``, without
    its e-mail address), up to :data:`AUTHORS_MAX` people (then how many more), the one
    with most entries first, each with the numbers of their entries. None when no listed
    entry names its author (a document that is no changelog entry)."""
    by_author: dict[str, list[int]] = {}
    for n, d in enumerate(listing, start=1):
        author = signer(d)
        if author:
            by_author.setdefault(author, []).append(n)
    if not by_author:
        return None
    ranked = sorted(by_author.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
    people = "; ".join(f"{a} " + ", ".join(f"[{n}]" for n in ns) for a, ns in ranked[:AUTHORS_MAX])
    more = pick(AUTHORS_MORE, _lang(ctx), more=len(ranked) - AUTHORS_MAX) if len(ranked) > AUTHORS_MAX else ""
    return f"{pick(AUTHORS_LEAD, _lang(ctx))} {people}{more}."


def render_choice(ctx: StepContext, listing: list[dict[str, Any]], choice: dict[str, Any], *,
                  all_ids: bool = False) -> str | None:
    """Sentences from a structured reply (see :func:`knowledge_os.domains.steps.choice_schema`),
    every fact copied from the data.

    Args:
        ctx: The step context.
        listing: The documents the reply's entry numbers refer to (1-based).
        choice: ``{"entries": [{"n": int, "kind": str}, ...]}`` (grouped style) or
            ``{"kinds": [str, ...]}`` (stats style).
        all_ids: Name up to :data:`IDS_LISTED_MAX` CVE ids per entry, not 3 (the question
            asks for the ids themselves).

    Returns:
        The summary, or None when the reply names nothing usable (no valid number or kind).
    """
    lang = _lang(ctx)
    if ctx.spec.answer_style == "stats" and ctx.stats is not None:
        if ctx.stats.get("ranking") or ctx.stats.get("series"):  # entities or periods, not kinds
            return stats_summary(ctx)
        rows = _stats_rows(ctx)
        if rows is None:
            return None
        by_kind = {r["kind"]: r for r in rows}
        wanted = [k for k in dict.fromkeys(choice.get("kinds") or []) if k in by_kind]
        if not wanted:
            return None
        # A kind with no upload in either window says nothing: trend's own summary says
        # what the windows hold (e.g. that one has no data) instead.
        wanted = [k for k in wanted if by_kind[k]["current"] or by_kind[k]["previous"]]
        if not wanted or (ctx.stats.get("empty") or {}).get("current"):
            return stats_summary(ctx)
        return " ".join(_stats_kind_line(ctx, by_kind[k], lang) for k in wanted[:3])
    picked: list[tuple[int, str | None]] = []
    for item in choice.get("entries") or []:
        if not isinstance(item, dict):
            continue
        n = item.get("n")
        if isinstance(n, int) and 1 <= n <= len(listing) and n not in {p for p, _ in picked}:
            picked.append((n, item.get("kind") if isinstance(item.get("kind"), str) else None))
    if not picked:
        return None
    sentences = [pick(CHOICE_LEAD, lang)]
    for n, proposed in picked[:4]:
        doc = listing[n - 1]
        kind = entry_kind(ctx, doc, proposed)
        sentences.append(pick(CHOICE_ENTRY, lang, entry=_entry_name(doc), kind=kind_label(kind, lang),
                              ids=_ids_text(ctx, doc, lang, most=IDS_LISTED_MAX if all_ids else 3), n=n))
    return " ".join(sentences)

