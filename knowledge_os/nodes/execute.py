"""Node ``execute``: run the plan's steps from the shared step library.

On a replan the best earlier draft (:func:`carried_draft`) is kept among the candidates
with the documents it cites, and one draft fewer is written: ``rank`` compares the new
draft with the best earlier one, so a replan cannot replace a better answer.
"""

from __future__ import annotations

import logging
from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.domains.compose import compose_answer, fallback_summary
from knowledge_os.domains.steps import STEPS, StepContext, select_listing
from knowledge_os.errors import BudgetExceededError
from knowledge_os.graph.state import Context, State, usage_so_far
from knowledge_os.nodes._common import (
    analysis_from_state,
    as_of,
    budget_for,
    services_of,
    timed,
)
from knowledge_os.nodes.plan import plan_scope

__all__ = ["carried_draft", "execute", "step_context"]

logger = logging.getLogger(__name__)


def step_context(state: State, runtime: Runtime[Context]) -> StepContext:
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    n = 2 if (state["path"] == "smart" or spec.important) else 1
    scope = plan_scope(state)
    args = (state.get("plan") or {}).get("args") or {}
    return StepContext(
        retrieval=services.retrieval,
        docstore=services.docstore,
        chat_model=services.chat_model,
        llm=services.settings.llm,
        spec=spec,
        analysis=analysis_from_state(state),
        as_of=as_of(runtime),
        budget=budget_for(services, spec, state),
        usage=usage_so_far(state),
        persona=(state.get("persona") or {}).get("reader"),
        persona_summary=(state.get("persona") or {}).get("summary"),
        persona_interests=tuple((state.get("persona") or {}).get("interests") or ()),
        use_dates=scope["use_dates"],
        use_packages=scope["use_packages"],
        n_candidates=min(n, services.settings.max_rank_candidates),
        top_k=args.get("top_k"),
        graph_depth=args.get("graph_depth"),
        documents=list(state.get("documents") or []),
        stats=state.get("stats"),
    )


def carried_draft(state: State) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The best draft of the earlier executions and the documents it cites, kept for
    ``rank`` on a replan (a replan must not make the answer worse), or None on a first plan.

    After ``rank`` it is ``candidates[best]``; after a failed check (nothing verified yet)
    the first draft the LLM wrote, else the first. A draft that cites nothing is not kept.
    The draft is marked ``carried`` and its documents get the source ``carried`` (the
    check leaves those out).
    """
    cands = state.get("candidates") or []
    if not (state.get("plan") or {}).get("attempt") or not cands:
        return None
    if all("quality" in c for c in cands):
        idx = min(max(state.get("best", 0), 0), len(cands) - 1)
    else:
        idx = next((i for i, c in enumerate(cands) if not c.get("data_only")), 0)
    if not cands[idx]["citations"]:  # it cites nothing ("no entries"): the replan is there to find some
        return None
    draft = {**cands[idx], "carried": True}
    by_id = {d["id"]: d for d in state.get("documents") or []}
    docs = [{**by_id[i], "sources": [*(s for s in by_id[i]["sources"] if s != "carried"), "carried"]}
            for i in draft["citations"] if i in by_id]
    return draft, docs


@timed("execute")
def execute(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = step_context(state, runtime)
    ctx.documents = []
    ctx.stats = None
    carried = carried_draft(state)
    if carried is not None:  # the earlier best draft is one of the (at most 2) candidates
        ctx.n_candidates = max(1, ctx.n_candidates - 1)
    before = dict(ctx.usage)
    done: list[str] = []
    for name in state["plan"]["steps"]:
        try:
            ctx.budget.check(ctx.usage, next_step=True)
        except BudgetExceededError as exc:
            ctx.events.append({"type": "budget_exceeded", "budget": exc.budget, "at_step": name})
            ctx.note_usage({"budget_exceeded": 1})
            break
        STEPS[name](ctx)
        ctx.note_usage({"steps": 1})
        done.append(name)
    if not ctx.candidates:  # summarise did not run (budget): answer from the data alone
        listing = select_listing(ctx)
        summary = fallback_summary(ctx, listing)
        ctx.candidates.append({"answer": compose_answer(ctx, summary, listing, notice="unavailable"),
                               "summary": summary, "citations": [d["id"] for d in listing], "variant": 0,
                               "data_only": True, "mode": "data"})
        ctx.fallback_used = True
    if carried is not None:
        have = {d["id"] for d in ctx.documents}
        ctx.candidates.append(carried[0])
        ctx.documents.extend(d for d in carried[1] if d["id"] not in have)
    delta = {k: v - before.get(k, 0) for k, v in ctx.usage.items() if v != before.get(k, 0)}
    return {
        "documents": ctx.documents,
        "stats": ctx.stats,
        "candidates": ctx.candidates,
        "fallback_used": state.get("fallback_used", False) or ctx.fallback_used,
        "usage": delta,
        "timings_ms": ctx.timings_ms,
        "events": ctx.events,
        "plan": {**state["plan"], "done": done},
    }
