"""Node ``correct``: one self-correction of the best draft below the quality threshold.

The LLM rewrites the summary given the checklist's issues, each ungrounded claim named
(prose mode; in structured mode it chooses again), citations that refer to no listed
document are removed, and the answer is rebuilt around it. The summary written from the
data alone is added as a second candidate (marked ``data_only``, with the one-line
notice); `verify` scores both and `rank` keeps the grounded, better one, so a fix that
fails again never reaches the user.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.domains.compose import compose_answer, fallback_summary
from knowledge_os.domains.steps import answer_mode, draft_summary
from knowledge_os.errors import BackendError, BackendUnavailableError, BudgetExceededError
from knowledge_os.graph.state import Context, State
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
    summary = None
    events: list[dict[str, Any]] = [{"type": "quality_low", "score": draft["quality"]["score"],
                                     "issues": draft["quality"]["issues"][:5]}]
    try:
        text = draft_summary(ctx, listing, draft.get("variant", 0), issues=issues, draft=draft["summary"])
        summary = drop_invalid_citations(text, len(listing)) or None if text else None
    except BudgetExceededError as exc:
        events.append({"type": "budget_exceeded", "budget": exc.budget})
        ctx.note_usage({"budget_exceeded": 1})
    except BackendUnavailableError:
        raise  # the model's server is down: the run fails and resumes here (steps.summarise)
    except BackendError as exc:
        events.append({"type": "error", "where": "correct", "error": str(exc)[:300]})
    fixed = []
    if summary is not None and summary != draft["summary"]:
        fixed.append({"answer": compose_answer(ctx, summary, listing), "summary": summary,
                      "citations": draft["citations"], "variant": draft.get("variant", 0),
                      "corrected": True, "data_only": False, "mode": answer_mode(ctx)})
    else:
        events.append({"type": "fallback_used", "where": "correct"})
    # The data-only summary competes too: `rank` keeps it when the LLM's fix fails again.
    data = fallback_summary(ctx, listing)
    fixed.append({"answer": compose_answer(ctx, data, listing, notice="rejected"), "summary": data,
                  "citations": draft["citations"], "variant": draft.get("variant", 0), "corrected": True,
                  "data_only": True, "mode": "data"})
    delta = {k: v - before.get(k, 0) for k, v in ctx.usage.items() if v != before.get(k, 0)}
    return {"candidates": [*state["candidates"], *fixed], "corrected": True, "usage": delta,
            "timings_ms": ctx.timings_ms, "events": events}
