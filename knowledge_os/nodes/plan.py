"""Node ``plan``: the planning agent.

Fast Path: the domain's micro-plan (at most 3 steps). Smart Path: the domain's full plan;
on a replan (the gate sent the run back after a failed check) the plan broadens what
retrieval may return: first it drops the date range, then the package filter
(:func:`replan_scope`, the one place that decides the scope).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.graph.state import Context, ReplanScope, State
from knowledge_os.nodes._common import services_of, timed

__all__ = ["AS_ASKED", "plan", "plan_scope", "replan_scope"]

AS_ASKED = ReplanScope(use_dates=True, use_packages=True)
"""The first plan's scope: every filter the question names. Copy it, do not mutate it."""


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


@timed("plan")
async def plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    previous = state.get("plan") or {}
    replanning = bool(previous) and bool(state.get("candidates"))
    steps = list(spec.plans.smart if state["path"] == "smart" else spec.plans.fast)
    if not replanning:
        return {"plan": {"steps": steps, "attempt": 0, "scope": ReplanScope(**AS_ASKED), "reason": "initial"}}
    scope = replan_scope(previous.get("scope") or AS_ASKED, has_dates=bool(state["analysis"].get("dates")))
    issues = "; ".join(state.get("quality", {}).get("issues", []))[:300]
    reason = f"quality {state.get('quality', {}).get('score')} below threshold: {issues}"
    new_plan = {"steps": steps, "attempt": previous.get("attempt", 0) + 1, "scope": scope, "reason": reason}
    return {"plan": new_plan, "replans": state.get("replans", 0) + 1,
            "events": [{"type": "retry", "where": "plan", "scope": dict(scope)}]}


def plan_scope(state: State) -> ReplanScope:
    """The scope of the state's current plan (:data:`AS_ASKED` before any plan)."""
    return (state.get("plan") or {}).get("scope") or AS_ASKED
