"""Node ``verify``: score each unverified draft against the domain's checklist.

Besides the YAML's rules, every draft's claims are traced to its evidence and its
language is checked (:mod:`knowledge_os.domains.checks`, always-on rules). A draft
passes when its score reaches the quality threshold and no blocking rule failed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.domains.checks import CheckInput, run_checklist
from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import as_of, services_of, timed
from knowledge_os.nodes.plan import plan_scope

__all__ = ["check_input", "quality_threshold", "score_candidate", "verify"]


def quality_threshold(services: Any, spec: Any) -> float:
    return spec.quality_threshold if spec.quality_threshold is not None else services.settings.quality_threshold


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _periods(dates: dict[str, Any] | None, stats: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """ISO ``(from, to)`` days of the asked window and of the windows the statistics compare."""
    out: list[tuple[str, str]] = []
    if dates and (dates.get("ts_from") is not None or dates.get("ts_to") is not None):
        lo = _day(dates["ts_from"]) if dates.get("ts_from") is not None else "1970-01-01"
        hi = _day(dates["ts_to"] - 1) if dates.get("ts_to") is not None else lo
        out.append((lo, hi))
    for value in (stats or {}).values():
        if isinstance(value, dict) and isinstance(value.get("from"), str) and isinstance(value.get("to"), str):
            out.append((value["from"], value["to"]))
    return tuple(out)


def check_input(state: State, cand: dict[str, Any], *, claim_kinds: tuple[str, ...],
                today: str | None) -> CheckInput:
    """The evidence one draft is checked against (its listed documents, the run's
    statistics, the question, the asked period)."""
    a = state["analysis"]
    scope = plan_scope(state)
    dates = a.get("dates") if scope["use_dates"] else None
    docs = state.get("documents", [])
    by_id = {d["id"]: d for d in docs}
    cited = [by_id[i] for i in cand["citations"] if i in by_id]
    vocabulary = tuple(dict.fromkeys([*(d["channel"] for d in docs), *a["packages"]]))
    return CheckInput(
        answer=cand["answer"], summary=cand["summary"], cited_docs=cited, documents=docs,
        stats=state.get("stats"), cves=tuple(a["cves"]), bugs=tuple(a["bugs"]),
        packages=tuple(a["packages"]) if scope["use_packages"] else (),
        ts_from=dates["ts_from"] if dates else None, ts_to=dates["ts_to"] if dates else None,
        question=state.get("query") or a.get("text", ""), lang=a.get("lang"),
        vocabulary=vocabulary, periods=_periods(dates, state.get("stats")), today=today,
        claim_kinds=claim_kinds,
    )


def score_candidate(state: State, cand: dict[str, Any], spec: Any, threshold: float, *,
                    today: str | None) -> dict[str, Any]:
    """``cand`` with its ``quality``: ``{"score", "passed", "issues", "checks",
    "grounded", "ungrounded"}`` (``ungrounded``: issues of the claim rule)."""
    x = check_input(state, cand, claim_kinds=tuple(spec.grounding.claims), today=today)
    checklist = [(c.id, c.rule, c.weight, c.value) for c in spec.checklist]
    q = run_checklist(x, checklist)
    ungrounded = [i for i in q["issues"] if i.startswith("claims_grounded:")]
    return {**cand, "quality": {"score": q["score"], "passed": q["score"] >= threshold and not q["blocking"],
                                "issues": q["issues"], "checks": q["checks"],
                                "grounded": not ungrounded, "ungrounded": ungrounded}}


@timed("verify")
async def verify(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    threshold = quality_threshold(services, spec)
    today = as_of(runtime).isoformat()
    candidates = [cand if "quality" in cand else score_candidate(state, cand, spec, threshold, today=today)
                  for cand in state["candidates"]]
    return {"candidates": candidates}
