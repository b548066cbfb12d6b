"""Node ``rank``: self-ranking of up to 2 drafts by verified quality."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import timed

__all__ = ["citations_for", "rank"]


def citations_for(candidate: dict[str, Any], documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents a draft cites, in ``[n]`` order, as public citation dicts."""
    from knowledge_os.domains.checks import cited_numbers

    by_id = {d["id"]: d for d in documents}
    cited = sorted(set(cited_numbers(candidate["answer"])))
    out = []
    for n in cited:
        if 1 <= n <= len(candidate["citations"]) and candidate["citations"][n - 1] in by_id:
            d = by_id[candidate["citations"][n - 1]]
            out.append({"n": n, "id": d["id"], "title": d["title"], "score": d["score"],
                        "metadata": {"channel": d["channel"], "date": d["date"], **d["metadata"]}})
    return out


@timed("rank")
async def rank(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    cands = state["candidates"]
    best = max(range(len(cands)),
               key=lambda i: (cands[i]["quality"]["score"], -len(cands[i]["quality"]["issues"]), -i))
    chosen = cands[best]
    return {
        "best": best,
        "answer": chosen["answer"],
        "citations": citations_for(chosen, state.get("documents", [])),
        "quality": {k: chosen["quality"][k] for k in ("score", "passed", "issues")},
    }
