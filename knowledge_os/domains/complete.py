"""When the answer written from the data is already complete, so the structured mode
makes no LLM call (:func:`data_complete`, called by ``steps.summarise``), and which answer
mode a run is in (:func:`answer_mode`).

Each rule names one shape of question whose answer the data already hold: an id no entry
names, one listed entry, a quoted phrase, an id lookup, a package-period digest of a few
uploads, a ranking, an empty window, kinds of change the question names or ranks. Every
such answer is rendered from the data (:func:`knowledge_os.domains.compose.render_choice`),
so it is grounded by construction; benchmarks/bench_run.py ``--ab`` measures each rule.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from knowledge_os.domains.claims import cve_ids
from knowledge_os.domains.compose import (
    authors_summary,
    fallback_summary,
    has_kind,
    kind_names,
    kind_patterns,
    missing_ids,
    render_choice,
)
from knowledge_os.domains.relevance import asks_newest
from knowledge_os.domains.trend import series_measure, stats_summary, total_summary
from knowledge_os.llm.chat import ChatLlamaCpp

if TYPE_CHECKING:
    from knowledge_os.domains.steps import StepContext

__all__ = ["QUOTE_MIN_CHARS", "answer_mode", "asked_kinds", "data_complete", "moving_kinds", "quoted_entries"]


def answer_mode(ctx: StepContext) -> str:
    """``structured`` or ``prose``: the setting ``llm.answer_mode``; ``auto`` means
    structured when the chat model is the embedded llama.cpp one with no ``model_path``
    (SmolLM2-135M, which invents in free prose) and prose for any other model."""
    llm = ctx.llm
    if llm.answer_mode != "auto":
        return llm.answer_mode
    embedded = isinstance(ctx.chat_model, ChatLlamaCpp) and llm.model_path is None
    return "structured" if embedded else "prose"


def data_complete(ctx: StepContext, listing: list[dict[str, Any]]) -> tuple[str, str] | None:
    """``(why, summary)`` when the answer written from the data is already the one the
    LLM's reply would give, so the call is skipped; None when the LLM has a choice to make.

    - ``id_not_found``: the question names a CVE or bug no entry holds; the answer says
      so in place of any summary (:func:`compose.compose_answer`).
    - ``one_entry`` (structured mode): one entry is listed, so the schema's only entry
      number is 1, and the kind of change is read from the data whatever the model says
      (:func:`compose.entry_kind`): the rendered choice of ``{"n": 1}`` is that reply.
    - ``ranking`` / ``series`` / ``empty_window`` (structured mode, statistics): a ranking
      question, one asking for a count per month, quarter or year
      (:func:`knowledge_os.domains.trend.series_unit`), or a question whose current window
      has no upload, is answered by the figures' own summary whatever kinds the model
      picks (:func:`compose.render_choice`).

    - ``quoted_entry`` (structured mode): the question quotes a phrase that 1..4 listed
      entries hold verbatim (:func:`quoted_entries`); those entries are the answer.
    - ``ids_listed`` (structured mode): the question names a CVE or bug and every listed
      entry (at most 4) names it: each is an upload that fixed or mentions the id, all
      are the answer (the ``answers`` builder's truth lists every entry naming the id).
    - ``kinds_named`` (structured mode, statistics): the question names 1-3 kinds of
      change ("how did security fixes and packaging work shift"; :func:`asked_kinds`):
      their figures are the answer.
    - ``total_asked`` (structured mode, statistics): the question asks how many CVE ids,
      bugs closed or uploads (no kind of change named): the total of each window
      (:func:`total_asked`, :func:`knowledge_os.domains.trend.total_summary`).
    - ``none_rose`` (structured mode, statistics): the question asks which kinds rose and
      none did between two windows with uploads: the figures' summary says so (a model
      asked to choose kinds named ones that fell, without a word that they fell).
    - ``kinds_ranked`` (structured mode, statistics): the question asks which kinds rose,
      fell or dominated (:func:`moving_kinds`): the kinds ranked by that figure are the
      answer (the model, shown the figures, led with the list's first kind even when
      it fell: benchmarks/bench_run.py --seed 7 --show-calls).
    - ``cves_listed`` (structured mode): the question asks for the CVE ids of packages in a
      period (:data:`_CVES_ASKED`) and every listed entry is of them and inside it
      (:func:`_all_in_period`): the 1..4 entries that name CVE ids are the answer, each
      with up to ``compose.IDS_LISTED_MAX`` of its ids.
    - ``authors_asked`` (structured mode, grouped): the question asks who made the uploads
      (:data:`_WHO_ASKED`: "Кто загружал openssl в 2025 году?"): the listed entries'
      signers are the answer (:func:`compose.authors_summary`); the model, which is not
      shown them, summarised the changes instead.
    - ``kinds_listed`` (structured mode): the question names packages, a period and kinds
      of change (:func:`asked_kinds`: "Какие исправления безопасности получил curl в 2025
      году?"), every listed entry is of them and inside it (:func:`_all_in_period`), and
      1..4 of the listed entries are of those kinds (:func:`compose.has_kind`, the rule
      the data-written summary labels them by): those entries are the answer. The
      model, shown six curl entries of 2025 for that question, chose two of the three
      security fixes.
    - ``newest_asked`` (structured mode): the question names packages and no period, asks
      for the newest entry (:func:`~knowledge_os.domains.relevance.asks_newest`: "What is
      the latest version of openssl?") and no kind of change, CVE or bug: each named
      package's newest listed entry is the answer (retrieval kept each package's newest
      entries: ``steps._request``). The model, shown openssl entries by relevance, named
      1.1.1g-1 of 2020.
    - ``packages_listed`` (structured mode): the question names 2-4 packages and a period
      (no kind of change) and every listed entry is of them and inside it: each
      package's newest listed entries, an equal share of four, are the answer. The model,
      shown five curl and five openssl entries of 2025, chose two curl entries only.
    - ``period_listed`` (structured mode): the question names packages and a period and
      the 2-4 listed entries are all uploads of those packages inside it: the question
      asks what those uploads changed, so all of them are the answer
      (:func:`_all_in_period`; not after a replan dropped the period or the packages).

    The prose mode (a stronger model writing its own sentences) is never skipped but
    for ``id_not_found``. Each skip removes one LLM call of ~1-4 s from the Fast Path
    (benchmarks/bench_run.py).
    """
    if ctx.spec.answer_style == "grouped" and listing and (missing_ids(ctx) or ctx.analysis.unknown_packages):
        return "id_not_found", fallback_summary(ctx, listing)
    if answer_mode(ctx) != "structured":
        return None
    if ctx.spec.answer_style == "grouped" and _WHO_ASKED.search(ctx.analysis.text):
        summary = authors_summary(ctx, listing)
        if summary:
            return "authors_asked", summary
    if ctx.spec.answer_style == "stats":
        stats = ctx.stats or {}
        if stats.get("ranking"):
            return "ranking", stats_summary(ctx)
        if stats.get("series") and not (stats.get("empty") or {}).get("current"):
            return "series", stats_summary(ctx)
        if (stats.get("empty") or {}).get("current"):
            return "empty_window", stats_summary(ctx)
        asked = asked_kinds(ctx.analysis.text, kind_names(ctx)[:-1])
        measure = total_asked(ctx.analysis.text, asked)
        if measure is not None:
            return "total_asked", total_summary(ctx, measure)
        if 1 <= len(asked) <= _KINDS_MAX:
            rendered = render_choice(ctx, listing, {"kinds": asked})
            return ("kinds_named", rendered) if rendered else None
        moved = moving_kinds(ctx.analysis.text, stats)
        if moved:
            rendered = render_choice(ctx, listing, {"kinds": moved})
            return ("kinds_ranked", rendered) if rendered else None
        if _none_rose(ctx.analysis.text, stats):
            return "none_rose", stats_summary(ctx)
        return None
    if len(listing) == 1:
        rendered = render_choice(ctx, listing, {"entries": [{"n": 1, "kind": "other"}]})
        return ("one_entry", rendered) if rendered else None
    if _CVES_ASKED.search(ctx.analysis.text) and _all_in_period(ctx, listing):
        numbers = [n for n, d in enumerate(listing, start=1) if cve_ids(d["text"])]
        if 1 <= len(numbers) <= _CHOICE_MAX:
            rendered = render_choice(ctx, listing, {"entries": [{"n": n} for n in numbers]}, all_ids=True)
            if rendered:
                return "cves_listed", rendered
    numbers = newest_of_packages(ctx, listing)
    if 1 <= len(numbers) <= _CHOICE_MAX:
        rendered = render_choice(ctx, listing, {"entries": [{"n": n} for n in numbers]})
        if rendered:
            return "newest_asked", rendered
    numbers = of_asked_kinds(ctx, listing) if _all_in_period(ctx, listing) else []
    if 1 <= len(numbers) <= _CHOICE_MAX:
        rendered = render_choice(ctx, listing, {"entries": [{"n": n} for n in numbers]})
        if rendered:
            return "kinds_listed", rendered
    for why, numbers in (("quoted_entry", quoted_entries(ctx.analysis.text, listing)),
                         ("ids_listed", _naming_all(ctx, listing)),
                         ("period_listed", _all_in_period(ctx, listing)),
                         ("packages_listed", _newest_of_each(ctx, listing))):
        if numbers and len(numbers) <= _CHOICE_MAX:
            rendered = render_choice(ctx, listing, {"entries": [{"n": n} for n in numbers]})
            if rendered:
                return why, rendered
    return None


def _newest_of_each(ctx: StepContext, listing: list[dict[str, Any]]) -> list[int]:
    """For a question naming 2-4 packages and a period (no kind of change, no quote),
    whose listed entries are all of those packages inside it: the numbers of each
    package's newest listed entries, an equal share of the 4 a reply may choose;
    otherwise empty."""
    a = ctx.analysis
    if (not 2 <= len(a.packages) <= _CHOICE_MAX or not _all_in_period(ctx, listing)
            or asked_kinds(a.text, kind_names(ctx)[:-1]) or quoted_entries(a.text, listing)):
        return []
    share = _CHOICE_MAX // len(a.packages)
    numbers: list[int] = []
    for pkg in a.packages:
        theirs = sorted((n for n, d in enumerate(listing, start=1) if d["channel"] == pkg),
                        key=lambda n: -(listing[n - 1].get("ts") or 0))
        numbers += theirs[:share]
    return sorted(numbers)


_WHO_ASKED = re.compile(
    r"^\s*(?:and\s+)?who\b|\bby whom\b|\bwhich (?:maintainers?|uploaders?|people|developers?|persons?)\b"
    r"|^\s*(?:а\s+)?кто\b|\bкем\b|\bкакие\s+(?:мейнтейнеры|сопровождающие|разработчики)\b",
    re.IGNORECASE)
"""A question asking who made the uploads ("Who uploaded openssl in 2025?", "Which
maintainers signed curl's uploads?", "Кто загружал openssl в 2025 году?")."""
_CHOICE_MAX = 4  # entries a structured reply may choose (choice_schema's maxItems)
_CVES_ASKED = re.compile(r"\b(?:which|what|list|all|show|name)\b(?:\s+\S+){0,3}?\s+cves?\b|\bcve ids\b"
                         r"|\bкакие\s+(?:\S+\s+){0,2}?cve\b|\bперечисл\w*(?:\s+\S+){0,3}?\s+cve\b|\bсписок\s+cve\b",
                         re.IGNORECASE)
"""A question asking for the CVE ids themselves ("List all CVEs fixed in openssl in 2024",
"Какие CVE исправлены в curl в 2024 году?")."""
_KINDS_MAX = 3  # kinds a statistics reply may choose
# How questions name the default kinds of change (compose.DEFAULT_CHANGE_KINDS), EN and
# RU; a domain's own kind is named by its name ("new_upstream": "new upstream").
_KIND_WORDS: dict[str, tuple[str, ...]] = {
    "security": (r"\bsecurity\b", r"\bcves?\b", r"vulnerab", r"безопасност", r"уязвим"),
    "bugfix": (r"\bbug[- ]?fix", r"исправлени\w*\s+ошиб", r"\bбаг"),
    "new_upstream": (r"\bnew upstream", r"\bupstream (?:release|version)", r"нов\w*\s+верси", r"апстрим"),
    "packaging": (r"\bpackaging\b", r"\bсборк", r"\bупаковк"),
    "translation": (r"\btranslation", r"\bl10n\b", r"\bперевод"),
    "documentation": (r"\bdocumentation\b", r"\bdocs\b", r"документац"),
}


_RISE = re.compile(r"\b(?:ris(?:e|es|ing)|grew|grow(?:s|n|ing)?|increas\w*|more (?:common|often|frequent))\b"
                   r"|стал\w* больше|чаще|раст[уё]т|вырос\w*|увелич\w*", re.IGNORECASE)
_FALL = re.compile(r"\b(?:fell|fall(?:s|ing)?|declin\w*|decreas\w*|less (?:common|often|frequent)|fewer)\b"
                   r"|меньше|реже|сократ\w*|уменьш\w*|снизил\w*", re.IGNORECASE)
_DOMINANT = re.compile(r"\b(?:dominat\w*|prevail\w*|most (?:common|frequent))\b|преоблада\w*|доминир\w*",
                       re.IGNORECASE)


def moving_kinds(question: str, stats: dict[str, Any]) -> list[str]:
    """Up to three kinds of change ranked by what the question asks of them, from the
    computed figures (``stats["kinds"]``: ``{"kind", "current", "previous"}`` rows), or
    empty when it asks none of these or the figures cannot say:

    - dominated ("dominated", "most common", "преобладали"): the most uploads in the
      asked window first (kinds with none left out);
    - rose and fell both ("стало больше, а каких меньше"): the largest changes either way;
    - rose ("rising", "grew", "more common", "чаще", "растут"): the kinds that rose, the
      largest rise first; fell ("declining", "fewer", "реже"): likewise.

    Rise and fall need the previous window; "dominated" is checked first ("which
    dominated, and how does that compare with before").
    """
    rows = [r for r in stats.get("kinds") or []
            if isinstance(r, dict) and isinstance(r.get("current"), int) and "kind" in r]
    if _DOMINANT.search(question):
        return [r["kind"] for r in sorted(rows, key=lambda r: -r["current"]) if r["current"] > 0][:_KINDS_MAX]
    rise, fall = bool(_RISE.search(question)), bool(_FALL.search(question))
    rows = [r for r in rows if isinstance(r.get("previous"), int)]
    if not rows or not (rise or fall):
        return []
    sign = 0 if rise and fall else (1 if rise else -1)
    moved = [(r["current"] - r["previous"], r["kind"]) for r in rows]
    moved = [(d, k) for d, k in moved if d != 0 and (sign == 0 or d * sign > 0)]
    return [k for _, k in sorted(moved, key=lambda x: -abs(x[0]))][:_KINDS_MAX]


_COUNT_ASKED = re.compile(r"\bhow many\b|\bnumber of\b|\bcount\b|\btotal\b|сколько|\bчисл[оа]\b|количеств\w*",
                          re.IGNORECASE)


def total_asked(question: str, asked: list[str]) -> str | None:
    """The total a question asks for ("How many CVEs were fixed in linux in 2026?",
    "Сколько ошибок закрыли в systemd?", "How many uploads did openssl get?"):
    ``cve_ids``, ``bugs_closed`` or ``uploads`` (:func:`knowledge_os.domains.trend.series_measure`),
    or None when it asks for no count, or for the uploads of kinds of change it names
    (``asked``), which the kinds' own lines answer."""
    if not _COUNT_ASKED.search(question):
        return None
    measure, _ = series_measure(question, asked)
    if measure in ("cve_ids", "bugs_closed") or (measure == "uploads" and not asked):
        return measure
    return None


def _none_rose(question: str, stats: dict[str, Any]) -> bool:
    """Whether the question asks which kinds rose, both windows have uploads, and none rose:
    the figures' own summary says so ("No kind of change rose ..."), where a model asked to
    choose kinds named ones that fell."""
    if not _RISE.search(question) or _FALL.search(question) or _DOMINANT.search(question):
        return False
    uploads = stats.get("uploads") or {}
    if not uploads.get("current") or not uploads.get("previous"):
        return False
    return not any((r.get("delta") or 0) > 0 for r in stats.get("kinds") or [] if isinstance(r, dict))


def asked_kinds(question: str, names: list[str]) -> list[str]:
    """The kinds of change (of ``names``) a question names, in the order it names them:
    words of :data:`_KIND_WORDS` for the default kinds, the kind's name (``_`` read as a
    space or hyphen, a plural ``s`` allowed) for any other. A generic word ("fixes", "изменения") names none."""
    found: list[tuple[int, str]] = []
    for name in names:
        words = _KIND_WORDS.get(name) or (r"\b" + re.escape(name).replace("_", "[ _-]?") + r"(?:e?s)?\b",)
        hits = [m.start() for w in words if (m := re.search(w, question, re.IGNORECASE))]
        if hits:
            found.append((min(hits), name))
    return [name for _, name in sorted(found)]
_QUOTED = re.compile(r'"([^"]+)"|«([^»]+)»|“([^”]+)”|„([^“”]+)[“”]')
QUOTE_MIN_CHARS = 12
"""A quoted phrase shorter than this (a word or two) is not looked up verbatim."""


def _flat(text: str) -> str:
    return " ".join(text.split()).casefold()


def quoted_entries(question: str, listing: list[dict[str, Any]]) -> list[int]:
    """The 1-based numbers of the listed entries whose text holds, verbatim, a phrase the
    question quotes ("...", «...», “...”, „...“; at least :data:`QUOTE_MIN_CHARS`
    characters; compared case-folded with whitespace collapsed, so a phrase wrapped over
    two changelog lines is found). Empty when the question quotes nothing or no listed
    entry holds the phrase.

    Such a question ("Which version has the entry "..."?") is answered by the entry that
    holds the phrase; the choice made from 160-character excerpts cannot see a phrase
    further down the entry (the free-text questions of the ``answers`` builder).
    """
    phrases = [_flat(p) for m in _QUOTED.finditer(question) for p in m.groups() if p]
    phrases = [p.strip(" .,;:!?") for p in phrases]
    phrases = [p for p in phrases if len(p) >= QUOTE_MIN_CHARS]
    if not phrases:
        return []
    return [n for n, d in enumerate(listing, start=1) if any(p in _flat(d["text"]) for p in phrases)]


def _naming_all(ctx: StepContext, listing: list[dict[str, Any]]) -> list[int]:
    """Every listed entry's number when the question names a CVE or bug and each listed
    entry names one of the asked ids (the listing of an id lookup): each of them answers
    "where was it fixed", so choosing among them adds nothing. Otherwise empty."""
    if not (ctx.analysis.cves or ctx.analysis.bugs) or missing_ids(ctx):
        return []
    # The id rule of compose.missing_ids: a bug number stands alone ("Closes: #N", "N").
    asked = [rf"(?<![\w-]){re.escape(i)}(?!\d)" for i in (*ctx.analysis.cves, *ctx.analysis.bugs)]
    if all(any(re.search(a, d["text"], re.IGNORECASE) for a in asked) for d in listing):
        return list(range(1, len(listing) + 1))
    return []


def newest_of_packages(ctx: StepContext, listing: list[dict[str, Any]]) -> list[int]:
    """For a question asking for the newest entry of the packages it names, with no period,
    kind of change, CVE or bug: the 1-based number of each named package's newest listed
    entry, in listing order; otherwise (or when a named package has no listed entry)
    empty. Only entries retrieval kept as a package's newest (``latest``) count, so an
    older entry found by relevance alone is never called the newest."""
    a = ctx.analysis
    if (not a.packages or a.dates or a.cves or a.bugs or not ctx.use_packages or not asks_newest(a.text)
            or asked_kinds(a.text, kind_names(ctx)[:-1])):
        return []
    newest: dict[str, tuple[int, int]] = {}
    for n, d in enumerate(listing, start=1):
        ts = d.get("ts")
        if d.get("channel") in a.packages and "latest" in d.get("sources", ()) and isinstance(ts, int):
            if d["channel"] not in newest or ts > newest[d["channel"]][0]:
                newest[d["channel"]] = (ts, n)
    if set(newest) != set(a.packages):
        return []
    return sorted(n for _, n in newest.values())


def of_asked_kinds(ctx: StepContext, listing: list[dict[str, Any]]) -> list[int]:
    """The 1-based numbers of the listed entries of the kinds of change the question asks
    for (:func:`asked_kinds`; :func:`compose.has_kind`); empty when it asks for none."""
    asked = asked_kinds(ctx.analysis.text, kind_names(ctx)[:-1])
    if not asked:
        return []
    table = dict(kind_patterns(ctx))
    return [n for n, d in enumerate(listing, start=1) if any(has_kind(d, table[k]) for k in asked if k in table)]


def _all_in_period(ctx: StepContext, listing: list[dict[str, Any]]) -> list[int]:
    """Every listed entry's number when the question names packages and a date range
    (both still in force) and each listed entry is an upload of one of those packages
    dated inside the range; otherwise empty."""
    a = ctx.analysis
    if not (a.packages and a.dates and ctx.use_dates and ctx.use_packages):
        return []
    lo, hi = a.dates.ts_from, a.dates.ts_to

    def inside(d: dict[str, Any]) -> bool:
        ts = d.get("ts")
        return (d.get("channel") in a.packages and isinstance(ts, int)
                and (lo is None or ts >= lo) and (hi is None or ts < hi))

    return list(range(1, len(listing) + 1)) if all(inside(d) for d in listing) else []
