"""Node ``rank``: self-ranking of the drafts by grounding, then verified quality.

A draft whose claims are all grounded beats any draft with an ungrounded claim, however
the checklist scored them; among equals the higher score wins. What the user reads never
carries an ungrounded claim: when no draft is grounded (and the run's loops are on),
the answer is the summary written from the data alone, with the one-line notice, while
``best`` still points at the best draft so that ``correct`` can work on it.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.domains.checks import cited_numbers
from knowledge_os.domains.compose import compose_answer, fallback_summary
from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import services_of, timed
from knowledge_os.nodes.execute import step_context
from knowledge_os.nodes.verify import quality_threshold, score_candidate

__all__ = ["citations_for", "rank", "rank_key"]


def citations_for(candidate: dict[str, Any], documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents a draft cites, in ``[n]`` order, as public citation dicts."""
    by_id = {d["id"]: d for d in documents}
    cited = sorted(set(cited_numbers(candidate["answer"])))
    out = []
    for n in cited:
        if 1 <= n <= len(candidate["citations"]) and candidate["citations"][n - 1] in by_id:
            d = by_id[candidate["citations"][n - 1]]
            out.append({"n": n, "id": d["id"], "title": d["title"], "score": d["score"],
                        "metadata": {"channel": d["channel"], "date": d["date"], **d["metadata"]}})
    return out


def rank_key(candidate: dict[str, Any], index: int) -> tuple[bool, bool, float, int, int, int]:
    """Sort key, larger is better: grounded, passed, score, fewer issues, written by
    the model rather than from the data, earlier."""
    q = candidate["quality"]
    return (q.get("grounded", True), q["passed"], q["score"], -len(q["issues"]),
            0 if candidate.get("data_only") else 1, -index)


def _data_only_answer(state: State, runtime: Runtime[Context], draft: dict[str, Any]) -> dict[str, Any]:
    """The data-written candidate for ``draft``'s listing (no LLM), scored by verify's rules."""
    ctx = step_context(state, runtime)
    by_id = {d["id"]: d for d in ctx.documents}
    listing = [by_id[i] for i in draft["citations"] if i in by_id]
    summary = fallback_summary(ctx, listing)
    cand = {"answer": compose_answer(ctx, summary, listing, notice="rejected"), "summary": summary,
            "citations": draft["citations"], "variant": draft.get("variant", 0), "data_only": True,
            "mode": "data"}
    return score_candidate(state, cand, ctx.spec, quality_threshold(services_of(runtime), ctx.spec),
                           today=ctx.as_of.isoformat())


@timed("rank")
def rank(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    cands = state["candidates"]
    best = max(range(len(cands)), key=lambda i: rank_key(cands[i], i))
    chosen = cands[best]
    shown = chosen
    loops = runtime.context.loops if runtime is not None and runtime.context is not None else True
    if not chosen["quality"].get("grounded", True) and loops:
        shown = _data_only_answer(state, runtime, chosen)
    quality = {k: chosen["quality"][k] for k in ("score", "passed", "issues")}
    quality["grounded"] = shown["quality"].get("grounded", True)
    quality["data_only"] = bool(shown.get("data_only"))
    quality["mode"] = shown.get("mode", "prose")
    if shown is not chosen:
        quality["rejected"] = chosen["quality"].get("ungrounded", [])
    return {
        "best": best,
        "answer": shown["answer"],
        "citations": citations_for(shown, state.get("documents", [])),
        "quality": quality,
    }
