"""Which work of a run leaves the event loop for a worker thread.

A hand-off costs process CPU at every node (``benchmarks/bench_overhead.py``), so
``route``, ``plan``, ``check``, ``rank`` and ``cache_store`` run on the loop and hand off
only their blocking work: a routing decision the router cache lacks (the query embedding,
maybe the LLM), the Smart Path's LLM plan, the store lookups of named ids, the judge's LLM
calls, the answer-cache write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

AS_OF = "2026-11-22"
LOOP_NODES = {"route", "plan", "check", "verify", "rank", "cache_store", "finalize"}


@pytest.fixture
def handed_off(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions given to ``asyncio.to_thread``, in order."""
    names: list[str] = []
    real = asyncio.to_thread

    async def record(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        names.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", record)
    return names


def test_a_fast_run_hands_off_only_the_routing_decision_the_cache_lacks(kos_factory, handed_off) -> None:
    kos = kos_factory()
    first = kos.run("What changed in openssl since March?", as_of=AS_OF, use_cache=False)
    assert first.route.method == "heuristic" and first.path == "fast"
    assert handed_off.count("_decide") == 1
    assert not LOOP_NODES & set(handed_off)
    assert not {"_llm_plan", "_missing_in_corpus", "judge_pair"} & set(handed_off)
    handed_off.clear()
    again = kos.run("What changed in openssl since March?", as_of=AS_OF, use_cache=False)
    assert again.route.method == "cache"
    assert "_decide" not in handed_off and not LOOP_NODES & set(handed_off)


def test_named_ids_are_looked_up_in_a_worker_thread(kos_factory, handed_off) -> None:
    kos = kos_factory(responses=["The fix is in [1]."])
    r = kos.run("Which upload fixed CVE-2025-9230?", domain="digest", as_of=AS_OF, use_cache=False)
    assert r.citations[0].id == "deb:openssl:3.0.17-1~deb12u3"
    assert handed_off.count("_missing_in_corpus") == 1
    assert "check" not in handed_off


def test_the_smart_paths_llm_plan_is_made_in_a_worker_thread(kos_factory, handed_off) -> None:
    kos = kos_factory(responses=['{"steps": ["retrieve", "summarise"], "top_k": 20, "graph_depth": 1}',
                                 "openssl fixed CVE-2026-28387 [1].", "openssl fixed CVE-2026-28387 [1]."])
    r = kos.run("What changed in openssl since March?", path="smart", as_of=AS_OF, use_cache=False)
    assert r.path == "smart"
    assert handed_off.count("_llm_plan") == 1
    assert "plan" not in handed_off


def test_the_answer_cache_write_alone_is_handed_off_and_only_when_the_run_has_a_key(kos_factory, handed_off) -> None:
    kos = kos_factory()
    off = kos.run("What changed in openssl since March?", as_of=AS_OF, use_cache=False)
    assert off.quality.passed and "_store" not in handed_off  # no key: cache_store stays on the loop
    handed_off.clear()
    first = kos.run("What changed in openssl since March?", as_of=AS_OF, use_cache=True)
    assert first.quality.passed and first.manifest["cache"]["hit"] is False
    assert handed_off.count("_store") == 1 and "cache_store" not in handed_off
    again = kos.run("What changed in openssl since March?", as_of=AS_OF, use_cache=True)
    assert again.manifest["cache"]["hit"] is True and again.answer == first.answer  # the write happened
