"""The router node: heuristic, LLM, timeout/junk/budget fallback, cache and forced branches.

The chat models are langchain-core fakes; the embedder is tests/fakes.py's HashEmbedder.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.runtime import Runtime

from knowledge_os.graph.state import Context
from knowledge_os.nodes import route as R
from knowledge_os.retrieval.query import analyze_query
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore

DEV_SET = Path(__file__).resolve().parents[1] / "data" / "routing_dev.jsonl"
AMBIGUOUS = "openssl in 2024"  # no keyword or pattern of either domain


class CountingFake(FakeListChatModel):
    """FakeListChatModel that counts its calls."""

    calls: int = 0

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        return super()._call(*args, **kwargs)


def make_services(tmp_path: Path, responses: list[str], *, sleep: float | None = None,
                  **router: Any) -> tuple[Services, CountingFake]:
    model = CountingFake(responses=responses, sleep=sleep)
    settings = Settings(home=tmp_path / ".kos", router=router)
    services = Services(settings, chat_model=model, embedder=HashEmbedder(), vector_store=MemoryVectorStore())
    return services, model


def run_route(services: Services, query: str, *, usage: dict[str, int] | None = None,
              domain: str | None = None) -> dict[str, Any]:
    analysis = analyze_query(query, channels={"openssl": "openssl", "curl": "curl"}, as_of=date(2026, 11, 22))
    spent = [{"run_id": "r", "node": "execute", "usage": usage, "timings_ms": {}}] if usage else []
    state = {"query": query, "analysis": dataclasses.asdict(analysis), "run_id": "r", "spend": spent}
    runtime = Runtime(context=Context(services=services, domain=domain))
    return asyncio.run(R.route(state, runtime))


# --- pure parts -------------------------------------------------------------------


def test_probabilities_are_a_softmax_of_the_fitted_logits() -> None:
    feats = {"digest": R.RouteFeatures(keywords=2, patterns=1, similarity=0.80),
             "trend": R.RouteFeatures(keywords=0, patterns=0, similarity=0.78)}
    p = R.domain_probabilities(feats)
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-3)
    gap = (2 * R.W_KEYWORD + R.W_PATTERN + 0.02 * R.W_SIMILARITY)
    assert p["digest"] == pytest.approx(1 / (1 + math.exp(-gap)), abs=1e-3)
    # One more pattern hit for trend moves probability towards trend.
    more = {**feats, "trend": dataclasses.replace(feats["trend"], patterns=1)}
    assert R.domain_probabilities(more)["trend"] > p["trend"]


def test_llm_vote_is_combined_by_bayes_rule() -> None:
    post = R.combine_llm_vote({"digest": 0.6, "trend": 0.4}, "trend", accuracy=0.8)
    assert post["trend"] == pytest.approx(0.32 / 0.44, abs=1e-4)
    assert post["digest"] == pytest.approx(0.12 / 0.44, abs=1e-4)
    # A coin-flip voter changes nothing; three domains share the wrong mass equally.
    assert R.combine_llm_vote({"digest": 0.6, "trend": 0.4}, "trend", accuracy=0.5) == {"digest": 0.6, "trend": 0.4}
    three = R.combine_llm_vote({"a": 0.5, "b": 0.25, "c": 0.25}, "b", accuracy=0.6)
    assert three["b"] == pytest.approx(0.15 / (0.5 * 0.2 + 0.15 + 0.25 * 0.2), abs=1e-4)


# --- heuristics over the shipped YAMLs --------------------------------------------


@pytest.mark.parametrize("query", [
    "Which packages had the most uploads in 2024?",
    "Top 5 maintainers by number of uploads",
    "Show upload activity per month for 2025",
    "How many CVE fixes did curl get each quarter?",
    "Какие пакеты чаще всего обновлялись в 2024 году?",
    "Покажи активность загрузок по месяцам",
    "Рейтинг мейнтейнеров по числу загрузок",
    # "Какие исправления" lists fixes (digest) unless the question compares or ranks them
    "Какие исправления стали встречаться чаще по сравнению с прошлым годом?",
])
def test_ranking_and_time_series_questions_reach_trend(tmp_path: Path, query: str) -> None:
    services, model = make_services(tmp_path, ['{"domain": "digest"}'])
    out = run_route(services, query)
    assert out["domain"] == "trend", out["route"]
    assert out["route"]["method"] == "heuristic" and model.calls == 0


@pytest.mark.parametrize("query", [
    "Which upload fixed CVE-2025-9230?",
    "What changed in curl since January?",
    "Summarize the latest openssl uploads",
    "В какой версии закрыт баг #1109876?",
    "Что нового в openssl с марта?",
    "List all CVEs fixed in openssl in 2024.",
])
def test_what_changed_and_id_lookups_reach_digest(tmp_path: Path, query: str) -> None:
    services, model = make_services(tmp_path, ['{"domain": "trend"}'])
    out = run_route(services, query)
    assert out["domain"] == "digest", out["route"]
    assert out["route"]["method"] == "heuristic" and model.calls == 0


def test_confident_heuristic_reports_its_probability_and_skips_the_llm(tmp_path: Path) -> None:
    services, model = make_services(tmp_path, ['{"domain": "trend"}'])
    query = "Which upload fixed CVE-2025-9230?"
    r = run_route(services, query)["route"]
    assert r["method"] == "heuristic" and r["domain"] == "digest"
    assert r["confidence"] == R.heuristic_scores(services, query)["digest"]
    assert r["confidence"] >= services.settings.router.confidence_threshold
    assert model.calls == 0 and r["qos"] in {"interactive", "thorough"}


# --- LLM branches -----------------------------------------------------------------


def test_unsure_heuristics_ask_the_llm_and_its_vote_counts(tmp_path: Path) -> None:
    services, model = make_services(tmp_path, ['{"domain": "trend"}'], confidence_threshold=1.0,
                                    llm_vote_accuracy=0.9)
    prior = R.heuristic_scores(services, AMBIGUOUS)
    assert max(prior.values()) < 0.9  # genuinely unsure, so a 0.9-accurate vote decides
    out = run_route(services, AMBIGUOUS)
    r = out["route"]
    assert model.calls == 1
    assert (r["method"], r["domain"], r["llm_vote"]) == ("llm", "trend", "trend")
    assert r["confidence"] == R.combine_llm_vote(prior, "trend", accuracy=0.9)["trend"]
    assert r["scores"] == prior  # the heuristic probabilities stay in the manifest
    assert out["spend"][-1]["usage"]["llm_calls"] == 1


def test_llm_vote_with_the_shipped_accuracy(tmp_path: Path) -> None:
    services, _ = make_services(tmp_path, ['"trend"'], confidence_threshold=1.0)  # bare string form
    prior = R.heuristic_scores(services, AMBIGUOUS)
    post = R.combine_llm_vote(prior, "trend", accuracy=services.settings.router.llm_vote_accuracy)
    r = run_route(services, AMBIGUOUS)["route"]
    best = max(post, key=lambda d: (post[d], d == "digest"))
    assert (r["method"], r["domain"], r["confidence"]) == ("llm", best, post[best])


def test_llm_timeout_falls_back_to_the_heuristic_guess_in_time(tmp_path: Path) -> None:
    services, model = make_services(tmp_path, ['{"domain": "trend"}'], sleep=1.5,
                                    confidence_threshold=1.0, llm_timeout_ms=50)
    prior = R.heuristic_scores(services, AMBIGUOUS)
    best = max(prior, key=lambda d: (prior[d], d == "digest"))
    t0 = time.perf_counter()
    out = run_route(services, AMBIGUOUS)
    assert time.perf_counter() - t0 < 1.0  # the 1.5 s fake is not waited for
    r = out["route"]
    assert (r["method"], r["domain"], r["confidence"]) == ("fallback", best, prior[best])
    assert [e["type"] for e in out["events"]] == ["fallback_used"]
    assert "BackendTimeoutError" in out["events"][0]["error"]
    assert len(services.router_cache) == 0  # a timeout is not remembered for an hour


def test_junk_reply_falls_back(tmp_path: Path) -> None:
    services, model = make_services(tmp_path, ["I would say the second one, probably."],
                                    confidence_threshold=1.0)
    prior = R.heuristic_scores(services, AMBIGUOUS)
    best = max(prior, key=lambda d: (prior[d], d == "digest"))
    out = run_route(services, AMBIGUOUS)
    r = out["route"]
    assert model.calls == 1
    assert (r["method"], r["domain"], r["confidence"]) == ("fallback", best, prior[best])
    assert "named no domain" in out["events"][0]["error"]


@pytest.mark.parametrize("reply", ['{"domain": "weather"}', '"weather"', '["trend"]', "42", ""])
def test_unknown_domain_in_reply_falls_back(tmp_path: Path, reply: str) -> None:
    services, _ = make_services(tmp_path, [reply], confidence_threshold=1.0)
    prior = R.heuristic_scores(services, AMBIGUOUS)
    best = max(prior, key=lambda d: (prior[d], d == "digest"))
    r = run_route(services, AMBIGUOUS)["route"]
    assert (r["method"], r["domain"], r["confidence"]) == ("fallback", best, prior[best])


def test_exhausted_budget_falls_back_without_calling_the_llm(tmp_path: Path) -> None:
    services, model = make_services(tmp_path, ['{"domain": "trend"}'], confidence_threshold=1.0)
    spent = {"llm_calls": services.settings.budgets.max_llm_calls}
    out = run_route(services, AMBIGUOUS, usage=spent)
    r = out["route"]
    assert model.calls == 0
    assert r["method"] == "fallback"
    assert "BudgetExceededError" in out["events"][0]["error"]
    assert "llm_calls" not in out["spend"][-1]["usage"]


def test_second_identical_question_is_a_cache_hit(tmp_path: Path) -> None:
    services, model = make_services(tmp_path, ['{"domain": "trend"}'], confidence_threshold=1.0)
    first = run_route(services, AMBIGUOUS)["route"]
    again = run_route(services, AMBIGUOUS)
    assert model.calls == 1
    assert again["route"]["method"] == "cache"
    assert (again["route"]["domain"], again["route"]["confidence"]) == (first["domain"], first["confidence"])
    assert "llm_calls" not in again["spend"][-1]["usage"]


def test_forced_domain_skips_everything(tmp_path: Path) -> None:
    services, model = make_services(tmp_path, ['{"domain": "digest"}'], confidence_threshold=1.0)
    out = run_route(services, "Which upload fixed CVE-2025-9230?", domain="trend")
    r = out["route"]
    assert (r["method"], r["domain"], r["confidence"]) == ("forced", "trend", 1.0)
    assert model.calls == 0 and len(services.router_cache) == 0


# --- the development set ----------------------------------------------------------


def test_dev_set_is_labelled_bilingual_and_not_copied_from_the_yamls(tmp_path: Path) -> None:
    services, _ = make_services(tmp_path, ["{}"])
    rows = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 150
    assert {r["domain"] for r in rows} == set(services.domains.names())
    assert {r["lang"] for r in rows} == {"en", "ru"}
    norm = lambda q: " ".join(q.lower().split()).rstrip("?.!")  # noqa: E731
    examples = {norm(e) for d in services.domains for e in d.routing.examples}
    assert not [r["query"] for r in rows if norm(r["query"]) in examples]
    assert len({norm(r["query"]) for r in rows}) == len(rows)
