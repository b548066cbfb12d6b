"""Conditional edges. Each returns the name of the next node.

The gate after ``rank`` is :func:`gate`, a pure function of what the state says;
:func:`route_after_rank` only looks those values up.

The edge functions are ``async`` although they never wait: LangGraph runs a plain
function of an async run in a worker thread, a hand-off per edge that costs more than the
lookup itself (``benchmarks/bench_overhead.py``).
"""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime

from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import budget_for, services_of

__all__ = ["CORRECT_STEPS", "REPLAN_NODE_STEPS", "gate", "route_after_cache_lookup", "route_after_rank"]

CORRECT_STEPS = 3
"""Steps a correction costs: the nodes ``correct`` -> ``verify`` -> ``rank`` count one
each (``knowledge_os.nodes._common.timed``; the loop in ``graph/builder.py``)."""

REPLAN_NODE_STEPS = 4
"""Steps a replan costs in nodes: ``plan`` -> ``execute`` -> ``verify`` -> ``rank``, one
each. ``execute`` also counts one step per plan step it runs, so a replan costs
``REPLAN_NODE_STEPS + len(plan steps)`` (8 for a 4-step Smart plan, 7 for a 3-step Fast
plan; measured in tests/unit/test_gate.py)."""

Gate = Literal["cache_store", "correct", "plan", "finalize"]


async def route_after_cache_lookup(state: State) -> Literal["route", "finalize"]:
    """A cache hit skips retrieval and the LLM entirely."""
    return "finalize" if (state.get("cache") or {}).get("hit") else "route"


def gate(*, loops: bool, passed: bool, documents_found: bool, corrected: bool, path: str,
         replans: int, max_replans: int, steps_left: int, plan_steps: int) -> Gate:
    """The decision after ``rank``.

    In order: with ``loops`` false the first draft is final (``finalize``); with nothing
    retrieved, replan to broaden retrieval (either path); a passing answer is kept
    (``cache_store``); otherwise correct once; then (Smart Path) replan; otherwise give up
    and finalize with the best answer so far. A correction needs :data:`CORRECT_STEPS`
    steps left and a replan ``REPLAN_NODE_STEPS + plan_steps``, and replans stop at
    ``max_replans``.

    Args:
        loops: ``Context.loops``; false means no correction and no replan.
        passed: ``quality.passed`` of the ranked answer.
        documents_found: The execution retrieved at least one document.
        corrected: The run already made its one correction.
        path: ``fast`` or ``smart``.
        replans: Replans made so far, >= 0.
        max_replans: The domain's ``plans.max_replans``, 0..3.
        steps_left: ``budget.max_steps`` minus the steps spent so far (may be < 0).
        plan_steps: Steps of the plan a replan would run (``len(plan.steps)``).

    Returns:
        The next node's name.
    """
    if not loops:
        return "finalize"
    can_replan = replans < max_replans and steps_left >= REPLAN_NODE_STEPS + plan_steps
    if not documents_found and can_replan:
        return "plan"  # nothing retrieved: broaden (drop the dates, then the packages)
    if passed:
        return "cache_store"
    if not corrected and steps_left >= CORRECT_STEPS:
        return "correct"
    if path == "smart" and can_replan:
        return "plan"
    return "finalize"


async def route_after_rank(state: State, runtime: Runtime[Context]) -> Gate:
    """The gate after ``rank``: :func:`gate` of the run's state, budget and context."""
    if runtime is not None and runtime.context is not None and not runtime.context.loops:
        return "finalize"
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    budget = budget_for(services, spec, state)
    return gate(
        loops=True,
        passed=state["quality"]["passed"],
        documents_found=bool(state.get("documents")),
        corrected=bool(state.get("corrected")),
        path=state["path"],
        replans=state.get("replans", 0),
        max_replans=spec.plans.max_replans,
        steps_left=budget.max_steps - (state.get("usage") or {}).get("steps", 0),
        plan_steps=len((state.get("plan") or {}).get("steps") or []),
    )
