"""Conditional edges. Each returns the name of the next node."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime

from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import budget_for, services_of

__all__ = ["route_after_cache_lookup", "route_after_rank"]


def route_after_cache_lookup(state: State) -> Literal["route", "finalize"]:
    """A cache hit skips retrieval and the LLM entirely."""
    return "finalize" if (state.get("cache") or {}).get("hit") else "route"


def route_after_rank(
    state: State, runtime: Runtime[Context]
) -> Literal["cache_store", "correct", "plan", "finalize"]:
    """The gate: keep a passing answer; with nothing retrieved, replan once to broaden
    retrieval (either path); otherwise correct once, then (Smart Path) replan
    while the domain's ``max_replans`` and the step budget last; otherwise give up and
    finalize with the best answer so far (``quality.passed`` false). With
    ``Context.loops`` false the first draft is final: straight to finalize."""
    if runtime is not None and runtime.context is not None and not runtime.context.loops:
        return "finalize"
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    usage = state.get("usage") or {}
    budget = budget_for(services, spec, state)
    steps_left = budget.max_steps - usage.get("steps", 0)
    if not state.get("documents") and state.get("replans", 0) < spec.plans.max_replans and steps_left >= 5:
        return "plan"  # nothing retrieved: broaden once (drop the dates, then the packages)
    if state["quality"]["passed"]:
        return "cache_store"
    if not state.get("corrected") and steps_left >= 3:
        return "correct"
    if state["path"] == "smart" and state.get("replans", 0) < spec.plans.max_replans and steps_left >= 5:
        return "plan"
    return "finalize"
