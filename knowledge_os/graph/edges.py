"""The choices of the next node (edges). Each returns the name of the next node.

The gate after ``rank`` is :func:`gate` and the one after ``check`` is
:func:`check_gate`, pure functions of what the state says; :func:`route_after_rank` and
:func:`route_after_check` only look those values up.

The edge functions are ``async`` although they never wait: LangGraph runs a plain
function of an async run in a worker thread, a hand-off per edge that costs more than the
lookup itself (``benchmarks/bench_overhead.py``).

They are not LangGraph conditional edges: :func:`routed` runs one right after its node and
returns LangGraph's ``Command(update=..., goto=...)``, the node's destinations declared
(``graph/builder.py``), so Studio draws the same graph. A conditional edge reads a fresh
copy of every channel (LangGraph's ``local_read`` copies all ~45 of ours to apply the
node's writes); on our state that cost 0.8 ms of CPU per run for the three edges
(``benchmarks/bench_overhead.py``'s bare nodes on our state, 150 interleaved runs).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, get_args, get_type_hints

from langgraph.runtime import Runtime
from langgraph.types import Command

from knowledge_os.domains.planning import repair_plan, yaml_plan
from knowledge_os.graph.state import Context, State, after_update, usage_so_far
from knowledge_os.nodes._common import budget_for, services_of

__all__ = [
    "AFTER_CHECK_STEPS",
    "CHECK_REPLAN_NODE_STEPS",
    "CORRECT_STEPS",
    "REPLAN_NODE_STEPS",
    "check_gate",
    "destinations",
    "gate",
    "routed",
    "route_after_cache_lookup",
    "route_after_check",
    "route_after_rank",
]

CORRECT_STEPS = 3
"""Steps a correction costs: the nodes ``correct`` -> ``verify`` -> ``rank`` count one
each (``knowledge_os.nodes._common.timed``; the loop in ``graph/builder.py``)."""

REPLAN_NODE_STEPS = 5
"""Steps a replan from the gate after ``rank`` costs in nodes: ``plan`` -> ``execute`` ->
``check`` -> ``verify`` -> ``rank``, one each. ``execute`` also counts one step per plan
step it runs, so such a replan costs ``REPLAN_NODE_STEPS + len(plan steps)`` (9 for a
4-step Smart plan, 8 for a 3-step Fast plan; measured in tests/unit/test_gate.py)."""

CHECK_REPLAN_NODE_STEPS = 3
"""Steps a replan from the check costs in nodes: ``plan`` -> ``execute`` -> ``check``,
plus one per plan step."""

AFTER_CHECK_STEPS = 2
"""Steps reserved after a check-driven replan: ``verify`` and ``rank`` must still run."""

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


def check_gate(*, loops: bool, passed: bool, repairable: bool, replans: int, max_replans: int,
               steps_left: int, plan_steps: int) -> Literal["plan", "verify"]:
    """The decision after ``check``: replan when the execution failed its plan's check, a
    new plan exists, replans are left and the budget pays for the replan *and* the
    ``verify`` -> ``rank`` that must follow (``CHECK_REPLAN_NODE_STEPS + plan_steps +
    AFTER_CHECK_STEPS`` steps); otherwise verify what there is.

    Args:
        loops: ``Context.loops``; false: never replan.
        passed: ``plan.check.passed``.
        repairable: :func:`knowledge_os.domains.planning.repair_plan` has a new plan.
        replans: Replans made so far in this run (from the check or the gate).
        max_replans: The domain's ``plans.max_replans``.
        steps_left: ``budget.max_steps`` minus the steps spent so far.
        plan_steps: Steps of the new plan.

    Returns:
        ``plan`` or ``verify``.
    """
    if not loops or passed or not repairable or replans >= max_replans:
        return "verify"
    if steps_left < CHECK_REPLAN_NODE_STEPS + plan_steps + AFTER_CHECK_STEPS:
        return "verify"
    return "plan"


async def route_after_check(state: State, runtime: Runtime[Context]) -> Literal["plan", "verify"]:
    """The edge after ``check``: :func:`check_gate` of the run's state, budget and context."""
    loops = not (runtime is not None and runtime.context is not None and not runtime.context.loops)
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    plan = state.get("plan") or {}
    result = plan.get("check") or {"passed": True, "failures": []}
    scope = plan.get("scope") or {"use_dates": True, "use_packages": True}
    repaired = None if result["passed"] else repair_plan(
        spec, plan.get("steps") or [], plan.get("args") or yaml_plan(spec, state["path"], "").args(),
        result["failures"], use_dates=scope["use_dates"], use_packages=scope["use_packages"],
        has_dates=bool(state["analysis"].get("dates")))
    budget = budget_for(services, spec, state)
    return check_gate(
        loops=loops, passed=result["passed"], repairable=repaired is not None,
        replans=state.get("replans", 0), max_replans=spec.plans.max_replans,
        steps_left=budget.max_steps - usage_so_far(state).get("steps", 0),
        plan_steps=len(repaired[0].steps) if repaired is not None else 0,
    )


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
        steps_left=budget.max_steps - usage_so_far(state).get("steps", 0),
        plan_steps=len((state.get("plan") or {}).get("steps") or []),
    )


Edge = Callable[..., Awaitable[str]]


def destinations(edge: Edge) -> tuple[str, ...]:
    """The node names ``edge`` may return: the ``Literal`` of its return annotation."""
    return get_args(get_type_hints(edge)["return"])


def routed(node: Callable[[State, Runtime[Context]], Awaitable[dict[str, Any]]], edge: Edge
           ) -> Callable[[State, Runtime[Context]], Awaitable[Command]]:
    """``node`` followed by ``edge``: the node's update and the edge's choice, computed on
    the state after that update (:func:`after_update`), as ``Command(update, goto)``.

    Add it with ``destinations=destinations(edge)``. An edge taking one parameter gets the
    state; one taking two, the state and the runtime.
    """
    with_runtime = len(inspect.signature(edge).parameters) > 1

    @functools.wraps(node)
    async def fn(state: State, runtime: Runtime[Context]) -> Command:
        update = await node(state, runtime)
        view = after_update(state, update)
        goto = await (edge(view, runtime) if with_runtime else edge(view))
        return Command(update=update, goto=goto)

    return fn
