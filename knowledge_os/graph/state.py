"""State, input/output schemas and the per-run context of the Knowledge OS graph.

The input schema is narrower than the state: a caller gives ``query``; everything else is
written by nodes. A thread holds many runs: ``cache_lookup`` (the first node) starts each
run from :data:`RUN_DEFAULTS` through :func:`run_reset`, which writes reducer fields with
LangGraph's ``Overwrite`` so the last run's values are not merged in.

Reducers: ``spend`` and ``events`` are appended to within a run (and start empty each
run); ``history`` is appended to across runs (``finalize`` keeps the newest
``storage.thread_history_max``). Every other field is replaced by each update.

Spend is bookkept as an append-only log (``spend``): one :class:`SpendEntry` per node
execution, tagged with the run id that paid for it. A node replayed from LangGraph's node
cache brings back the entry of the run that computed it, so :func:`run_usage` and
:func:`run_timings` (which count only this run's entries) leave it out without any
subtraction. ``usage`` and ``timings_ms`` are those totals, written once by the run's last
node (``finalize``); a node or edge mid-run reads :func:`usage_so_far`. Writing them after
every node cost two channel writes and two new channel versions per step
(``benchmarks/bench_overhead.py``).

The schemas are ``typing_extensions.TypedDict``: pydantic, which builds the JSON schemas
LangGraph Studio shows, rejects ``typing.TypedDict`` before Python 3.12.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Literal

from langgraph.types import Overwrite
from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import NotRequired, TypedDict

from knowledge_os.i18n import Lang
from knowledge_os.llm.budget import Usage
from knowledge_os.services import Services

__all__ = [
    "EVERY_STEP_CHANNELS",
    "REDUCED_FIELDS",
    "RUN_DEFAULTS",
    "CacheOutcome",
    "Candidate",
    "CandidateQuality",
    "Citation",
    "Context",
    "DateRangeState",
    "Document",
    "HistoryEntry",
    "InputState",
    "JudgeOrder",
    "Judgement",
    "OutputState",
    "PersonaState",
    "Plan",
    "PlanArgs",
    "PlanCheck",
    "ReplanScope",
    "Quality",
    "QueryAnalysisState",
    "RouteDecision",
    "SpendEntry",
    "State",
    "after_update",
    "replayed_spend",
    "run_reset",
    "run_timings",
    "run_totals",
    "run_usage",
    "usage_so_far",
]


# -- nested shapes -------------------------------------------------------------------------


class DateRangeState(TypedDict):
    """A half-open UTC range, as :class:`knowledge_os.retrieval.query.DateRange`."""

    ts_from: int | None
    """Start, Unix seconds (inclusive), or None for open."""
    ts_to: int | None
    """End, Unix seconds (exclusive), or None for open."""
    label: str
    """What the question said ("since March", "in 2020")."""


class QueryAnalysisState(TypedDict):
    """What the question names (``dataclasses.asdict`` of
    :class:`knowledge_os.retrieval.query.QueryAnalysis`)."""

    text: str
    """The query, stripped."""
    cves: list[str]
    """CVE ids, upper-case."""
    bugs: list[str]
    """Debian bug numbers."""
    packages: list[str]
    """Channels (source packages) named."""
    dates: DateRangeState | None
    """The date range named, or None."""
    lang: NotRequired[Lang]
    """The question's language; answers are written in it."""
    unknown_packages: NotRequired[list[str]]
    """Names in a package's place that no ingested channel has (the answer says so)."""
    follows: NotRequired[str]
    """A follow-up's previous question as read ("" for one that stands alone); ``text`` is
    then both questions (``knowledge_os.retrieval.query.follow_up``)."""


class CacheOutcome(TypedDict):
    """The answer-cache outcome of a run."""

    hit: bool
    """True when the answer came from the cache (no retrieval, no LLM)."""
    kind: Literal["exact", "near"] | None
    """Exact key match or near (embedding) match; None on a miss."""
    key: NotRequired[str]
    """The answer-cache key (absent when the cache is off for this run)."""
    signature: NotRequired[str]
    """What the question names, for near hits (``QuestionSignature.key``); absent on an
    exact hit (its key matched, so the signature is not computed) and when the cache is off."""
    similarity: NotRequired[float]
    """Cosine similarity of a hit's stored query, 0..1: 1.0 for an exact hit, except on an
    alias (a question a near hit served before, ``AnswerStore.get_near``): that near hit's."""
    source_run_id: NotRequired[str | None]
    """run_id of the run whose answer was reused."""


class RouteDecision(TypedDict):
    """The router's decision."""

    domain: str
    """The domain that answers."""
    method: Literal["forced", "cache", "heuristic", "llm", "fallback", "thread"]
    """How it was chosen (``cache``: the router's own decision cache; ``thread``: a
    follow-up keeps the domain of its thread's previous run)."""
    confidence: float
    """0..1: heuristic margin ``(top - second) / top``, or the LLM pick's share."""
    path: NotRequired[Literal["fast", "smart"]]
    """Fast or Smart Path."""
    qos: NotRequired[Literal["interactive", "standard", "thorough"] | None]
    """QoS level whose budgets bound the run (knowledge_os/qos.py)."""
    qos_method: NotRequired[Literal["router", "asked"]]
    """Who chose the level: the router, or the caller (``Context.qos``)."""
    qos_fallback: NotRequired[str]
    """Set when a Smart Path run fell back to the Fast Path to fit its level: why."""
    scores: NotRequired[dict[str, float]]
    """Heuristic score per domain (>= 0); empty when forced."""


class ReplanScope(TypedDict):
    """Which of the question's filters retrieval and checks use on this execution.

    Made in one place, ``knowledge_os.nodes.plan.replan_scope``: the first plan uses both;
    each replan drops the date range first, then the package filter as well.
    """

    use_dates: bool
    """Filter by the question's date range (false once a replan dropped it)."""
    use_packages: bool
    """Filter by the packages the question names (false once a replan dropped it too)."""


class PlanArgs(TypedDict):
    """The arguments a plan gives its retrieval steps (``knowledge_os.domains.planning``)."""

    top_k: int
    """Candidates taken from each ranked list (``RetrievalRequest.top_k``), within the
    domain's ``plans.args.top_k`` range."""
    graph_depth: int
    """Hops of graph expansion for ``retrieve`` and ``expand``, within ``plans.args.graph_depth``."""


class PlanCheck(TypedDict):
    """The check of an execution against its plan (node ``check``)."""

    passed: bool
    """Every expectation held (or none that failed can be repaired by a replan)."""
    failures: list[str]
    """One line per expectation that failed ("too_few: 1 document, expected >= 3")."""


class Plan(TypedDict):
    """The planning agent's plan for one execution."""

    steps: list[str]
    """Step names from the shared step library (``knowledge_os.domains.steps.STEPS``)."""
    attempt: int
    """0 for the first plan, +1 per replan."""
    scope: ReplanScope
    """The filters this execution uses (both on the first plan)."""
    reason: str
    """Why this plan: "initial", the reason a made plan was replaced by the YAML's, or the
    failed check that caused the replan."""
    source: NotRequired[Literal["llm", "heuristic", "yaml"]]
    """Who made it: the LLM (validated), a heuristic (Fast Path micro-plan, replans), or
    the domain YAML's plan as written."""
    args: NotRequired[PlanArgs]
    """The retrieval arguments of this plan."""
    check: NotRequired[PlanCheck]
    """Set by ``check`` after ``execute``."""
    earlier: NotRequired[list[dict[str, Any]]]
    """The plans this run replaced, oldest first: their ``steps``, ``args``, ``scope``,
    ``source``, ``reason`` and ``check`` (the manifest shows how the run got here)."""
    done: NotRequired[list[str]]
    """Steps ``execute`` ran (fewer than ``steps`` when a budget stopped it)."""


class PersonaState(TypedDict):
    """The request's persona as resolved (``knowledge_os.personas.registry.ResolvedPersona``)."""

    asked: str
    """What the caller gave (a profile name or free text)."""
    method: Literal["name", "embedding", "none"]
    """How it resolved: by name, free text by embedding, or no profile close enough."""
    name: str | None
    """The profile's name (None for ``none``)."""
    version: str | None
    """The profile's version, 12 hex chars of its content hash."""
    similarity: float | None
    """Cosine of the free text and the nearest profile (None by name)."""
    note: str
    """One line: how it was resolved."""
    reader: NotRequired[str | None]
    """What the prompts call the reader."""
    summary: NotRequired[str | None]
    """The summary added to the synthesis prompts (100..200 tokens)."""
    interests: NotRequired[list[str]]
    """Kinds of change listed first, most important first."""


class Document(TypedDict):
    """A retrieved document (``knowledge_os.domains.steps.doc_to_state``)."""

    id: str
    """Document id, e.g. ``deb:openssl:3.0.19-1~deb12u2``."""
    title: str
    """Title line."""
    channel: str
    """Channel (source package)."""
    ts: int
    """Unix seconds of the entry (0 when undated)."""
    date: str
    """ISO date of ``ts`` ("" when undated)."""
    score: float
    """Fused retrieval score (0.0 for graph-expanded documents)."""
    sources: list[str]
    """Which retrievers found it: exact, vector, lexical, graph, graph_expand; ``carried``:
    cited by the earlier draft a replan kept (``nodes/execute.py``)."""
    metadata: dict[str, Any]
    """Source metadata (package, version, distribution, urgency, ...)."""
    text: str
    """The body."""
    content_hash: str
    """Ingest de-duplication hash (``knowledge_os.cache.keys.content_hash``)."""


class Quality(TypedDict):
    """The verification of the chosen answer."""

    score: float
    """Weighted share of checklist items passed, 0..1."""
    passed: bool
    """score >= the quality threshold (settings or the domain YAML) and no blocking rule failed."""
    issues: list[str]
    """One line per failed rule or ungrounded claim."""
    grounded: NotRequired[bool]
    """Every claim of the summary shown is traced to the data."""
    data_only: NotRequired[bool]
    """The summary shown was written from the data alone."""
    mode: NotRequired[Literal["prose", "structured", "data"]]
    """How the summary was made (LLM prose, LLM-chosen structure, data only)."""
    rejected: NotRequired[list[str]]
    """Ungrounded claims of the draft that was replaced by the data-only answer."""


class CandidateQuality(Quality):
    """A draft's verification (``knowledge_os.nodes.verify.score_candidate``)."""

    checks: dict[str, bool]
    """Outcome per checklist item id."""
    ungrounded: NotRequired[list[str]]
    """The issues of the claim rule (``claims_grounded: ...``)."""


class Candidate(TypedDict):
    """A draft answer and (once ``verify`` ran) its verification."""

    answer: str
    """The full answer text (summary plus listing or figures)."""
    summary: str
    """The summary part (LLM-written or data-only)."""
    citations: list[str]
    """Document ids in ``[n]`` order."""
    variant: int
    """Prompt variant that drafted it (0, 1)."""
    quality: NotRequired[CandidateQuality]
    """Set by ``verify``."""
    corrected: NotRequired[bool]
    """Written by ``correct``."""
    data_only: NotRequired[bool]
    """The summary was written from the data alone, without the LLM."""
    mode: NotRequired[Literal["prose", "structured", "data"]]
    """How the summary was made."""
    carried: NotRequired[bool]
    """The best draft of an earlier execution, kept by a replan (``nodes/execute.py``)."""


class JudgeOrder(TypedDict):
    """One of the two calls of the pairwise judgement (``knowledge_os.nodes.rank``)."""

    a: int
    """Which of the pair was shown as answer A: 0 (the pair's first) or 1 (order swapped)."""
    verdict: Literal["A", "B", "tie"] | None
    """The judge's reply; None when it was unusable, failed or over budget (a tie)."""
    preferred: int | None
    """The preferred one of the pair (0 or 1), None for a tie or no verdict."""
    reason: str
    """The judge's reason (at most 160 characters), or why there is no verdict."""


class Judgement(TypedDict):
    """How one ``rank`` chose between the two best drafts (``knowledge_os.nodes.rank``)."""

    pair: list[int]
    """Indices into ``candidates`` of the two drafts compared, best by the rank key first."""
    asked: bool
    """The LLM judge was asked (both orders)."""
    orders: list[JudgeOrder]
    """The two calls (empty when not asked)."""
    agree: bool | None
    """Both orders preferred the same draft (None when not asked)."""
    winner: int
    """Index into ``candidates`` of the chosen draft."""
    decided_by: str
    """``judge``, ``grounding``, ``checklist``, ``key`` (the rank key alone), or after a
    tie ``tie: grounding`` / ``tie: score``."""
    why: str
    """One line: the judge's reason, why it was not asked, or how the tie was broken."""
    usage: NotRequired[Usage]
    """LLM calls and tokens the judgement spent (when asked)."""


class Citation(TypedDict):
    """A document the answer cites (the public :class:`knowledge_os.api.Citation`)."""

    n: NotRequired[int]
    """Its ``[n]`` marker in the answer."""
    id: str
    """Document id."""
    title: str
    """Title line."""
    score: float
    """Retrieval score."""
    metadata: dict[str, Any]
    """channel, date and the source metadata (package, version, ...)."""


class SpendEntry(TypedDict):
    """What one node execution spent."""

    run_id: str
    """The run that paid for it (another run's id: replayed from the node cache)."""
    node: str
    """Node name."""
    usage: Usage
    """LLM calls, tokens, steps, budget_exceeded of this node execution."""
    timings_ms: dict[str, float]
    """Wall time of the node (key: node name) and its sub-steps, ms."""


class HistoryEntry(TypedDict):
    """One finished run of a thread."""

    run_id: str
    query: str
    domain: str | None
    answer: str
    """The answer, first 2,000 characters."""
    read_as: NotRequired[str]
    """A follow-up's question as it was read (its analysis ``text``), the next follow-up's context."""


# -- graph schemas -------------------------------------------------------------------------


class InputState(TypedDict):
    """What a caller gives: the question."""

    query: str


class OutputState(TypedDict, total=False):
    """What a run returns (see :class:`knowledge_os.api.RunResult`)."""

    run_id: str
    query: str
    domain: str
    route: RouteDecision
    path: str
    answer: str
    citations: list[Citation]
    quality: Quality
    usage: Usage
    manifest: dict[str, Any]
    history: list[HistoryEntry]


class State(TypedDict, total=False):
    # -- input
    query: str
    """The question, as given."""
    # -- per run (reset by cache_lookup from RUN_DEFAULTS)
    run_id: str
    """UUID of this run (one thread holds many runs)."""
    started_at: float
    """Unix time the run started (s)."""
    use_cache: bool
    """Whether this run may read and write caches (Context.use_cache)."""
    scope: dict[str, Any]
    """What an answer depends on besides the query: prompt, models, persona, day and the
    corpus generation (the answer cache's scope, fixed at the start of the run;
    ``knowledge_os.nodes.cache_lookup.answer_cache_scope``)."""
    corpus: int
    """Corpus generation (bumped by each ingest that changed documents)."""
    persona: PersonaState | None
    """The request's persona as resolved by ``cache_lookup`` (None: none asked for)."""
    analysis: QueryAnalysisState
    """What the question names."""
    cache: CacheOutcome
    """Answer-cache outcome."""
    route: RouteDecision
    """Router decision."""
    domain: str
    """The domain that answers (route.domain)."""
    path: Literal["fast", "smart"]
    """Fast Path (micro-plan) or Smart Path (plan -> execute -> check -> replan)."""
    plan: Plan
    """The current plan."""
    documents: list[Document]
    """Retrieved documents of the latest execution."""
    stats: dict[str, Any] | None
    """Trend statistics (trend-style domains; ``knowledge_os.domains.trend``) or None."""
    candidates: list[Candidate]
    """Drafts with their verification."""
    best: int
    """Index of the ranked-best candidate."""
    judgements: list[Judgement]
    """One per ``rank`` of this run, oldest first (replaced whole by each ``rank``)."""
    answer: str
    """The chosen answer text."""
    citations: list[Citation]
    """Documents the answer cites, in [n] order."""
    quality: Quality
    """Verification of the chosen answer."""
    corrected: bool
    """True once `correct` has run in this run (it runs at most once)."""
    replans: int
    """Replans so far in this run."""
    fallback_used: bool
    """An LLM call failed or was over budget and data-only text was used."""
    error: str | None
    """Set when the run ended on an error."""
    manifest: dict[str, Any]
    """The unified manifest written by finalize (references only, <= 100 KB)."""
    usage: Usage
    """This run's totals (:func:`run_usage` of ``spend``), written by ``finalize``; {} until
    then (mid-run: :func:`usage_so_far`)."""
    timings_ms: dict[str, float]
    """This run's wall time per node / sub-step, ms (:func:`run_timings`), written by ``finalize``."""
    # -- appended (reducer: operator.add)
    spend: Annotated[list[SpendEntry], operator.add]
    """Append-only spend log of this run: one entry per node execution."""
    events: Annotated[list[dict[str, Any]], operator.add]
    """Episodic events raised during this run; finalize writes them to memory."""
    history: Annotated[list[HistoryEntry], operator.add]
    """Thread history across runs, oldest first; finalize bounds it."""


RUN_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "cache": {"hit": False, "kind": None},
    "route": {},
    "plan": {},
    "documents": [],
    "stats": None,
    "candidates": [],
    "best": 0,
    "judgements": [],
    "answer": "",
    "citations": [],
    "quality": {},
    "corrected": False,
    "replans": 0,
    "fallback_used": False,
    "error": None,
    "manifest": {},
    "usage": {},
    "timings_ms": {},
    "spend": [],
    "events": [],
})
"""The value every per-run field starts a run with. ``run_id``, ``started_at``,
``use_cache``, ``scope``, ``corpus``, ``persona`` and ``analysis`` are computed by ``cache_lookup``;
``history`` is not per run."""

_APPENDED = frozenset({"spend", "events"})

REDUCED_FIELDS = frozenset({"spend", "events", "history"})
"""Fields with a reducer (appended to by each update): the ``Annotated`` fields of :class:`State`."""

EVERY_STEP_CHANNELS = ("spend",)
"""Fields the node wrapper (``knowledge_os.nodes._common.timed``) writes after every node:
the SQLite checkpointer keeps them in each checkpoint row (a value stored apart is worth
it only when later checkpoints carry it unchanged)."""


def after_update(state: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The state as it will be once ``update`` is applied: replaced fields take the new
    value, reducer fields (:data:`REDUCED_FIELDS`) are appended to
    unless wrapped in ``Overwrite``. A shallow copy; ``state`` is not changed."""
    view = dict(state)
    for key, value in update.items():
        if isinstance(value, Overwrite):
            view[key] = value.value
        elif key in REDUCED_FIELDS:
            view[key] = [*(state.get(key) or []), *value]
        else:
            view[key] = value
    return view


def run_reset() -> dict[str, Any]:
    """A state update that starts a run: :data:`RUN_DEFAULTS` (fresh copies), with the
    appended fields wrapped in ``Overwrite`` so their reducer does not keep the last run's
    entries. ``cache_lookup`` returns it, plus the values it computes."""
    out: dict[str, Any] = {}
    for name, value in RUN_DEFAULTS.items():
        fresh = type(value)(value) if isinstance(value, (dict, list)) else value
        out[name] = Overwrite(fresh) if name in _APPENDED else fresh
    return out


def usage_so_far(state: Mapping[str, Any]) -> dict[str, int]:
    """What the current run has spent so far (LLM calls, tokens, steps): :func:`run_usage`
    of the state's spend log for its ``run_id``; {} before the run's first node."""
    return run_usage(state.get("spend") or [], state.get("run_id", ""))


def run_usage(spend: list[SpendEntry], run_id: str) -> dict[str, int]:
    """Usage paid by ``run_id``: the sum of its entries in the spend log (entries replayed
    from the node cache carry another run's id and are not counted)."""
    usage: dict[str, int] = {}
    for e in spend:
        if e["run_id"] == run_id:
            for k, n in e["usage"].items():
                usage[k] = usage.get(k, 0) + n
    return usage


def run_timings(spend: list[SpendEntry], run_id: str) -> dict[str, float]:
    """Wall time per node / sub-step paid by ``run_id``, ms (summed, 3 decimals)."""
    timings: dict[str, float] = {}
    for e in spend:
        if e["run_id"] == run_id:
            for k, v in e["timings_ms"].items():
                timings[k] = round(timings.get(k, 0.0) + v, 3)
    return timings


def run_totals(spend: list[SpendEntry], run_id: str) -> tuple[dict[str, int], dict[str, float]]:
    """:func:`run_usage` and :func:`run_timings` together (``finalize`` writes both)."""
    return run_usage(spend, run_id), run_timings(spend, run_id)


def replayed_spend(spend: list[SpendEntry], run_id: str) -> list[SpendEntry]:
    """Entries of other runs: nodes replayed from LangGraph's node cache in this run."""
    return [e for e in spend if e["run_id"] != run_id]


@dataclass(kw_only=True)
class Context:
    """Per-run values (LangGraph ``context_schema``).

    Attributes:
        domain: Force this domain (skips routing heuristics; method "forced").
        path: Force the Fast or Smart Path.
        persona: Who the answer is for: a persona profile's name or free text matched to
            the nearest profile (``knowledge_os.personas``); its summary goes into the
            synthesis prompts, its interests order the listing, its name and version
            into the manifest and the answer-cache scope.
        as_of: "Today" as an ISO date for relative dates ("since March"); default: today (UTC).
        use_cache: Read and write the answer cache.
        qos: QoS level asked for (interactive, standard, thorough); None: the router picks.
        loops: Run the self-improvement loops (``correct``, replans, the data-only
            substitution of an ungrounded draft). False makes the first draft final,
            still verified and scored, for measuring what the loops add; such a run
            writes no answer cache.
        services: Stores and models (``KnowledgeOS`` passes its own); None: the
            process-wide :func:`knowledge_os.services.get_services` (``langgraph dev``).
            Not part of the JSON schema: Studio cannot send one.
    """

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    domain: str | None = None
    path: Literal["fast", "smart"] | None = None
    persona: str | None = None
    as_of: str | None = None
    use_cache: bool = True
    loops: bool = True
    qos: Literal["interactive", "standard", "thorough"] | None = None
    services: SkipJsonSchema[Services | None] = field(default=None, repr=False)
