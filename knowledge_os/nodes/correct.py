"""Node ``correct``: one self-correction of the best draft below the quality threshold.

The LLM rewrites the summary given the checklist's issues (citations that refer to no
retrieved document are removed) and the answer is rebuilt around it. The summary written
from the data alone is added as a second candidate; `verify` scores both and `rank`
keeps the better, so a fix that fails again does not win.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from knowledge_os.domains.compose import compose_answer, fallback_summary
from knowledge_os.domains.steps import render_context
from knowledge_os.errors import BackendError, BudgetExceededError
from knowledge_os.graph.state import Context, State
from knowledge_os.llm.calls import call_llm
from knowledge_os.nodes._common import timed
from knowledge_os.nodes.execute import step_context

__all__ = ["correct", "drop_invalid_citations"]

logger = logging.getLogger(__name__)


def drop_invalid_citations(text: str, n_docs: int) -> str:
    """Remove ``[n]`` markers outside 1..n_docs."""
    return re.sub(r"\s?\[(\d{1,3})\]", lambda m: m[0] if 1 <= int(m[1]) <= n_docs else "", text)


@timed("correct")
def correct(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = step_context(state, runtime)
    before = dict(ctx.usage)
    draft = state["candidates"][state["best"]]
    by_id = {d["id"]: d for d in ctx.documents}
    listing = [by_id[i] for i in draft["citations"] if i in by_id]
    issues = "; ".join(draft["quality"]["issues"])
    p = ctx.spec.prompts
    fields = {
        "query": ctx.analysis.text, "context": render_context(listing) or "(no entries)",
        "stats": (ctx.stats or {}).get("table", ""), "persona": ctx.persona or "a developer",
        "today": ctx.as_of.isoformat(), "period": "", "issues": issues, "draft": draft["summary"],
        "n": len(listing),
    }
    summary = None
    events: list[dict[str, Any]] = [{"type": "quality_low", "score": draft["quality"]["score"],
                                     "issues": draft["quality"]["issues"][:5]}]
    try:
        reply = call_llm(ctx.services.chat_model,
                         [SystemMessage(p.system.format(**fields)), HumanMessage(p.correct.format(**fields))],
                         usage=ctx.usage, budget=ctx.budget, max_tokens=160)
        ctx.note_usage(reply.usage())
        ctx.timings_ms["llm.correct"] = reply.latency_ms
        summary = drop_invalid_citations(reply.text.strip(), len(listing)) or None
    except BudgetExceededError as exc:
        events.append({"type": "budget_exceeded", "budget": exc.budget})
        ctx.note_usage({"budget_exceeded": 1})
    except BackendError as exc:
        events.append({"type": "error", "where": "correct", "error": str(exc)[:300]})
    fixes = []
    if summary is not None and summary != draft["summary"]:
        fixes.append(summary)
    # The data-only summary competes too: `rank` keeps it when the LLM's fix fails again.
    fixes.append(fallback_summary(ctx, listing))
    if len(fixes) == 1:
        events.append({"type": "fallback_used", "where": "correct"})
    fixed = [{"answer": compose_answer(ctx, text, listing), "summary": text,
              "citations": draft["citations"], "variant": draft.get("variant", 0), "corrected": True,
              "data_only": i == len(fixes) - 1}
             for i, text in enumerate(fixes)]
    delta = {k: v - before.get(k, 0) for k, v in ctx.usage.items() if v != before.get(k, 0)}
    return {"candidates": [*state["candidates"], *fixed], "corrected": True, "usage": delta,
            "timings_ms": ctx.timings_ms, "events": events}
