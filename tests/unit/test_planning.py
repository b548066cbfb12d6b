"""Plans made for a query (knowledge_os/domains/planning.py, nodes/plan.py): the schema
from the domain YAML, validation against it, the Fast Path heuristic, the repair after a
failed check, and what a run's manifest records (fake chat models)."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from knowledge_os.domains.planning import (
    ExecutionOutcome,
    arg_ranges,
    check_execution,
    fast_plan,
    plan_schema,
    repair_plan,
    required_steps,
    validate_plan,
)
from knowledge_os.domains.registry import DomainRegistry
from knowledge_os.domains.spec import DomainSpec
from knowledge_os.retrieval.query import DateRange, QueryAnalysis
from knowledge_os.settings import Settings

AS_OF = "2026-11-22"


@pytest.fixture(scope="module")
def domains() -> DomainRegistry:
    return DomainRegistry.from_dirs([Settings().builtin_domains_dir])


def _q(text: str = "What changed?", **kw) -> QueryAnalysis:
    return QueryAnalysis(text=text, cves=kw.get("cves", ()), bugs=kw.get("bugs", ()),
                         packages=kw.get("packages", ()), dates=kw.get("dates"))


def test_schema_offers_the_yaml_steps_and_ranges(domains) -> None:
    digest = domains.get("digest")
    s = plan_schema(digest)
    assert s["properties"]["steps"]["items"]["enum"] == ["retrieve", "expand", "group", "summarise"]
    assert s["properties"]["steps"]["maxItems"] == 4 and s["properties"]["steps"]["minItems"] == 2
    assert arg_ranges(digest) == {"top_k": (20, 120), "graph_depth": (0, 3)}
    assert s["properties"]["top_k"]["enum"] == [20, 40, 80, 120]
    assert s["properties"]["graph_depth"]["enum"] == [0, 1, 2, 3]
    assert required_steps(domains.get("trend")) == ("retrieve", "stats", "summarise")


@pytest.mark.parametrize(("raw", "problem"), [
    (None, "no JSON object"),
    ({"steps": ["retrieve", "search_web", "summarise"], "top_k": 40, "graph_depth": 2}, "unknown step 'search_web'"),
    ({"steps": ["retrieve", "summarise"], "top_k": 999, "graph_depth": 2}, "top_k 999 out of range [20, 120]"),
    ({"steps": ["retrieve", "summarise"], "top_k": 40, "graph_depth": 7}, "graph_depth 7 out of range"),
    ({"steps": ["summarise", "retrieve"], "top_k": 40, "graph_depth": 2}, "out of order"),
    ({"steps": ["retrieve", "group"], "top_k": 40, "graph_depth": 2}, "missing required step 'summarise'"),
    ({"steps": ["retrieve", "retrieve", "summarise"], "top_k": 40, "graph_depth": 2}, "repeat"),
    ({"steps": ["retrieve", "summarise"], "top_k": True, "graph_depth": 2}, "top_k must be an integer"),
    ({"steps": ["retrieve", "summarise"], "top_k": 40, "graph_depth": 2, "web": 1}, "unknown argument 'web'"),
])
def test_a_plan_outside_the_yaml_falls_back_to_the_yaml_plan_with_the_reason(domains, raw, problem) -> None:
    digest = domains.get("digest")
    made, why = validate_plan(raw, digest)
    assert why is not None and problem in why
    assert made.source == "yaml" and made.steps == digest.plans.smart
    assert (made.top_k, made.graph_depth) == (40, 2) and problem in made.why


def test_a_valid_plan_is_kept_as_the_llm_made_it(domains) -> None:
    made, why = validate_plan({"steps": ["retrieve", "group", "summarise"], "top_k": 80, "graph_depth": 1},
                              domains.get("digest"))
    assert why is None
    assert (made.source, made.steps, made.args()) == ("llm", ("retrieve", "group", "summarise"),
                                                      {"top_k": 80, "graph_depth": 1})


def test_fast_micro_plan_heuristic_follows_what_the_question_names(domains) -> None:
    digest = domains.get("digest")
    ids = fast_plan(digest, _q(cves=("CVE-2024-1234",)))
    two = fast_plan(digest, _q(packages=("openssl", "curl")))
    plain = fast_plan(digest, _q(packages=("openssl",)))
    for p in (ids, two, plain):
        assert p.source == "heuristic" and p.steps == digest.plans.fast and len(p.steps) <= 3
    assert (ids.top_k, two.top_k, plain.top_k) == (20, 80, 40)
    assert "exactly" in ids.why and "2 packages" in two.why


def test_yaml_ranges_are_checked_at_load() -> None:
    base = {"name": "x", "description": "d", "prompts": {"system": "s", "summarise": "s", "correct": "c"}}
    ok = DomainSpec.model_validate({**base, "plans": {"fast": ["retrieve", "summarise"],
                                                      "smart": ["retrieve", "summarise"],
                                                      "args": {"top_k": [10, 60]}}})
    assert arg_ranges(ok)["top_k"] == (10, 60)
    with pytest.raises(ValidationError, match=r"retrieval.top_k 40 lies outside plans.args.top_k \[50, 60\]"):
        DomainSpec.model_validate({**base, "plans": {"fast": ["retrieve", "summarise"],
                                                     "smart": ["retrieve", "summarise"],
                                                     "args": {"top_k": [50, 60]}}})
    with pytest.raises(ValidationError, match="low <= high"):
        DomainSpec.model_validate({**base, "plans": {"fast": ["retrieve"], "smart": ["retrieve"],
                                                     "args": {"graph_depth": [3, 1]}}})
    with pytest.raises(ValidationError, match="not in plans.steps"):
        DomainSpec.model_validate({**base, "plans": {"fast": ["retrieve", "summarise"], "smart": ["retrieve"],
                                                     "steps": ["retrieve"]}})


MARCH = DateRange(ts_from=1772323200, ts_to=None, label="since March")  # 2026-03-01


def _doc(i: str, ts: int, text: str = "") -> dict:
    return {"id": i, "ts": ts, "text": text, "sources": ["vector"]}


def test_check_names_each_expectation_that_failed(domains) -> None:
    digest = domains.get("digest")
    q = _q(cves=("CVE-2024-1", "CVE-2024-2"), bugs=("123",), dates=MARCH)
    done = ExecutionOutcome(steps_done=("retrieve", "expand", "group", "summarise"),
                            documents=[_doc("a", 1772323200 + 5, "fixes CVE-2024-1 closes: #123")], stats=None,
                            missing_in_corpus=("CVE-2024-2",))
    assert check_execution(digest, q, digest.plans.smart, done, use_dates=True) == []
    old = ExecutionOutcome(steps_done=("retrieve",), documents=[_doc("b", 100)], stats=None)
    failures = check_execution(digest, q, digest.plans.smart, old, use_dates=True)
    assert [f.split(":")[0] for f in failures] == ["steps", "out_of_period", "missing_id", "missing_id",
                                                   "missing_id"]
    assert check_execution(digest, _q(), ("retrieve", "summarise"),
                           ExecutionOutcome(steps_done=("retrieve", "summarise"), documents=[], stats=None),
                           use_dates=True) == ["too_few: 0 documents, expected >= 1"]
    trend = domains.get("trend")
    empty = {"empty": {"current": True}, "window": {"from": "2026-03-01", "to": "2026-11-22"}}
    assert check_execution(trend, _q(), trend.plans.smart,
                           ExecutionOutcome(steps_done=trend.plans.smart, documents=[_doc("a", 5)], stats=empty),
                           use_dates=True) == ["no_figures: the window 2026-03-01..2026-11-22 has no entries"]


def test_repair_differs_in_arguments_or_steps_before_it_drops_filters(domains) -> None:
    digest = domains.get("digest")
    fast = ("retrieve", "group", "summarise")
    made, scope = repair_plan(digest, fast, {"top_k": 40, "graph_depth": 2}, ["missing_id: CVE-1 in none"],
                              use_dates=True, use_packages=True, has_dates=True)
    assert made.steps == ("retrieve", "expand", "group", "summarise") and made.top_k == 80
    assert scope == {"use_dates": True, "use_packages": True}
    made, scope = repair_plan(digest, made.steps, made.args(), ["missing_id: CVE-1"], use_dates=True,
                              use_packages=True, has_dates=True)
    assert made.top_k == 120
    made, scope = repair_plan(digest, made.steps, made.args(), ["missing_id: CVE-1"], use_dates=True,
                              use_packages=True, has_dates=True)
    assert (made.top_k, made.graph_depth) == (120, 3)
    # An exhausted filter: more candidates cannot add entries, the period goes first.
    made, scope = repair_plan(digest, fast, {"top_k": 40, "graph_depth": 2}, ["too_few: 0 documents"],
                              use_dates=True, use_packages=True, has_dates=True)
    assert scope == {"use_dates": False, "use_packages": True} and "date range" in made.why
    made, scope = repair_plan(digest, fast, {"top_k": 40, "graph_depth": 2}, ["too_few: 0 documents"],
                              use_dates=False, use_packages=True, has_dates=True)
    assert scope == {"use_dates": False, "use_packages": False}
    made, scope = repair_plan(digest, fast, {"top_k": 40, "graph_depth": 2}, ["too_few: 0 documents"],
                              use_dates=False, use_packages=False, has_dates=True)
    assert made.top_k == 80  # no filter left: more candidates
    assert repair_plan(digest, digest.plans.smart, {"top_k": 120, "graph_depth": 3}, ["too_few: 0"],
                       use_dates=False, use_packages=False, has_dates=True) is None


# -- the plan node in a run ----------------------------------------------------------------

SMART_Q = "Compare what changed in openssl and curl since March and explain why it matters to us"


def test_smart_run_takes_the_llm_plan_when_it_validates(kos_factory) -> None:
    plan = {"steps": ["retrieve", "group", "summarise"], "top_k": 80, "graph_depth": 1}
    kos = kos_factory(responses=[orjson.dumps(plan).decode(), "openssl fixed two CVEs [1]."])
    r = kos.run(SMART_Q, as_of=AS_OF, use_cache=False)
    p = r.manifest["plan"]
    assert r.path == "smart"
    assert (p["source"], p["steps"], p["args"]) == ("llm", plan["steps"], {"top_k": 80, "graph_depth": 1})
    assert p["done"][: len(plan["steps"])] == plan["steps"]
    assert r.manifest["timings_ms"].get("llm.plan") is not None


def test_smart_run_records_why_the_llm_plan_was_replaced(kos_factory) -> None:
    bad = {"steps": ["retrieve", "summarise"], "top_k": 5000, "graph_depth": 1}
    kos = kos_factory(responses=[orjson.dumps(bad).decode(), "openssl fixed two CVEs [1]."])
    r = kos.run(SMART_Q, as_of=AS_OF, use_cache=False)
    p = r.manifest["plan"]
    assert p["source"] == "yaml" and p["steps"][:4] == ["retrieve", "expand", "group", "summarise"]
    assert p["attempt"] == 0 and "top_k 5000 out of range [20, 120]" in p["reason"]


def test_fast_run_plans_without_an_llm_call(kos_factory) -> None:
    kos = kos_factory(responses=["curl fixed a crash [1]."])
    r = kos.run("Which upload fixed CVE-2024-2398?", as_of=AS_OF, use_cache=False)
    p = r.manifest["plan"]
    assert r.path == "fast" and p["source"] == "heuristic" and len(p["steps"]) <= 3
    assert "llm.plan" not in r.manifest["timings_ms"]


def test_the_plan_call_reserves_the_judge_calls() -> None:
    from knowledge_os.nodes import plan, rank

    assert plan.JUDGE_CALLS == rank.JUDGE_CALLS


def test_a_budget_without_room_for_drafts_and_judge_skips_the_plan_call(kos_factory) -> None:
    kos = kos_factory(responses=["openssl fixed two CVEs [1]."])
    r = kos.run(SMART_Q, as_of=AS_OF, use_cache=False, qos="interactive", path="smart")
    p = r.manifest["plan"]
    assert p["source"] == "yaml" and "3 LLM calls allowed" in p["reason"]
    assert "llm.plan" not in r.manifest["timings_ms"]
