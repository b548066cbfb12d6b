"""The pairwise judge of ``rank``: agree, disagree -> tie, junk -> tie, budget, grounding.

A fake chat model answers by what it is asked: the judge's prompt (its system message)
gets the judge's reply, any other prompt a draft summary (variant 1 is asked to lead with
the most important change, so the two drafts differ).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.runtime import Runtime

from knowledge_os.api import KnowledgeOS
from knowledge_os.graph.state import Context
from knowledge_os.nodes.rank import JUDGE_SCHEMA, rank, verdict_of
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore

AS_OF = "2026-11-22"
Q = "What changed in openssl since March?"
# Two drafts the checks score alike (both grounded, both pass, score 1.0).
DRAFT_0 = "openssl fixed CVE-2026-28387 in its April 2026 security upload [1]."
DRAFT_1 = "The April 2026 security upload of openssl fixed CVE-2026-28387 [1]."
UNGROUNDED = "openssl 9.9.9 fixed CVE-2026-28387 in its April 2026 security upload [1]."


class DispatchChat(BaseChatModel):
    """Replies ``judge(a, b)`` to a judge prompt and ``draft(variant)`` to anything else;
    counts the judge calls."""

    judge: Callable[[str, str], str]
    draft: Callable[[int], str]
    judge_calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "dispatch-fake"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        system, user = str(messages[0].content), str(messages[-1].content)
        if system.startswith("You compare two answers"):
            self.judge_calls += 1
            a = re.search(r"Answer A:\n(.*?)\n\nAnswer B:", user, re.S)[1]
            b = re.search(r"Answer B:\n(.*?)\n\nWhich answer", user, re.S)[1]
            text = self.judge(a, b)
        else:
            text = self.draft(1 if "Lead with the most important" in user else 0)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def _kos(tmp_path, corpus_dir, chat: DispatchChat, **settings_kw) -> KnowledgeOS:
    settings = Settings(home=tmp_path / ".kos", **settings_kw)
    kos = KnowledgeOS(services=Services(settings, chat_model=chat, embedder=HashEmbedder(),
                                        vector_store=MemoryVectorStore()))
    assert kos.ingest([corpus_dir]).problems == []
    return kos


def _prefers(text: str) -> Callable[[str, str], str]:
    """A consistent judge: names whichever answer is ``text``."""
    return lambda a, b: '{"better": "%s", "reason": "names the upload"}' % ("A" if a.strip() == text else "B")


def _drafts(v0: str = DRAFT_0, v1: str = DRAFT_1) -> Callable[[int], str]:
    return lambda variant: (v0, v1)[variant]


def _run(kos: KnowledgeOS, **kw: Any):
    try:
        return kos.run(Q, path="smart", as_of=AS_OF, use_cache=False, **kw)
    finally:
        kos.close()


def test_both_orders_agree_the_judged_winner_is_shown(tmp_path, corpus_dir) -> None:
    chat = DispatchChat(judge=_prefers(DRAFT_1), draft=_drafts())
    r = _run(_kos(tmp_path, corpus_dir, chat))
    j = r.manifest["rank"]["judgement"]
    assert chat.judge_calls == 2
    assert j["asked"] and j["agree"] and j["decided_by"] == "judge"
    assert [o["a"] for o in j["orders"]] == [0, 1]  # asked with the order swapped
    assert [o["verdict"] for o in j["orders"]] == ["B", "A"]  # DRAFT_1 second, then first
    assert r.manifest["candidates"][j["winner"]]["variant"] == 1
    assert DRAFT_1 in r.answer and DRAFT_0 not in r.answer
    # the plan call (knowledge_os/nodes/plan.py), 2 drafts, 2 judge calls
    assert j["usage"]["llm_calls"] == 2 and r.usage.llm_calls == 5
    assert "names the upload" in j["why"]


def test_the_judge_can_pick_the_draft_the_score_ranks_second(tmp_path, corpus_dir) -> None:
    """Both drafts score alike, so the rank key alone keeps variant 0; the judge overrules it."""
    for prefers, variant in ((DRAFT_0, 0), (DRAFT_1, 1)):
        chat = DispatchChat(judge=_prefers(prefers), draft=_drafts())
        r = _run(_kos(tmp_path / str(variant), corpus_dir, chat))
        j = r.manifest["rank"]["judgement"]
        assert len({c["score"] for c in r.manifest["candidates"]}) == 1  # the key cannot separate them
        assert r.manifest["candidates"][j["winner"]]["variant"] == variant
        assert prefers in r.answer


def test_a_disagreement_between_the_orders_is_a_tie_won_by_the_better_grounded_draft(tmp_path, corpus_dir) -> None:
    # Position bias: the judge always names answer A, so the two orders disagree.
    chat = DispatchChat(judge=lambda a, b: '{"better": "A", "reason": "first"}', draft=_drafts())
    r = _run(_kos(tmp_path, corpus_dir, chat))
    j = r.manifest["rank"]["judgement"]
    assert j["asked"] and j["agree"] is False
    assert [o["preferred"] for o in j["orders"]] == [0, 1]
    assert j["decided_by"] in ("tie: grounding", "tie: score")
    assert j["winner"] == j["pair"][0]  # equally grounded and scored: the rank key's first


def test_a_tie_goes_to_the_draft_with_more_traced_claims(tmp_path, corpus_dir) -> None:
    richer = "openssl 3.0.19 fixed CVE-2026-28387 in its April 2026 security upload [1]."  # one more grounded claim
    chat = DispatchChat(judge=lambda a, b: '{"better": "tie", "reason": "both fine"}',
                        draft=_drafts(DRAFT_0, richer))
    r = _run(_kos(tmp_path, corpus_dir, chat))
    j = r.manifest["rank"]["judgement"]
    assert [o["verdict"] for o in j["orders"]] == ["tie", "tie"]
    assert j["decided_by"] == "tie: grounding", j
    assert richer in r.answer


@pytest.mark.parametrize("junk", ["I prefer the first one.", '{"better": "C"}', "", '{"winner": "A"}'])
def test_a_junk_reply_is_no_verdict_and_counts_as_a_tie(tmp_path, corpus_dir, junk) -> None:
    chat = DispatchChat(judge=lambda a, b: junk, draft=_drafts())
    r = _run(_kos(tmp_path, corpus_dir, chat))
    j = r.manifest["rank"]["judgement"]
    assert j["asked"] and j["agree"] is False
    assert [o["verdict"] for o in j["orders"]] == [None, None]
    assert all(o["reason"].startswith("unusable reply") for o in j["orders"])
    assert j["decided_by"].startswith("tie: ")
    assert r.quality.passed and r.answer


def test_no_room_in_the_budget_ranks_by_score_and_says_so(tmp_path, corpus_dir) -> None:
    # interactive allows 3 LLM calls: the two drafts leave 1, the judge needs 2.
    chat = DispatchChat(judge=_prefers(DRAFT_1), draft=_drafts())
    r = _run(_kos(tmp_path, corpus_dir, chat), qos="interactive")
    j = r.manifest["rank"]["judgement"]
    assert chat.judge_calls == 0 and r.usage.llm_calls == 2
    assert not j["asked"] and j["decided_by"] == "key"
    assert j["why"].startswith("budget: llm_calls (limit 3)")
    assert DRAFT_0 in r.answer  # the rank key's choice (equal scores: the earlier draft)


def test_an_ungrounded_draft_never_wins_and_the_judge_is_not_asked(tmp_path, corpus_dir) -> None:
    chat = DispatchChat(judge=_prefers(UNGROUNDED), draft=_drafts(UNGROUNDED, DRAFT_1))
    r = _run(_kos(tmp_path, corpus_dir, chat))
    j = r.manifest["rank"]["judgement"]
    assert chat.judge_calls == 0
    assert j["decided_by"] == "grounding" and not j["asked"]
    assert r.manifest["candidates"][j["winner"]]["variant"] == 1
    assert "9.9.9" not in r.answer and r.quality.grounded


def test_the_fast_path_of_an_ordinary_domain_is_not_judged(tmp_path, corpus_dir) -> None:
    chat = DispatchChat(judge=_prefers(DRAFT_1), draft=_drafts())
    kos = _kos(tmp_path, corpus_dir, chat)
    try:
        r = kos.run(Q, path="fast", as_of=AS_OF, use_cache=False)
    finally:
        kos.close()
    assert chat.judge_calls == 0 and r.manifest["rank"]["judgement"] is None  # one draft, nothing to rank


def test_judge_off_in_settings(tmp_path, corpus_dir) -> None:
    chat = DispatchChat(judge=_prefers(DRAFT_1), draft=_drafts())
    r = _run(_kos(tmp_path, corpus_dir, chat, rank={"judge": False}))
    j = r.manifest["rank"]["judgement"]
    assert chat.judge_calls == 0 and j["why"] == "judge off (rank.judge)"
    assert DRAFT_0 in r.answer


def _quality(*, passed: bool, score: float, grounded: bool = True) -> dict[str, Any]:
    return {"score": score, "passed": passed, "issues": [], "checks": {}, "grounded": grounded, "ungrounded": []}


def test_rank_compares_the_best_earlier_draft_with_the_new_one(tmp_path, corpus_dir) -> None:
    """After a replan ``candidates`` holds the earlier drafts too: the best two compete,
    whichever execution wrote them, and no third draft can win."""
    chat = DispatchChat(judge=_prefers(DRAFT_1), draft=_drafts())
    kos = _kos(tmp_path, corpus_dir, chat)
    try:
        cands = [
            {"answer": "old good [1]", "summary": "old good [1]", "citations": [], "variant": 0,
             "quality": _quality(passed=True, score=0.9)},
            {"answer": "old bad", "summary": "old bad", "citations": [], "variant": 1,
             "quality": _quality(passed=False, score=0.2)},
            {"answer": "new", "summary": "new", "citations": [], "variant": 0,
             "quality": _quality(passed=False, score=0.5)},
        ]
        state = {"candidates": cands, "domain": "digest", "path": "smart", "documents": [],
                 "query": Q, "analysis": {"text": Q}, "usage": {}}
        out = asyncio.run(rank.__wrapped__(state, Runtime(context=Context(services=kos.services))))
    finally:
        kos.close()
    j = out["judgements"][-1]
    assert j["pair"] == [0, 2] and out["best"] == 0
    assert j["decided_by"] == "checklist" and chat.judge_calls == 0


def test_verdict_parsing() -> None:
    assert verdict_of('{"better": "B", "reason": "cites the CVE"}') == ("B", "cites the CVE")
    assert verdict_of('noise {"better": "tie", "reason": ""} noise') == ("tie", "")
    assert verdict_of('{"better": "a", "reason": "x"}')[0] == "A"
    assert verdict_of("B")[0] is None
    assert JUDGE_SCHEMA["properties"]["better"]["enum"] == ["A", "B", "tie"]


def test_a_failing_judge_call_is_no_verdict_and_the_run_still_answers(tmp_path, corpus_dir) -> None:
    def broken(a: str, b: str) -> str:
        raise RuntimeError("judge backend fell over")

    chat = DispatchChat(judge=broken, draft=_drafts())
    r = _run(_kos(tmp_path, corpus_dir, chat))
    j = r.manifest["rank"]["judgement"]
    assert j["asked"] and [o["verdict"] for o in j["orders"]] == [None, None]
    assert all(o["reason"].startswith("error: chat model call failed") for o in j["orders"])
    assert j["decided_by"].startswith("tie: ") and r.quality.passed and DRAFT_0 in r.answer


def test_a_judge_call_past_the_runs_deadline_is_cut_off_and_is_no_verdict(tmp_path, corpus_dir) -> None:
    import time as _time

    from knowledge_os.domains.steps import StepContext
    from knowledge_os.llm.budget import Budget
    from knowledge_os.nodes.rank import judge_pair

    def slow(a: str, b: str) -> str:
        _time.sleep(0.5)
        return '{"better": "A", "reason": "late"}'

    chat = DispatchChat(judge=slow, draft=_drafts())
    budget = Budget(max_llm_calls=8, max_tokens=16000, max_steps=24, deadline=_time.time() + 0.2, max_wall_s=1)
    ctx = StepContext.__new__(StepContext)
    ctx.chat_model, ctx.budget, ctx.usage, ctx.timings_ms = chat, budget, {}, {}
    draft = {"summary": DRAFT_0, "citations": []}
    t = _time.perf_counter()
    orders, _events = judge_pair(ctx, Q, [], draft, {**draft, "summary": DRAFT_1}, max_tokens=32)
    assert _time.perf_counter() - t < 0.9  # the first call stopped at the deadline, the second never started
    assert [o["verdict"] for o in orders] == [None, None]
    assert orders[0]["reason"].startswith("error: ") and orders[1]["reason"] == "budget: wall_time"
