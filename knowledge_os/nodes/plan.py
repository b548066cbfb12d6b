"""Node ``plan``: the planning agent.

Smart Path: the LLM makes a plan for the query, constrained by a JSON schema built from
the domain YAML's allowed steps and argument ranges
(:func:`knowledge_os.domains.planning.plan_schema`) and validated against the YAML; a
rejected plan, a failed call or a budget too small for the call gives the YAML's plan,
with the reason recorded. Fast Path: a micro-plan of at most 3 steps from a heuristic
(:func:`~knowledge_os.domains.planning.fast_plan`, no LLM call).

On a replan (the check after ``execute`` or the gate after ``rank`` sent the run back)
the new plan differs from the failed one in its steps or arguments
(:func:`~knowledge_os.domains.planning.repair_plan`); the filters widen only once those
are at their limits (:func:`replan_scope` decides that order for the gate's quality
replan when nothing else is left).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from knowledge_os.domains.planning import (
    MadePlan,
    fast_plan,
    plan_messages,
    plan_schema,
    repair_plan,
    validate_plan,
    yaml_plan,
)
from knowledge_os.errors import BackendError, BudgetExceededError
from knowledge_os.graph.state import Context, Plan, ReplanScope, State, usage_so_far
from knowledge_os.llm.calls import call_llm, parse_json_reply
from knowledge_os.nodes._common import analysis_from_state, budget_for, services_of, timed

__all__ = ["AS_ASKED", "PLAN_MAX_TOKENS", "plan", "plan_scope", "replan_scope"]

logger = logging.getLogger(__name__)

AS_ASKED = ReplanScope(use_dates=True, use_packages=True)
"""The first plan's scope: every filter the question names. Copy it, do not mutate it."""

JUDGE_CALLS = 2
"""LLM calls of the rank judge (``knowledge_os.nodes.rank.JUDGE_CALLS``, both orders; a
test pins the two equal): the plan call is made only if the drafts and the judge still fit."""

PLAN_MAX_TOKENS = 48
"""Completion cap of the plan call: ``{"steps": [4 names], "top_k": 40, "graph_depth": 2}``
is 30-35 tokens in SmolLM2's vocabulary."""


def replan_scope(previous: ReplanScope, *, has_dates: bool) -> ReplanScope:
    """The scope of the next plan: drop the date range, then also the package filter.

    Args:
        previous: The scope of the plan that failed its check.
        has_dates: The question names a date range (with none there is nothing to drop
            first, so the package filter goes at once).

    Returns:
        A new scope; once both filters are dropped it stays without both.
    """
    if previous["use_dates"] and has_dates:
        return ReplanScope(use_dates=False, use_packages=previous["use_packages"])
    return ReplanScope(use_dates=False, use_packages=False)


def _llm_plan(state: State, runtime: Runtime[Context]) -> tuple[MadePlan, dict[str, Any], list[dict[str, Any]]]:
    """The Smart Path's first plan: the LLM's (validated) or the YAML's; with its usage
    and events. The call is made only when the run's budget still has the calls its
    drafts and the judge need after it (2 drafts on the Smart Path, :data:`JUDGE_CALLS`)."""
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    budget = budget_for(services, spec, state)
    usage = usage_so_far(state)
    drafts = min(2, services.settings.max_rank_candidates)
    later = drafts + (JUDGE_CALLS if drafts == 2 and services.settings.rank.judge else 0)
    if usage.get("llm_calls", 0) + 1 + later > budget.max_llm_calls:
        why = (f"no LLM plan: {budget.max_llm_calls} LLM calls allowed, the {drafts} drafts and the judge "
               f"need {later} after it")
        return yaml_plan(spec, "smart", why), {}, []
    persona = (state.get("persona") or {}).get("reader")
    system, user = plan_messages(spec, analysis_from_state(state), persona)
    try:
        reply = call_llm(services.chat_model, [SystemMessage(system), HumanMessage(user)], usage=usage,
                         budget=budget, json_schema=plan_schema(spec), max_tokens=PLAN_MAX_TOKENS,
                         timeout_s=services.settings.llm.timeout_s)
    except (BackendError, BudgetExceededError) as exc:
        logger.info("plan LLM call failed (%s); using the domain's plan", exc)
        return (yaml_plan(spec, "smart", f"no LLM plan: {type(exc).__name__}: {str(exc)[:160]}"), {},
                [{"type": "fallback_used", "where": "plan", "error": str(exc)[:200]}])
    made, problem = validate_plan(parse_json_reply(reply.text), spec)
    events = [{"type": "plan_rejected", "reason": problem}] if problem else []
    return made, {**reply.usage(), "timings_ms": {"llm.plan": reply.latency_ms}}, events


def _record(made: MadePlan, *, attempt: int, scope: ReplanScope) -> dict[str, Any]:
    return {"steps": list(made.steps), "attempt": attempt, "scope": scope, "reason": made.why,
            "source": made.source, "args": made.args()}


@timed("plan")
async def plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Plan the next execution. Runs on the event loop; only the Smart Path's LLM plan
    goes to a worker thread (the heuristics and replans are pure functions)."""
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    previous = state.get("plan") or {}
    if not previous:  # the run's first plan
        if state["path"] == "smart":
            made, usage, events = await asyncio.to_thread(_llm_plan, state, runtime)
        else:
            made, usage, events = fast_plan(spec, analysis_from_state(state)), {}, []
        timings = usage.pop("timings_ms", {})
        return {"plan": _record(made, attempt=0, scope=ReplanScope(**AS_ASKED)), "usage": usage,
                "timings_ms": timings, "events": events}
    scope = previous.get("scope") or AS_ASKED
    has_dates = bool(state["analysis"].get("dates"))
    check = previous.get("check") or {}
    if check and not check.get("passed", True):
        failures = list(check.get("failures") or [])
    elif not state.get("documents"):  # the gate: nothing retrieved
        failures = ["too_few: 0 documents"]
    else:  # the gate after rank: the ranked answer failed its checklist
        q = state.get("quality") or {}
        failures = [f"quality: {q.get('score')} below the threshold: {'; '.join(q.get('issues', []))[:200]}"]
    args = previous.get("args") or yaml_plan(spec, state["path"], "").args()
    repaired = repair_plan(spec, previous.get("steps") or [], args, failures, use_dates=scope["use_dates"],
                           use_packages=scope["use_packages"], has_dates=has_dates)
    if repaired is None:  # nothing left to widen: run the same plan without both filters
        base = yaml_plan(spec, state["path"], f"replan with nothing left to change ({'; '.join(failures)[:200]})")
        made, new_scope = base, replan_scope(scope, has_dates=has_dates)
    else:
        made, new_scope = repaired
    new_plan = _record(made, attempt=previous.get("attempt", 0) + 1, scope=ReplanScope(**new_scope))
    new_plan["earlier"] = [*previous.get("earlier", []),
                           {k: previous[k] for k in ("steps", "args", "scope", "source", "reason", "check", "done")
                            if k in previous}]
    return {"plan": new_plan, "replans": state.get("replans", 0) + 1,
            "events": [{"type": "retry", "where": "plan", "scope": dict(new_scope), "why": made.why[:200]}]}


def plan_scope(state: State) -> ReplanScope:
    """The scope of the state's current plan (:data:`AS_ASKED` before any plan)."""
    return (state.get("plan") or {}).get("scope") or AS_ASKED


def executed_steps(plan: Plan | dict[str, Any] | None) -> int:
    """Plan steps a run executed: the current plan's ``done`` plus those of the plans it
    replaced (``earlier``), 0 without a plan (an answer-cache hit).

    This is the seed's ``agent_steps_per_request`` (seed 002: "P95 agent steps <= 4"; a
    Fast Path micro-plan has up to 3 steps), observed as ``kos_agent_steps_per_request``
    and gated as the eval's ``kpi.steps_p95``. It is not the step budget's count
    (``usage["steps"]``, every graph node run: ``kpi.node_steps_p95``).
    """
    if not plan:
        return 0
    return len(plan.get("done") or []) + sum(len(e.get("done") or []) for e in plan.get("earlier") or [])
