"""Helpers shared by nodes: services, "today", budgets, timing."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from knowledge_os.domains.spec import DomainSpec
from knowledge_os.graph.state import Context, SpendEntry, State, after_update, run_totals
from knowledge_os.llm.budget import Budget
from knowledge_os.retrieval.query import DateRange, QueryAnalysis
from knowledge_os.services import Services, get_services

__all__ = ["analysis_from_state", "as_of", "budget_for", "services_of", "timed"]

NodeFn = Callable[[State, Runtime[Context]], Awaitable[dict[str, Any]]]
SyncNodeFn = Callable[[State, Runtime[Context]], dict[str, Any]]


def services_of(runtime: Runtime[Context] | None) -> Services:
    ctx = runtime.context if runtime is not None else None
    if ctx is not None and ctx.services is not None:
        return ctx.services
    return get_services()


def as_of(runtime: Runtime[Context] | None) -> date:
    ctx = runtime.context if runtime is not None else None
    if ctx is not None and ctx.as_of:
        return date.fromisoformat(ctx.as_of)
    return datetime.now(UTC).date()


def budget_for(services: Services, spec: DomainSpec | None, state: State | None = None) -> Budget:
    """Settings' budgets, overridden by the domain YAML where it sets them, then capped
    by the run's QoS level (``state["route"]["qos"]``; knowledge_os/qos.py): the smaller
    limit wins, and the level's ``max_wall_s`` from ``state["started_at"]`` is the deadline."""
    from knowledge_os.qos import level_settings

    b = services.settings.budgets
    d = spec.budgets if spec is not None else None
    calls = d.max_llm_calls if d and d.max_llm_calls else b.max_llm_calls
    tokens = d.max_tokens if d and d.max_tokens else b.max_tokens
    steps = d.max_steps if d and d.max_steps else b.max_steps
    level = level_settings(services.settings, ((state or {}).get("route") or {}).get("qos"))
    if level is None:
        return Budget(max_llm_calls=calls, max_tokens=tokens, max_steps=steps)
    started = (state or {}).get("started_at")
    return Budget(max_llm_calls=min(calls, level.max_llm_calls), max_tokens=min(tokens, level.max_tokens),
                  max_steps=min(steps, level.max_steps), max_wall_s=level.max_wall_s,
                  deadline=started + level.max_wall_s if started else None)


def analysis_from_state(state: State) -> QueryAnalysis:
    a = state["analysis"]
    dates = DateRange(**a["dates"]) if a.get("dates") else None
    return QueryAnalysis(
        text=a["text"], cves=tuple(a["cves"]), bugs=tuple(a["bugs"]),
        packages=tuple(a["packages"]), package_names=tuple(a.get("package_names", ())),
        dates=dates, lang=a.get("lang", "en"),
        unknown_packages=tuple(a.get("unknown_packages", ())),
        follows=a.get("follows", ""),
    )


def timed(name: str, *, totals: bool = False) -> Callable[[NodeFn | SyncNodeFn], NodeFn]:
    """Record the node's spend in the run's spend log and count one step.

    The node returns its own ``usage`` (LLM calls, tokens, steps it counted) and
    ``timings_ms`` (sub-steps) as deltas; the wrapper adds one step and the node's wall
    time (ms, key ``name``) and appends them as one :class:`SpendEntry` tagged with the run
    id. With ``totals`` (the run's last node, ``finalize``) it also writes ``usage`` /
    ``timings_ms``, the run's totals (:func:`knowledge_os.graph.state.run_totals`); other
    nodes read the totals so far with :func:`knowledge_os.graph.state.usage_so_far`.
    An empty ``events`` list is left out of the update: appending nothing would still be a
    pending write, a new channel version and a value in the next checkpoint (route, plan,
    execute and check return one on most runs).

    A plain (non-async) node runs in a worker thread, so the event loop stays free to
    persist checkpoints meanwhile. Each such hand-off costs about 0.2 ms of process CPU
    (``benchmarks/bench_overhead.py``), so a node whose blocking work (a model, a store)
    is conditional is ``async`` and hands off only that part (``route``, ``plan``,
    ``check``, ``rank``, ``cache_store``).
    """

    def wrap(fn: NodeFn | SyncNodeFn) -> NodeFn:
        is_async = inspect.iscoroutinefunction(fn)

        @functools.wraps(fn)
        async def node(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
            t0 = time.perf_counter()
            if is_async:
                update = await fn(state, runtime)  # type: ignore[misc]
            else:
                update = await asyncio.to_thread(fn, state, runtime)
            elapsed = round((time.perf_counter() - t0) * 1000, 3)
            timings = dict(update.pop("timings_ms", None) or {})
            timings[name] = round(timings.get(name, 0.0) + elapsed, 3)
            usage = dict(update.pop("usage", None) or {})
            usage["steps"] = usage.get("steps", 0) + 1
            run_id = update.get("run_id") or state.get("run_id", "")
            entry: SpendEntry = {"run_id": run_id, "node": name, "usage": usage, "timings_ms": timings}
            started = update.get("spend")
            # the first node of a run writes a fresh log (Overwrite); the others append
            update["spend"] = Overwrite([*started.value, entry]) if isinstance(started, Overwrite) else [entry]
            if totals:
                log = after_update({"spend": state.get("spend") or []}, {"spend": update["spend"]})["spend"]
                update["usage"], update["timings_ms"] = run_totals(log, run_id)
            if update.get("events") == []:  # appending nothing: no write, no new channel version
                del update["events"]
            return update

        return node

    return wrap
