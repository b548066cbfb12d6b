"""The seed's metrics (observability/metrics.py docstring): each one is moved by a real
run, cache lookup or dead letter and read back from the Prometheus text of /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from knowledge_os.api import KnowledgeOS
from knowledge_os.cache.answers import AnswerCache
from knowledge_os.memory.dlq_worker import work_due
from knowledge_os.memory.factory import make_dead_letter_queue
from knowledge_os.observability.metrics import CACHES, Metrics
from knowledge_os.server import create_app
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore, fail_first_call
from tests.unit.conftest import SUMMARY

Q = "What changed in openssl since March?"
AS_OF = "2026-11-22"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, parsed from the exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def make_kos(tmp_path: Path, corpus_dir: Path, **settings_kw: Any) -> KnowledgeOS:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    services = Services(Settings(home=tmp_path / ".kos", **settings_kw),
                        chat_model=FakeListChatModel(responses=[SUMMARY]),
                        embedder=HashEmbedder(), vector_store=MemoryVectorStore())
    kos = KnowledgeOS(services=services)
    assert kos.ingest([corpus_dir]).problems == []
    return kos


async def scrape(kos: KnowledgeOS, *bodies: dict[str, Any]) -> str:
    app = create_app(kos)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://kos") as client:
        for body in bodies:
            await client.post("/v1/runs", json={"as_of": AS_OF, **body})
        return (await client.get("/metrics")).text


async def test_run_histograms_qos_caches_and_events(tmp_path, corpus_dir):
    kos = make_kos(tmp_path, corpus_dir)
    text = await scrape(kos, {"query": Q, "path": "fast"}, {"query": Q, "path": "fast"},
                        {"query": Q, "path": "smart", "use_cache": False})
    # two Fast Path runs (the second an exact answer-cache hit), one Smart Path run
    assert value(text, "kos_fast_path_latency_seconds_count") == 2
    assert value(text, "kos_smart_path_latency_seconds_count") == 1
    assert value(text, "kos_fast_path_latency_seconds_sum") > 0
    for name in ("kos_llm_calls_per_request", "kos_tokens_per_request", "kos_agent_steps_per_request"):
        assert value(text, f"{name}_count", path="fast") == 2
        assert value(text, f"{name}_count", path="smart") == 1
    assert value(text, "kos_llm_calls_per_request_sum", path="fast") >= 1
    assert value(text, "kos_tokens_per_request_sum", path="fast") > 0
    # plan steps executed: the Fast Path micro-plan has 1..3, the cache hit none
    assert 1 <= value(text, "kos_agent_steps_per_request_sum", path="fast") <= 3
    assert value(text, "kos_agent_steps_per_request_sum", path="smart") >= 1
    levels = {q: value(text, "kos_qos_level_requests_total", qos=q)
              for q in ("interactive", "standard", "thorough", "none")}
    assert sum(levels.values()) == 3
    assert value(text, "kos_cache_hits_total", cache="answer_exact") == 1
    assert value(text, "kos_cache_misses_total", cache="answer_exact") == 1  # the smart run skips the cache
    assert value(text, "kos_cache_misses_total", cache="answer_near") == 1
    assert value(text, "kos_cache_hits_total", cache="embedding") >= 1
    assert value(text, "kos_cache_misses_total", cache="embedding") >= 1
    assert value(text, "kos_cache_misses_total", cache="retrieval") >= 1
    assert value(text, "kos_cache_misses_total", cache="node") >= 1
    assert value(text, "kos_cache_misses_total", cache="router") + value(text, "kos_cache_hits_total",
                                                                           cache="router") >= 1
    for cache in CACHES:  # every cache is exported, moved or not
        assert ("kos_cache_hits_total", (("cache", cache),)) in samples(text)
    # run_started + run_completed at least, per run
    assert value(text, "kos_episodic_events_written_total") >= 6
    await kos.aclose()


async def test_budget_exceeded_counts_the_budget_that_ran_out(tmp_path, corpus_dir, monkeypatch):
    from knowledge_os.errors import BudgetExceededError
    from knowledge_os.llm.budget import Budget

    def no_steps(self: Budget, usage: Any, *, next_call: bool = False, next_step: bool = False) -> None:
        if next_step:  # execute's first step already finds the step budget spent
            raise BudgetExceededError("steps", self.max_steps)

    monkeypatch.setattr(Budget, "check", no_steps)
    kos = make_kos(tmp_path, corpus_dir)
    text = await scrape(kos, {"query": Q, "path": "smart", "use_cache": False})
    assert value(text, "kos_request_budget_exceeded_total", budget="steps") == 1  # once per run
    assert value(text, "kos_request_budget_exceeded_total", budget="llm_calls") == 0
    await kos.aclose()


async def test_dead_letters_enqueued_pending_reprocessed(tmp_path, corpus_dir, monkeypatch):
    import knowledge_os.nodes.cache_lookup as cache_lookup_module

    kos = make_kos(tmp_path, corpus_dir)
    fail_first_call(monkeypatch, cache_lookup_module, "analyze_query")
    text = await scrape(kos, {"query": Q})
    assert value(text, "kos_dead_letters_enqueued_total") == 1
    assert value(text, "kos_dead_letters", status="pending") == 1
    queue = make_dead_letter_queue(kos.settings)

    async def resume(letter: Any) -> None:
        await kos.aresume(letter.thread_id)

    from datetime import UTC, datetime, timedelta

    counts = await work_due(queue, resume, now=datetime.now(UTC) + timedelta(days=1), metrics=kos.services.metrics)
    await queue.close()
    assert counts["reprocessed"] == 1
    text = await scrape(kos)
    assert value(text, "kos_dead_letters_reprocessed_total") == 1
    assert value(text, "kos_dead_letters", status="pending") == 0
    assert value(text, "kos_dead_letters", status="reprocessed") == 1
    await kos.aclose()


async def test_permanent_failures_are_counted():
    metrics = Metrics()

    class Queue:
        async def claim_due(self, **kw: Any) -> list:
            return [type("L", (), {"id": 1, "run_id": "r", "thread_id": "t"})()]

        async def mark_failed(self, letter_id: int, **kw: Any) -> Any:
            return type("D", (), {"status": "permanent_failure", "attempts": 3})()

    async def boom(letter: Any) -> None:
        raise RuntimeError("still broken")

    counts = await work_due(Queue(), boom, metrics=metrics)  # type: ignore[arg-type]
    assert counts["permanent_failure"] == 1
    assert value(metrics.exposition(), "kos_dead_letters_permanent_failures_total") == 1


def test_answer_cache_counts_exact_and_near_hits(tmp_path):
    cache = AnswerCache(tmp_path / "a.db", ttl_s=3600)
    v = np.ones(8, dtype=np.float32) / np.sqrt(8)
    assert cache.get_exact("k") is None
    cache.put(key="k", scope="s", signature="sig", domain="trend", query="q", embedding=v, result={"a": 1})
    assert cache.get_exact("k") == {"a": 1}
    assert cache.get_near(scope="s", signature="sig", embed=lambda: v, thresholds={"trend": 0.9}) is not None
    assert cache.get_near(scope="s", signature="other", embed=lambda: v, thresholds={"trend": 0.9}) is None
    assert cache.counts == {"answer_exact": [1, 1], "answer_near": [1, 1]}
    cache.close()


def test_labels_are_bounded():
    m = Metrics()
    m.observe_run(domain="trend", path="fast", route_method="heuristic", status="ok", latency_s=0.1,
                  usage={"llm_calls": 1}, limits={}, quality=None, timings_ms={}, cache_outcome="miss",
                  qos="gold-plated", budgets_exceeded=["llm_calls", "llm_calls", "bogus"])
    text = m.exposition()
    assert value(text, "kos_qos_level_requests_total", qos="none") == 1
    assert value(text, "kos_request_budget_exceeded_total", budget="llm_calls") == 1
    assert "bogus" not in text and "gold-plated" not in text
