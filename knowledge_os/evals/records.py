"""What the runner records per case: one :class:`CaseRecord` per line of ``results.jsonl``.

Metrics read only these records, so a report can be recomputed from a run folder.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["CaseRecord", "TraceStep"]


class TraceStep(TypedDict, total=False):
    node: str
    """Graph node name, in the order the nodes finished."""
    hit: bool
    """On ``cache_lookup``: whether the answer cache answered."""
    passed: bool
    """On ``rank``: whether the chosen draft passed the quality threshold."""


class CaseRecord(TypedDict, total=False):
    key: str
    """``<suite>/<case id>/<settings hash>``: the resume key."""
    suite: str
    id: str
    query: str
    lang: str
    tags: list[str]
    expected: dict[str, Any]
    """The case's ``expected`` object (see EVAL_CONTRACT: domain, doc_ids, ids, path, ...)."""
    error: str | None
    """``"<ExceptionType>: message"`` when the run raised; the other fields are then empty."""
    domain: str
    route_method: str
    """cache, heuristic, llm, fallback or forced."""
    route_confidence: float
    path: str
    """fast or smart."""
    answer: str
    cited: list[str]
    """Cited document ids in ``[n]`` order."""
    retrieved: list[str]
    """Retrieved document ids in rank order (manifest ``documents``)."""
    retrieved_sources: list[list[str]]
    """Per retrieved document, the retrievers that found it (exact, vector, lexical, graph)."""
    quality_score: float
    quality_passed: bool
    llm_calls: int
    tokens: int
    """Prompt plus completion tokens of the run."""
    steps: int
    """Graph nodes run, as the step budget counts them (``usage["steps"]``)."""
    agent_steps: int
    """Plan steps executed, over every plan of the run (``knowledge_os.nodes.plan.executed_steps``;
    the seed's agent steps, ``kos_agent_steps_per_request``); 0 in route-only suites."""
    latency_s: float
    """Wall-clock seconds of the call as the caller saw it."""
    cache_hit: bool
    fallback_used: bool
    corrected: bool
    """``correct`` ran in this run (the first draft failed its checks)."""
    data_only: bool
    """The summary was written from the data alone (RunResult.data_only)."""
    answer_mode: str
    """prose, structured or data (RunResult.answer_mode)."""
    trace: list[TraceStep]
    """Node path from ``KnowledgeOS.astream`` (empty in route-only suites)."""
    grounding: dict[str, Any] | None
    """``check_answer`` output: ``{"claims", "ungrounded", "grounded_rate"}``, or None."""
    pair_kind: str
    """Cache suites: ``trap`` or ``paraphrase``."""
    trap_type: str
    second_hit: bool
    """Cache suites: whether the pair's second query was served from the answer cache."""
    second_method: str
    elapsed_s: float
    """Wall-clock seconds of the whole case (``before`` queries and checks included)."""
    finished_at: str
    """ISO time the case finished (UTC)."""
