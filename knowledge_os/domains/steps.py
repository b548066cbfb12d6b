"""The shared step library. A domain YAML lists step names; ``execute`` runs them in order.

Each step reads and writes a :class:`StepContext`. Steps: ``retrieve`` (RetrievalService),
``expand`` (graph neighbours of the top documents), ``group`` (by channel, newest first),
``stats`` (counts of change kinds and entities per period, computed from the data) and
``summarise`` (the LLM writes a cited summary; the cited listing is built from the data).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage, SystemMessage

from knowledge_os.domains.compose import (
    compose_answer,
    fallback_summary,
    kind_names,
    kind_patterns,
    render_choice,
)
from knowledge_os.domains.complete import (
    answer_mode,
    asked_kinds,
    data_complete,
    newest_of_packages,
    of_asked_kinds,
)
from knowledge_os.domains.relevance import asks_newest, bearing, names_only
from knowledge_os.domains.spec import DomainSpec
from knowledge_os.errors import BackendError, BackendUnavailableError, BudgetExceededError
from knowledge_os.llm.budget import Budget, merge_usage
from knowledge_os.llm.calls import SYNTHESIS_TAG, call_llm, parse_json_reply
from knowledge_os.personas.registry import order_by_interests
from knowledge_os.retrieval.query import DateRange, QueryAnalysis, day_ts
from knowledge_os.retrieval.service import RetrievalRequest

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from knowledge_os.retrieval.docstore import DocumentStore
    from knowledge_os.retrieval.service import RetrievalService
    from knowledge_os.settings import LLMSettings

__all__ = ["STEPS", "StepContext", "answer_mode", "data_complete", "doc_to_state", "render_context"]

logger = logging.getLogger(__name__)

LISTING_MAX = 10  # entries shown (and cited) in a digest listing
PROMPT_DOCS = 8  # entries the LLM sees
PROMPT_DOC_CHARS = 280
CHOOSE_DOC_CHARS = 160  # structured mode: enough to choose an entry (kinds are checked on the data)


@dataclass(slots=True, kw_only=True)
class StepContext:
    """Inputs and outputs of a plan's steps for one execution.

    A step receives the parts it uses, not the whole ``Services`` bag: ``retrieval``
    (retrieve, expand), ``docstore`` (trend statistics and their examples),
    ``chat_model`` and ``llm`` (the LLMSettings: answer mode, model path) for summaries.

    Attributes:
        persona: What the prompts call the reader (the resolved persona profile's title),
            or None.
        persona_summary: The profile's summary (100..200 tokens), appended to the system
            prompt of every synthesis call; None without a persona.
        persona_interests: Kinds of change the listing puts first (:func:`select_listing`).
        use_dates: Filter by the question's date range (false after a replan dropped it;
            ``knowledge_os.nodes.plan.replan_scope``).
        use_packages: Filter by the question's packages (false once a replan dropped it too).
        n_candidates: Answers to draft (2 on the Smart Path or for important domains).
        top_k / graph_depth: The plan's retrieval arguments (``Plan.args``); None: the
            domain's ``retrieval`` defaults.
        documents: Retrieved documents as state dicts (see :func:`doc_to_state`).
        candidates: Drafts ``{"answer", "summary", "citations": [doc ids], "variant",
            "data_only": bool, "mode": "prose"|"structured"|"data"}``.
    """

    retrieval: RetrievalService
    docstore: DocumentStore
    chat_model: BaseChatModel
    llm: LLMSettings
    spec: DomainSpec
    analysis: QueryAnalysis
    as_of: date
    budget: Budget
    usage: dict[str, int]
    persona: str | None = None
    persona_summary: str | None = None
    persona_interests: tuple[str, ...] = ()
    use_dates: bool = True
    use_packages: bool = True
    n_candidates: int = 1
    top_k: int | None = None
    graph_depth: int | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    fallback_used: bool = False

    def note_usage(self, delta: dict[str, int]) -> None:
        self.usage.update(merge_usage(self.usage, delta))


def doc_to_state(doc: Any, score: float, sources: tuple[str, ...]) -> dict[str, Any]:
    """A retrieved document as a JSON-able dict for the graph state."""
    return {
        "id": doc.id,
        "title": doc.title,
        "channel": doc.channel,
        "ts": doc.ts,
        "date": datetime.fromtimestamp(doc.ts, UTC).date().isoformat() if doc.ts else "",
        "score": score,
        "sources": list(sources),
        "metadata": dict(doc.metadata),
        "text": doc.text,
        "content_hash": doc.content_hash,
    }


def closest_are_newest(ctx: StepContext) -> bool:
    """True when a replan dropped a period that reaches today ("this year", "since March")
    because nothing in it matched: the entries closest to that period are then each
    package's newest, not the best-scored of all time (which put 2023 curl uploads under
    "the closest entries from any date" for "Which security fixes did curl get this year?"
    while curl had security uploads in 2024 and 2025). A period that ended earlier keeps
    the relevance order: its closest entries may lie on either side of it."""
    dates = ctx.analysis.dates
    if ctx.use_dates or dates is None or not (ctx.use_packages and ctx.analysis.packages):
        return False
    return dates.ts_to is None or dates.ts_to > day_ts(ctx.as_of)


def _request(ctx: StepContext, *, graph_depth: int | None = None) -> RetrievalRequest:
    """The retrieval request of this execution: the plan's arguments (else the domain's
    limits), the replan's filters. Each package's newest entries are kept among the
    documents (``retrieval.latest_per_package``) when the question only names packages,
    asks for the newest (:func:`~knowledge_os.domains.relevance.asks_newest`), or when
    :func:`closest_are_newest`."""
    r = ctx.spec.retrieval
    depth = ctx.graph_depth if ctx.graph_depth is not None else r.graph_depth
    return RetrievalRequest(
        analysis=ctx.analysis,
        domain=ctx.spec.name,
        top_k=ctx.top_k if ctx.top_k is not None else r.top_k,
        max_documents=r.max_documents,
        graph_depth=depth if graph_depth is None else graph_depth,
        use_dates=ctx.use_dates,
        use_packages=ctx.use_packages,
        # a package's newest entries answer "what changed in X?", not "which X upload did Y?"
        latest_per_package=r.latest_per_package
        if names_only(ctx.analysis.text, ctx.analysis.packages, ctx.analysis.package_names)
        or asks_newest(ctx.analysis.text) or closest_are_newest(ctx) else 0,
    )


def retrieve(ctx: StepContext) -> None:
    result = ctx.retrieval.retrieve(_request(ctx))
    for k, v in result.timings_ms.items():
        ctx.timings_ms[f"retrieve.{k}"] = v
    ctx.documents = [doc_to_state(d.document, d.score, d.sources) for d in result.documents]


def expand(ctx: StepContext) -> None:
    """Add graph neighbours (shared CVEs, bugs, authors) of the top 3 documents, within
    the same package and date filters as ``retrieve`` (RetrievalService.expand)."""
    have = {d["id"] for d in ctx.documents}
    room = ctx.spec.retrieval.max_documents - len(have)
    if room <= 0 or not ctx.documents:
        return
    depth = ctx.graph_depth if ctx.graph_depth is not None else ctx.spec.retrieval.graph_depth
    req = _request(ctx, graph_depth=min(depth, 3))
    seeds = [f"doc:{d['id']}" for d in ctx.documents[:3]]
    for doc in ctx.retrieval.expand(req, seeds=seeds, limit=room, exclude=have):
        ctx.documents.append(doc_to_state(doc, 0.0, ("graph_expand",)))


def group(ctx: StepContext) -> None:
    """Exact id matches (a named CVE or bug) first; then by channel, the most relevant
    channel first and newest first inside it."""
    first_rank: dict[str, int] = {}
    for i, d in enumerate(ctx.documents):
        first_rank.setdefault(d["channel"], i)
    ctx.documents.sort(key=lambda d: ("exact" not in d["sources"], first_rank[d["channel"]], -d["ts"], d["id"]))


def stats(ctx: StepContext) -> None:
    """Trend statistics from the data (not the LLM); see :func:`compute_trend`.

    The documents become the example entries of the compared windows, then the retrieved
    ones that fall inside them: an answer about two windows cites entries from them.
    The package scope is kept on a broadening replan (a trend of other packages would
    answer another question); the statistics say when a window has no data.
    """
    from knowledge_os.domains.trend import compute_trend

    ctx.stats = compute_trend(ctx.docstore, ctx.spec, ctx.analysis, as_of=ctx.as_of,
                              asked_kinds=asked_kinds(ctx.analysis.text, kind_names(ctx)[:-1]))
    exact = [d for d in ctx.documents if "exact" in d["sources"]]  # entries naming the asked id
    have = {d["id"] for d in exact}
    examples = [doc_to_state(d, 1.0, ("stats",)) for d in ctx.docstore.get(ctx.stats["examples"])
                if d.id not in have]
    have.update(d["id"] for d in examples)
    lo = ctx.stats["previous"]["from"] if ctx.stats["previous"] else ctx.stats["window"]["from"]
    hi = ctx.stats["window"]["to"]
    inside = [d for d in ctx.documents if d["id"] not in have and d["date"]
              and (lo is None or d["date"] >= lo) and (hi is None or d["date"] <= hi)]
    ctx.documents = (exact + examples + inside)[: ctx.spec.retrieval.max_documents]


def select_listing(ctx: StepContext) -> list[dict[str, Any]]:
    """The documents an answer lists and cites, in ``[n]`` order.

    A question naming a CVE or bug lists the uploads that name it. The statistics style
    lists its first 5 documents (the trend step puts the compared windows' examples
    first). Otherwise the first ``LISTING_MAX`` documents that bear on the question
    (:func:`knowledge_os.domains.relevance.bearing`, a measured cut-off): retrieved
    context that shares nothing with the question is not cited; a question that names
    nothing but packages (:func:`~knowledge_os.domains.relevance.names_only`: "What
    changed in bc in 1997?") asks for all of theirs, so every retrieved entry of those
    packages bears (a name too short to be a term left it to the top score's ties). An
    entry of a kind of change the question asks for bears too ("Which security fixes did
    openssl get in 2025?" lists "Import 3.0.16 - CVE-2024-13176", which shares no word
    with it), if it is of a package the question names (or it names none). The
    entries of the kinds of change the question asks for come first, then those of a
    persona's interests (the same entries, reordered:
    :func:`knowledge_os.personas.registry.order_by_interests`); the statistics style
    keeps its order (its first entries are the compared windows' examples). A question
    asking for the newest entry of the packages it names ("What is the latest version of
    openssl?": :func:`~knowledge_os.domains.complete.newest_of_packages`) lists each
    package's newest entry alone.
    """
    exact = [d for d in ctx.documents if "exact" in d["sources"]]
    if exact and (ctx.analysis.cves or ctx.analysis.bugs):
        return _interests_first(ctx, exact[:LISTING_MAX])
    if ctx.spec.answer_style != "grouped":
        return ctx.documents[:5]
    packages = ctx.analysis.packages
    newest = newest_of_packages(ctx, ctx.documents)
    if newest:
        return [ctx.documents[n - 1] for n in newest]
    if packages and names_only(ctx.analysis.text, packages, ctx.analysis.package_names):
        theirs = [d for d in ctx.documents if d["channel"] in packages]
        if theirs:
            return _interests_first(ctx, _shared(theirs, packages))
    kept = {id(d) for d in bearing(ctx.documents, ctx.analysis.text)}
    kept.update(id(d) for d in _of_asked_kinds(ctx))
    return _interests_first(ctx, _shared([d for d in ctx.documents if id(d) in kept], packages))


def _shared(docs: list[dict[str, Any]], packages: Sequence[str]) -> list[dict[str, Any]]:
    """The first ``LISTING_MAX`` of ``docs``, at most an equal share of them (at least 1)
    from each of two or more named ``packages``, in their order: grouped by package, the
    first one's entries alone filled the listing ("What changed in curl and openssl?"
    listed ten curl entries and no openssl one)."""
    if len(packages) < 2:
        return docs[:LISTING_MAX]
    share = max(1, LISTING_MAX // len(packages))
    taken: dict[str, int] = {}
    out = []
    for d in docs:
        if d["channel"] in packages:
            if taken.get(d["channel"], 0) >= share:
                continue
            taken[d["channel"]] = taken.get(d["channel"], 0) + 1
        out.append(d)
    return out[:LISTING_MAX]


def _of_asked_kinds(ctx: StepContext) -> list[dict[str, Any]]:
    """The retrieved entries of the kinds of change the question asks for
    (:func:`~knowledge_os.domains.complete.asked_kinds`), of the packages it names when
    it names any; empty when it asks for no kind."""
    packages = ctx.analysis.packages
    docs = [ctx.documents[n - 1] for n in of_asked_kinds(ctx, ctx.documents)]
    return [d for d in docs if not packages or d["channel"] in packages]


def _interests_first(ctx: StepContext, listing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The listing with the kinds of change the question asks for first ("Which security
    fixes did curl get?": :func:`~knowledge_os.domains.complete.asked_kinds`), then the
    persona's interests; the same entries (neither: as is)."""
    interests = tuple(dict.fromkeys([*asked_kinds(ctx.analysis.text, kind_names(ctx)[:-1]), *ctx.persona_interests]))
    if not interests:
        return listing
    return order_by_interests(listing, interests, kind_patterns(ctx))


def summarise(ctx: StepContext) -> None:
    """Draft ``n_candidates`` answers: a summary over the listed documents (the LLM's,
    see :func:`draft_summary`) plus a listing built from the data, every entry cited as
    ``[n]``. When the LLM's reply is unusable, the call fails or is over budget, the
    summary is written from the data (the candidate is marked ``data_only``).

    Raises:
        BackendUnavailableError: the model's server cannot be reached (an outage is not
            answered around: the run fails, is dead-lettered and resumes from its
            checkpoint once the server is back).
    """
    listing = select_listing(ctx)
    nothing = not listing and ctx.stats is None  # no entry, no figure: nothing for a model to say
    complete = None if nothing else data_complete(ctx, listing)
    if complete is not None:
        ctx.events.append({"type": "llm_skipped", "where": "summarise", "why": complete[0]})
    for variant in range(ctx.n_candidates):
        summary = None
        reason = None if nothing or complete else "rejected"  # no usable reply unless one comes back
        try:
            if complete is not None:
                summary = complete[1]
            elif not nothing:
                summary = draft_summary(ctx, listing, variant)
        except BudgetExceededError as exc:
            ctx.events.append({"type": "budget_exceeded", "budget": exc.budget})
            ctx.note_usage({"budget_exceeded": 1})
            reason = "unavailable"
        except BackendUnavailableError:
            raise  # the model's server is down: the run fails, is dead-lettered, resumes later
        except BackendError as exc:  # a bad reply: the data speak instead
            logger.warning("summary LLM call failed: %s", exc)
            ctx.events.append({"type": "error", "where": "summarise", "error": str(exc)[:300]})
            reason = "unavailable"
        if summary:
            reason = None
        else:
            summary = fallback_summary(ctx, listing)
            if reason is not None:
                ctx.fallback_used = True
                ctx.events.append({"type": "fallback_used", "where": "summarise"})
        ctx.candidates.append(
            {
                "answer": compose_answer(ctx, summary, listing, notice=reason),
                "summary": summary,
                "citations": [d["id"] for d in listing],
                "variant": variant,
                "data_only": reason is not None,
                "mode": answer_mode(ctx) if reason is None and not nothing and not complete else "data",
            }
        )


_VARIANT_HINTS = (
    "",
    " Lead with the most important change (security fixes first).",
)
_ANSWER_IN = {"en": "Answer in English.", "ru": "Отвечай на русском языке."}
# The fixed instruction comes first and the question last: llama.cpp evaluates only the
# prompt past the prefix shared with its previous call, so the system prompt and the
# instruction are evaluated once per process and domain (benchmarks/bench_run.py
# --ab prompt_order).
_CHOOSE = (
    "Choose the entries that answer the question, most important first, by their number.\n"
    "Entries:\n{context}\n\nQuestion: {query}"
)
_CHOOSE_STATS = (
    "Choose up to three kinds of change from the figures that answer the question, from this list: {kinds}.\n"
    "Uploads with each kind of change {compared}:\n{stats}\n\nQuestion: {query}"
)
_FIX_HINT = "\nA previous answer had these problems: {issues}. Choose again."


def choice_schema(ctx: StepContext, n_entries: int) -> dict[str, Any]:
    """The JSON schema of a structured reply: up to 4 entry numbers 1..``n_entries``
    (grouped style), or up to 3 kinds of change from the domain's fixed list (stats)."""
    kinds = kind_names(ctx)
    if ctx.spec.answer_style == "stats":
        return {"type": "object", "additionalProperties": False, "required": ["kinds"],
                "properties": {"kinds": {"type": "array", "minItems": 1, "maxItems": 3,
                                         "items": {"type": "string", "enum": kinds[:-1] or kinds}}}}
    # No kind per entry: the kind is read from the entry's text whatever a model says
    # (compose.entry_kind), so asking for one only costs ~10 generated tokens a call.
    item = {"type": "object", "additionalProperties": False, "required": ["n"],
            "properties": {"n": {"type": "integer", "enum": list(range(1, n_entries + 1))}}}
    return {"type": "object", "additionalProperties": False, "required": ["entries"],
            "properties": {"entries": {"type": "array", "minItems": 1, "maxItems": min(4, n_entries),
                                       "items": item}}}


def render_context(listing: list[dict[str, Any]], *, chars: int = PROMPT_DOC_CHARS) -> str:
    """Numbered entries for a prompt: ``[n] title (date): body excerpt`` (``chars`` of body)."""
    lines = []
    for n, d in enumerate(listing[:PROMPT_DOCS], start=1):
        body = " ".join(d["text"].split("\n", 1)[-1].split())
        body = re.sub(r"^\*\s*", "", body)[:chars]
        lines.append(f"[{n}] {d['title']} ({d['date']}): {body}")
    return "\n".join(lines)


# Lines of a changelog entry that say who uploaded it, not what changed, and URLs (~1 token
# per 3 characters): left out of the choice's excerpts so the characters go to changes.
_NOT_A_CHANGE = re.compile(
    r"^\s*(?:\[ [^\]\n]+ \]|\*\s*(?:Team upload|Non-maintainer upload|Upload to unstable)\b[^\n]*)\s*$",
    re.MULTILINE | re.IGNORECASE)
_URL = re.compile(r"\(?<?https?://\S+")


def choice_excerpt(text: str, *, chars: int = CHOOSE_DOC_CHARS) -> str:
    """The first ``chars`` characters of an entry's changes, on one line: the header line,
    the uploader lines (``[ Name ]``, "Team upload.", "Non-maintainer upload.", "Upload
    to unstable.") and URLs left out, whitespace collapsed."""
    body = _URL.sub("", _NOT_A_CHANGE.sub("", text.split("\n", 1)[-1]))
    return re.sub(r"^\*\s*", "", " ".join(body.split()))[:chars]


def choose_context(listing: list[dict[str, Any]], *, chars: int = CHOOSE_DOC_CHARS) -> str:
    """Numbered entries for the structured choice, compact: ``[n] package version: excerpt``
    (:func:`choice_excerpt`). The title's distribution and urgency and the date are left
    out (~20 tokens an entry: a date is 11 tokens to SmolLM2's tokenizer): the answer
    renders each chosen entry's date from the data, and the listing is already the
    asked period's, newest first."""
    lines = []
    for n, d in enumerate(listing[:PROMPT_DOCS], start=1):
        md = d.get("metadata") or {}
        head = f"{d['channel']} {md['version']}" if md.get("version") else d["title"]
        lines.append(f"[{n}] {head}: {choice_excerpt(d['text'], chars=chars)}")
    return "\n".join(lines)


_COMPARED = ("in the asked period against the period before", "in the asked period")


def choose_figures(ctx: StepContext) -> tuple[str, str]:
    """``(rows, compared)`` for the statistics choice: one English line per kind of change,
    ``kind: current vs previous``, from the computed figures, and which windows they count
    (a fixed phrase). The model only picks kinds (the answer's sentences, dates included,
    are rendered from the figures), so it is shown only what bears on that choice, in the
    language its tokenizer is cheapest in: a Russian figures table costs ~3x the tokens,
    the two windows' dates ~45 (benchmarks/bench_run.py)."""
    s = ctx.stats or {}
    rows = s.get("kinds") or []
    lines = [f"- {r['kind']}: {r['current']}" + (f" vs {r['previous']}" if r.get("previous") is not None else "")
             for r in rows if isinstance(r, dict) and "kind" in r]
    return "\n".join(lines), _COMPARED[0 if s.get("previous") else 1]


def prompt_fields(ctx: StepContext, listing: list[dict[str, Any]], *, issues: str = "",
                  draft: str = "", chars: int = PROMPT_DOC_CHARS) -> dict[str, Any]:
    """The ``str.format`` fields of a domain's prompts (see :class:`PromptSpec`)."""
    dates: DateRange | None = ctx.analysis.dates if ctx.use_dates else None
    lang = getattr(ctx.analysis, "lang", "en") or "en"
    return {
        "query": ctx.analysis.text,
        "context": render_context(listing, chars=chars) or "(no entries)",
        "stats": (ctx.stats or {}).get("table", ""),
        "persona": ctx.persona or "a developer",
        "today": ctx.as_of.isoformat(),
        "period": dates.describe() if dates else "any time",
        "issues": issues,
        "draft": draft,
        "n": min(len(listing), PROMPT_DOCS),
        "language": {"en": "English", "ru": "Russian"}.get(lang, "English"),
        "kinds": ", ".join(kind_names(ctx)),
    }


def draft_summary(ctx: StepContext, listing: list[dict[str, Any]], variant: int, *,
                  issues: str = "", draft: str = "") -> str | None:
    """One LLM-made summary in the run's answer mode, or None when there is nothing to
    summarise or the reply is empty or unusable.

    ``prose``: the domain's ``summarise`` prompt (``correct`` when ``issues`` are given),
    asked for the question's language. ``structured``: the LLM's output is constrained by
    :func:`choice_schema` and the framework renders it (:func:`compose.render_choice`).

    Raises:
        BudgetExceededError, BackendError: from :func:`call_llm`.
    """
    listing = listing[:PROMPT_DOCS]
    if not listing and ctx.stats is None:
        return None
    p = ctx.spec.prompts
    structured = answer_mode(ctx) == "structured"
    fields = prompt_fields(ctx, listing, issues=issues, draft=draft,
                           chars=CHOOSE_DOC_CHARS if structured else PROMPT_DOC_CHARS)
    lang = getattr(ctx.analysis, "lang", "en") or "en"
    system = p.system.format(**fields)
    if ctx.persona_summary:  # the persona's summary (seed 002 section 9: 100-200 tokens)
        system = f"{system}\n\n{ctx.persona_summary}"
    if structured:
        if ctx.spec.answer_style != "stats" and not listing:
            return None
        if ctx.spec.answer_style == "stats":
            rows, compared = choose_figures(ctx)
            user = _CHOOSE_STATS.format(**{**fields, "stats": rows or fields["stats"]}, compared=compared)
        else:
            user = _CHOOSE.format(**{**fields, "context": choose_context(listing, chars=CHOOSE_DOC_CHARS)})
        user += _FIX_HINT.format(issues=issues) if issues else ""
        user += _VARIANT_HINTS[variant % len(_VARIANT_HINTS)]
    else:
        template = p.correct if issues else p.summarise
        user = template.format(**fields) + _VARIANT_HINTS[variant % len(_VARIANT_HINTS)]
        user += " " + _ANSWER_IN.get(lang, _ANSWER_IN["en"])
    reply = call_llm(
        ctx.chat_model,
        [SystemMessage(system), HumanMessage(user)],
        usage=ctx.usage,
        budget=ctx.budget,
        json_schema=choice_schema(ctx, len(listing)) if structured else None,
        max_tokens=120 if structured else 160,
        tags=(SYNTHESIS_TAG,),  # its tokens are streamed (KnowledgeOS.astream(tokens=True))
        metadata={"kos_call": "correct" if issues else "summarise", "kos_variant": variant,
                  "kos_answer_mode": "structured" if structured else "prose"},
    )
    ctx.note_usage(reply.usage())
    ctx.timings_ms[f"llm.{'correct' if issues else 'summarise'}.{variant}"] = reply.latency_ms
    text = reply.text.strip()
    if not structured:
        return text or None
    choice = parse_json_reply(text)
    return render_choice(ctx, listing, choice) if choice else None


STEPS: dict[str, Callable[[StepContext], None]] = {
    "retrieve": retrieve,
    "expand": expand,
    "group": group,
    "stats": stats,
    "summarise": summarise,
}
