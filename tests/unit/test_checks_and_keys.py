from __future__ import annotations

import pytest

import knowledge_os
from knowledge_os.cache.keys import cache_key, content_hash
from knowledge_os.domains.checks import CheckInput, run_checklist
from knowledge_os.llm.budget import Budget, merge_usage
from knowledge_os.errors import BudgetExceededError

DOC = {"id": "deb:a:1", "text": "a 1\n  * CVE-2026-1 fixed. Closes: #12345", "ts": 100, "date": "2026-01-01"}


def inp(answer: str, summary: str | None = None, **kw) -> CheckInput:
    base = dict(answer=answer, summary=summary if summary is not None else answer, cited_docs=[DOC],
                documents=[DOC], stats=None, cves=(), bugs=(), packages=(), ts_from=None, ts_to=None)
    base.update(kw)
    return CheckInput(**base)


def test_invalid_citation_is_always_an_issue() -> None:
    q = run_checklist(inp("see [1] and [4]"), [])
    assert q["checks"]["citations_valid"] is False and q["score"] == 0.0
    assert "[4] refer to no retrieved document" in q["issues"][0]


def test_score_is_weighted_share() -> None:
    checklist = [("cites", "min_citations", 1.0, 1), ("words", "summary_present", 1.0, 8)]
    q = run_checklist(inp("short [1]"), checklist)
    assert q["score"] == pytest.approx(3 / 4)
    assert q["checks"] == {"citations_valid": True, "cites": True, "words": False}


def test_named_ids_must_be_cited() -> None:
    rule = [("ids", "cites_named_ids", 1.0, None)]
    assert run_checklist(inp("fixed in [1]", cves=("CVE-2026-1",), bugs=("12345",)), rule)["checks"]["ids"]
    assert not run_checklist(inp("fixed", cves=("CVE-2026-1",)), rule)["checks"]["ids"]


def test_numbers_must_come_from_data() -> None:
    rule = [("nums", "numbers_from_data", 1.0, None)]
    stats = {"numbers": [4, 7]}
    assert run_checklist(inp("rose from 4 to 7 [1]", stats=stats), rule)["checks"]["nums"]
    bad = run_checklist(inp("rose by 300 [1]", stats=stats), rule)
    assert not bad["checks"]["nums"] and "300" in bad["issues"][0]


def test_a_count_of_the_cve_ids_a_cited_entry_names_is_grounded() -> None:
    doc = {**DOC, "text": "a 2\n  * Fix CVE-2026-1001, CVE-2026-1002 and cve-2026-1003 (CVE-2026-1001)"}
    rule = [("claims", "claims_grounded", 1.0, None)]
    # three distinct ids, whatever their case or repetition
    ok = run_checklist(inp("a 2 fixed 3 CVE ids [1].", cited_docs=[doc], documents=[doc]), rule)
    assert ok["checks"]["claims"], ok["issues"]
    bad = run_checklist(inp("a 2 fixed 4 CVE ids [1].", cited_docs=[doc], documents=[doc]), rule)
    assert not bad["checks"]["claims"] and "'4'" in bad["issues"][0]


def test_period_check() -> None:
    rule = [("p", "within_period", 1.0, None)]
    assert not run_checklist(inp("x [1]", ts_from=200), rule)["checks"]["p"]
    assert run_checklist(inp("x [1]", ts_from=50, ts_to=200), rule)["checks"]["p"]


def test_cache_keys_are_versioned_and_normalised() -> None:
    a = cache_key("router", {"prompt": "p1", "query": "What  changed?"})
    assert a.startswith("router:v1:") and len(a.split(":")[2]) == 32
    assert a == cache_key("router", {"query": "what changed?", "prompt": "p1"})
    assert a != cache_key("router", {"prompt": "p2", "query": "what changed?"})
    assert cache_key("answer", {"a": "x y", "b": "z"}) != cache_key("answer", {"a": "x", "b": "y z"})
    with pytest.raises(ValueError, match="unknown cache namespace"):
        cache_key("misc", {})
    assert content_hash("t", {"v": 1}) != content_hash("t", {"v": 2})


def test_budget_and_usage_reducer() -> None:
    assert merge_usage({"llm_calls": 1}, {"llm_calls": 2, "steps": 1}) == {"llm_calls": 3, "steps": 1}
    b = Budget(max_llm_calls=2, max_tokens=100, max_steps=3)
    b.check({"llm_calls": 1}, next_call=True)
    with pytest.raises(BudgetExceededError, match="llm_calls"):
        b.check({"llm_calls": 2}, next_call=True)
    with pytest.raises(BudgetExceededError, match="tokens"):
        b.check({"prompt_tokens": 90, "completion_tokens": 10}, next_call=True)
    with pytest.raises(BudgetExceededError, match="steps"):
        b.check({"steps": 3}, next_step=True)


def test_public_surface_is_pinned() -> None:
    assert knowledge_os.__all__ == [
        "BackendError", "BackendTimeoutError", "BackendUnavailableError", "BudgetExceededError",
        "Citation", "ConfigError", "DomainConfigError", "IngestError", "InputError", "KnowledgeOS",
        "KnowledgeOSError", "Quality", "RouteInfo", "RunResult", "RunUsage", "Settings",
        "UnknownNameError", "__version__",
    ]
    for name in knowledge_os.__all__:
        assert hasattr(knowledge_os, name)
