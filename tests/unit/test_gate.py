"""The gate after ``rank`` (knowledge_os/graph/edges.py) and the replan scope
(knowledge_os/nodes/plan.py): pure functions in a table, then the real step counts of a
Smart run with a fake model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from knowledge_os.graph.edges import (
    AFTER_CHECK_STEPS,
    CHECK_REPLAN_NODE_STEPS,
    CORRECT_STEPS,
    REPLAN_NODE_STEPS,
    check_gate,
    gate,
)
from knowledge_os.nodes.plan import AS_ASKED, executed_steps, replan_scope
from knowledge_os.settings import Settings

AS_OF = "2026-11-22"
SMART_STEPS = 4  # digest.yaml plans.smart: retrieve, expand, group, summarise
REPLAN = REPLAN_NODE_STEPS + SMART_STEPS

BASE = dict(loops=True, passed=False, documents_found=True, corrected=False, path="smart",
            replans=0, max_replans=1, steps_left=16, plan_steps=SMART_STEPS)

CASES = [
    # (why, overrides, next node)
    ("loops off: the first draft is final", dict(loops=False, documents_found=False), "finalize"),
    ("nothing retrieved: broaden", dict(documents_found=False, passed=True), "plan"),
    ("nothing retrieved, fast path too", dict(documents_found=False, path="fast", plan_steps=3,
                                               steps_left=REPLAN_NODE_STEPS + 3), "plan"),
    ("nothing retrieved, replans used up", dict(documents_found=False, replans=1, passed=True), "cache_store"),
    ("nothing retrieved, one step short of a replan", dict(documents_found=False, steps_left=REPLAN - 1),
     "correct"),
    ("passed", dict(passed=True), "cache_store"),
    ("failed: correct once", dict(), "correct"),
    ("failed: correct with exactly its steps", dict(steps_left=CORRECT_STEPS), "correct"),
    ("failed, corrected, smart: replan with exactly its steps", dict(corrected=True, steps_left=REPLAN), "plan"),
    ("failed, corrected, smart: one step short of a replan", dict(corrected=True, steps_left=REPLAN - 1),
     "finalize"),
    ("failed, too few steps to correct: replan is dearer still", dict(steps_left=CORRECT_STEPS - 1), "finalize"),
    ("failed, corrected, fast: no quality replan", dict(corrected=True, path="fast"), "finalize"),
    ("failed, corrected, smart, replans used up", dict(corrected=True, replans=1), "finalize"),
    ("failed, corrected, max_replans 0", dict(corrected=True, max_replans=0), "finalize"),
    ("over budget", dict(steps_left=-2), "finalize"),
]


@pytest.mark.parametrize(("why", "overrides", "expected"), CASES, ids=[c[0] for c in CASES])
def test_gate_table(why: str, overrides: dict, expected: str) -> None:
    assert gate(**{**BASE, **overrides}) == expected


def test_replan_cost_constants_are_the_graph_loops() -> None:
    # correct -> verify -> rank; plan -> execute -> check -> verify -> rank; plan -> execute
    # -> check, then verify -> rank reserved (builder.py)
    assert (CORRECT_STEPS, REPLAN_NODE_STEPS, CHECK_REPLAN_NODE_STEPS, AFTER_CHECK_STEPS) == (3, 5, 3, 2)


CHECK_BASE = dict(loops=True, passed=False, repairable=True, replans=0, max_replans=1,
                  steps_left=12, plan_steps=SMART_STEPS)
CHECK_REPLAN = CHECK_REPLAN_NODE_STEPS + SMART_STEPS + AFTER_CHECK_STEPS


@pytest.mark.parametrize(("why", "overrides", "expected"), [
    ("failed check: replan", dict(), "plan"),
    ("failed check, exactly the replan and verify+rank left", dict(steps_left=CHECK_REPLAN), "plan"),
    ("failed check, one step short (verify and rank are reserved)", dict(steps_left=CHECK_REPLAN - 1), "verify"),
    ("passed", dict(passed=True), "verify"),
    ("loops off", dict(loops=False), "verify"),
    ("nothing left to change", dict(repairable=False), "verify"),
    ("replans used up", dict(replans=1), "verify"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_check_gate_table(why: str, overrides: dict, expected: str) -> None:
    assert check_gate(**{**CHECK_BASE, **overrides}) == expected


@pytest.mark.parametrize(("previous", "has_dates", "expected"), [
    (AS_ASKED, True, {"use_dates": False, "use_packages": True}),
    (AS_ASKED, False, {"use_dates": False, "use_packages": False}),
    ({"use_dates": False, "use_packages": True}, True, {"use_dates": False, "use_packages": False}),
    ({"use_dates": False, "use_packages": False}, True, {"use_dates": False, "use_packages": False}),
])
def test_replan_scope_drops_dates_then_packages(previous, has_dates, expected) -> None:
    assert replan_scope(previous, has_dates=has_dates) == expected
    assert AS_ASKED == {"use_dates": True, "use_packages": True}  # not mutated


# A Smart Path question (two packages, "compare", "explain"); the digest below adds a rule
# that no draft, not even the data-only one, can pass, so every draft fails.
FAILING = "Compare what changed in openssl and curl since March and explain why it matters to us"


def _failing_digest(folder: Path) -> Path:
    """The built-in digest YAML plus a rule nothing passes (a user's digest.yaml replaces
    the built-in one): a summary of at least 10,000 words."""
    spec = yaml.safe_load((Settings().builtin_domains_dir / "digest.yaml").read_text())
    spec["checklist"].append({"id": "impossible", "rule": "summary_present", "value": 10000, "weight": 10})
    folder.mkdir()
    (folder / "digest.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return folder


def _trace(kos, query: str) -> list[tuple[str, int]]:
    async def go() -> list[tuple[str, int]]:
        return [(n, u["usage"]["steps"]) async for n, u in kos.astream(query, as_of=AS_OF, use_cache=False)]
    return asyncio.run(go())


def test_smart_run_that_stays_failing_corrects_then_replans_within_the_domain_budget(kos_factory, tmp_path) -> None:
    kos = kos_factory(responses=["bad [9]"], domains_dirs=[_failing_digest(tmp_path / "domains")])
    assert kos.services.domains.get("digest").budgets.max_steps == 23
    trace = _trace(kos, FAILING)
    nodes = [n for n, _ in trace]
    assert nodes == ["cache_lookup", "route", "plan", "execute", "check", "verify", "rank",
                     "correct", "verify", "rank",
                     "plan", "execute", "check", "verify", "rank", "finalize"]
    steps = dict(enumerate(s for _, s in trace))
    first_gate, second_gate, third_gate = steps[6], steps[9], steps[14]
    assert first_gate == 11  # 6 nodes + the 4 Smart plan steps execute counts
    assert second_gate - first_gate == CORRECT_STEPS
    assert third_gate - second_gate == REPLAN_NODE_STEPS + SMART_STEPS
    assert third_gate <= 23  # the replan fits the domain's budget: nothing was cut short
    r = kos.run(FAILING, as_of=AS_OF, use_cache=False)
    assert r.manifest["replans"] == 1 and r.manifest["corrected"] is True
    assert r.manifest["plan"]["done"] == r.manifest["plan"]["steps"]
    # the replaced plan keeps what it ran: the agent steps count both executions (4 + 4)
    assert [e["done"] for e in r.manifest["plan"]["earlier"]] == [r.manifest["plan"]["steps"]]
    assert executed_steps(r.manifest["plan"]) == 2 * SMART_STEPS
    # The quality replan differs in its arguments, not in the filters: top_k 40 -> 80.
    assert r.manifest["plan"]["scope"] == {"use_dates": True, "use_packages": True}
    assert r.manifest["plan"]["args"]["top_k"] == 2 * kos.services.domains.get("digest").retrieval.top_k
    assert r.manifest["plan"]["source"] == "heuristic" and "top_k 40 -> 80" in r.manifest["plan"]["reason"]
    # The replan keeps the best earlier draft for rank and writes one new draft (2 in all).
    cands = r.manifest["candidates"]
    assert [c["carried"] for c in cands[-2:]] == [False, True]


NOTHING_IN_2020 = "Compare what changed in openssl and curl in 2020 and explain why it matters to us"


def test_smart_run_failing_its_check_replans_and_keeps_the_earlier_draft_in_the_ranking(kos_factory) -> None:
    """plan -> execute -> check (nothing in 2020) -> plan (the period dropped) -> execute ->
    check -> verify -> rank; within the Smart budget, with verify and rank reserved."""
    kos = kos_factory(responses=["curl fixed a crash [1]."])
    trace = _trace(kos, NOTHING_IN_2020)
    nodes = [n for n, _ in trace]
    assert nodes[:10] == ["cache_lookup", "route", "plan", "execute", "check",
                          "plan", "execute", "check", "verify", "rank"]
    steps = [s for _, s in trace]
    assert steps[7] - steps[4] == CHECK_REPLAN_NODE_STEPS + SMART_STEPS
    assert steps[-1] <= 23
    r = kos.run(NOTHING_IN_2020, as_of=AS_OF, use_cache=False)
    p = r.manifest["plan"]
    assert r.path == "smart" and r.manifest["replans"] == 1 and p["attempt"] == 1
    assert p["check"] == {"passed": True, "failures": []}
    assert p["scope"] == {"use_dates": False, "use_packages": True} and p["source"] == "heuristic"
    assert p["reason"].startswith("check failed (too_few: 0 documents") and "date range is dropped" in p["reason"]
    assert r.manifest["counts"]["documents"] > 0
    # the first execution's drafts cited nothing: none is carried, two new drafts compete
    assert [c["carried"] for c in r.manifest["candidates"]] == [False, False]
