"""Node ``verify``: score each unverified draft against the domain's checklist."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.domains.checks import CheckInput, run_checklist
from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import services_of, timed

__all__ = ["quality_threshold", "verify"]


def quality_threshold(services: Any, spec: Any) -> float:
    return spec.quality_threshold if spec.quality_threshold is not None else services.settings.quality_threshold


@timed("verify")
async def verify(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    a = state["analysis"]
    broaden = (state.get("plan") or {}).get("broaden", 0)
    dates = a.get("dates") if broaden < 1 else None
    by_id = {d["id"]: d for d in state.get("documents", [])}
    checklist = [(c.id, c.rule, c.weight, c.value) for c in spec.checklist]
    threshold = quality_threshold(services, spec)
    candidates = []
    for cand in state["candidates"]:
        if "quality" not in cand:
            x = CheckInput(
                answer=cand["answer"], summary=cand["summary"],
                cited_docs=[by_id[i] for i in cand["citations"] if i in by_id],
                documents=state.get("documents", []), stats=state.get("stats"),
                cves=tuple(a["cves"]), bugs=tuple(a["bugs"]),
                packages=tuple(a["packages"]) if broaden < 2 else (),
                ts_from=dates["ts_from"] if dates else None, ts_to=dates["ts_to"] if dates else None,
            )
            q = run_checklist(x, checklist)
            cand = {**cand, "quality": {"score": q["score"], "passed": q["score"] >= threshold,
                                        "issues": q["issues"], "checks": q["checks"]}}
        candidates.append(cand)
    return {"candidates": candidates}
