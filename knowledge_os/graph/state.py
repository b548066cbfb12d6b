"""State, input/output schemas and the per-run context of the Knowledge OS graph.

The input schema is narrower than the state: a caller gives ``query``; everything else is
written by nodes. Fields without a reducer are replaced by each update; ``usage`` and
``timings_ms`` are merged; ``events`` and ``history`` are appended to. ``cache_lookup``
resets the per-run fields at the start of every run on a thread.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

from langgraph.types import Overwrite

from knowledge_os.llm.budget import merge_usage

if TYPE_CHECKING:
    from knowledge_os.services import Services

__all__ = ["RUN_DEFAULTS", "Context", "InputState", "OutputState", "State", "merge_timings", "run_reset"]


def merge_timings(left: dict[str, float] | None, right: dict[str, float] | None) -> dict[str, float]:
    """Reducer for ``timings_ms``: add per-key; ``{"reset": ...}`` clears first."""
    if right and "reset" in right:
        return {k: v for k, v in right.items() if k != "reset"}
    out = dict(left or {})
    for k, v in (right or {}).items():
        out[k] = round(out.get(k, 0.0) + v, 3)
    return out


class InputState(TypedDict):
    """What a caller gives: the question."""

    query: str


class OutputState(TypedDict, total=False):
    """What a run returns (see :class:`knowledge_os.api.RunResult`)."""

    run_id: str
    query: str
    domain: str
    route: dict[str, Any]
    path: str
    answer: str
    citations: list[dict[str, Any]]
    quality: dict[str, Any]
    usage: dict[str, int]
    manifest: dict[str, Any]
    history: list[dict[str, Any]]


class State(TypedDict, total=False):
    # -- input
    query: str
    """The question, as given."""
    # -- per run (reset by cache_lookup)
    run_id: str
    """UUID of this run (one thread holds many runs)."""
    started_at: float
    """Unix time the run started (s)."""
    use_cache: bool
    """Whether this run may read and write caches (Context.use_cache)."""
    scope: dict[str, Any]
    """What an answer depends on besides the query: prompt, models, persona, day and the
    corpus generation (the answer cache's scope, fixed at the start of the run)."""
    corpus: int
    """Corpus generation (bumped by each ingest that changed documents)."""
    execute_run_id: str
    """run_id of the run whose `execute` produced the current drafts; differs from
    run_id when they were replayed from the node cache."""
    execute_usage: dict[str, int]
    """Usage spent by that `execute` (subtracted again on a node-cache replay)."""
    execute_timings_ms: dict[str, float]
    """Sub-step timings of that `execute` (likewise subtracted on a replay)."""
    analysis: dict[str, Any]
    """Query analysis: cves, bugs, packages, dates (see retrieval.query.QueryAnalysis)."""
    cache: dict[str, Any]
    """Answer-cache outcome: {"hit": bool, "kind": "exact"|"near"|None, "key": str,
    "signature": str (QuestionSignature.key), "similarity": float on a hit}."""
    route: dict[str, Any]
    """Router decision: {"domain", "method", "confidence", "path", "qos", "scores"}."""
    domain: str
    """The domain that answers (route.domain)."""
    path: Literal["fast", "smart"]
    """Fast Path (micro-plan) or Smart Path (plan -> execute -> check -> replan)."""
    plan: dict[str, Any]
    """{"steps": [...], "attempt": int, "broaden": 0|1|2, "reason": str}."""
    documents: list[dict[str, Any]]
    """Retrieved documents of the latest execution (doc_to_state dicts)."""
    stats: dict[str, Any] | None
    """Trend statistics (trend-style domains) or None."""
    candidates: list[dict[str, Any]]
    """Drafts with their verification: {"answer", "summary", "citations", "quality"}."""
    best: int
    """Index of the ranked-best candidate."""
    answer: str
    """The chosen answer text."""
    citations: list[dict[str, Any]]
    """Documents the answer cites: {"id", "title", "score", "metadata"} in [n] order."""
    quality: dict[str, Any]
    """{"score": 0..1, "passed": bool, "issues": [str]} of the chosen answer."""
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
    # -- merged
    usage: Annotated[dict[str, int], merge_usage]
    """llm_calls, prompt_tokens, completion_tokens, steps, budget_exceeded (summed)."""
    timings_ms: Annotated[dict[str, float], merge_timings]
    """Wall time per node / sub-step in ms (summed)."""
    events: Annotated[list[dict[str, Any]], operator.add]
    """Episodic events raised during the run; finalize writes them to memory."""
    history: Annotated[list[dict[str, Any]], operator.add]
    """Thread history: one {"run_id", "query", "domain", "answer"} per finished run."""


RUN_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "execute_run_id": "",
    "execute_usage": {},
    "execute_timings_ms": {},
    "cache": {"hit": False, "kind": None},
    "route": {},
    "plan": {},
    "documents": [],
    "stats": None,
    "candidates": [],
    "answer": "",
    "citations": [],
    "quality": {},
    "corrected": False,
    "replans": 0,
    "fallback_used": False,
    "error": None,
    "manifest": {},
    "events": [],
})
"""The value every per-run field starts a run with (a thread holds many runs). Fields
with a reducer are reset through LangGraph's ``Overwrite``; ``history`` is not per run."""

_REDUCED = frozenset({"events"})


def run_reset() -> dict[str, Any]:
    """A state update that starts a run: :data:`RUN_DEFAULTS`, fresh copies, with the
    reducer fields wrapped in ``Overwrite`` so the reducer does not merge the last run's
    values into them. ``cache_lookup`` (the first node) returns it."""
    out: dict[str, Any] = {}
    for name, value in RUN_DEFAULTS.items():
        fresh = type(value)(value) if isinstance(value, (dict, list)) else value
        out[name] = Overwrite(fresh) if name in _REDUCED else fresh
    return out


@dataclass(kw_only=True)
class Context:
    """Per-run values (LangGraph ``context_schema``).

    Attributes:
        domain: Force this domain (skips routing heuristics; method "forced").
        path: Force the Fast or Smart Path.
        persona: Who the answer is for; injected into synthesis prompts and cache keys.
        as_of: "Today" as an ISO date for relative dates ("since March"); default: today (UTC).
        use_cache: Read and write the answer cache.
        loops: Run the self-improvement loops (``correct``, replans, the data-only
            substitution of an ungrounded draft). False makes the first draft final,
            still verified and scored, for measuring what the loops add; such a run
            writes no answer cache.
        services: Stores and models; default: the process-wide ``get_services()``.
    """

    domain: str | None = None
    path: Literal["fast", "smart"] | None = None
    persona: str | None = None
    as_of: str | None = None
    use_cache: bool = True
    loops: bool = True
    services: Services | None = None
