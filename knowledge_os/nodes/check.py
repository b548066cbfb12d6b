"""Node ``check``: compare what ``execute`` produced with what its plan expected.

The expectations are :func:`knowledge_os.domains.planning.check_execution`'s: every
planned step ran, enough documents, documents in the asked period, each named CVE or bug
found, figures computed. A named id that no entry of the corpus holds (an exact lookup
in the document store) cannot be found by any plan, so it does not fail the check (the
answer says it is unknown). Documents a replan carried over with the earlier draft are
not counted. The outcome goes into ``plan.check``; the edge after this node
(``knowledge_os.graph.edges.route_after_check``) replans on a failure when the budget
pays for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.domains.planning import ExecutionOutcome, check_execution
from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import analysis_from_state, services_of, timed
from knowledge_os.nodes.plan import plan_scope

__all__ = ["check"]


def _missing_in_corpus(services: Any, named: list[tuple[str, str]]) -> tuple[str, ...]:
    """The labels of the named ids (``(entity, label)`` pairs) that no document holds."""
    return tuple(label for entity, label in named if not services.docstore.by_entities([entity], limit=1))


@timed("check")
async def check(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the execution. Runs on the event loop; the document-store lookups of named
    ids (only when the question names some) go to a worker thread."""
    services = services_of(runtime)
    spec = services.domains.get(state["domain"])
    analysis = analysis_from_state(state)
    plan = state["plan"]
    named = [*((f"cve:{c}", c) for c in analysis.cves), *((f"bug:{b}", f"#{b}") for b in analysis.bugs)]
    missing = await asyncio.to_thread(_missing_in_corpus, services, named) if named else ()
    fresh = [d for d in state.get("documents") or [] if "carried" not in d["sources"]]
    outcome = ExecutionOutcome(steps_done=tuple(plan.get("done") or ()), documents=fresh,
                               stats=state.get("stats"), missing_in_corpus=missing)
    failures = check_execution(spec, analysis, plan["steps"], outcome, use_dates=plan_scope(state)["use_dates"])
    result = {"passed": not failures, "failures": failures}
    events = [{"type": "check_failed", "attempt": plan.get("attempt", 0), "failures": failures[:5]}] if failures else []
    return {"plan": {**plan, "check": result}, "events": events}
