"""Node ``plan``: the planning agent.

Fast Path: the domain's micro-plan (at most 3 steps). Smart Path: the domain's full plan;
on a replan (the gate sent the run back after a failed check) the plan broadens what
retrieval may return: first it drops the date range, then the package filter.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import services_of, timed

__all__ = ["plan"]


@timed("plan")
async def plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    previous = state.get("plan") or {}
    replanning = bool(previous) and bool(state.get("candidates"))
    steps = list(spec.plans.smart if state["path"] == "smart" else spec.plans.fast)
    if not replanning:
        return {"plan": {"steps": steps, "attempt": 0, "broaden": 0, "reason": "initial"}}
    a = state["analysis"]
    broaden = previous.get("broaden", 0) + 1
    if broaden == 1 and not a.get("dates"):
        broaden = 2  # nothing to drop at level 1
    issues = "; ".join(state.get("quality", {}).get("issues", []))[:300]
    reason = f"quality {state.get('quality', {}).get('score')} below threshold: {issues}"
    new_plan = {"steps": steps, "attempt": previous.get("attempt", 0) + 1,
                "broaden": min(broaden, 2), "reason": reason}
    return {"plan": new_plan, "replans": state.get("replans", 0) + 1,
            "events": [{"type": "retry", "where": "plan", "broaden": new_plan["broaden"]}]}
