"""Everything that grows with use has a bound (a setting): the LangGraph node cache, a
thread's history, one run's events, the answer-cache rows."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from knowledge_os.cache.answers import AnswerCache
from knowledge_os.cache.node_cache import BoundedMemoryCache

AS_OF = "2026-11-22"


def test_node_cache_keeps_the_most_recently_used_entries():
    cache = BoundedMemoryCache(max_entries=2)
    ns = ("execute",)
    cache.set({(ns, "a"): ({"v": 1}, None), (ns, "b"): ({"v": 2}, None)})
    assert cache.get([(ns, "a")]) == {(ns, "a"): {"v": 1}}  # "a" is now the most recent
    cache.set({(ns, "c"): ({"v": 3}, None)})
    assert len(cache) == 2
    assert set(cache.get([(ns, "a"), (ns, "b"), (ns, "c")])) == {(ns, "a"), (ns, "c")}  # "b" went


def test_node_cache_drops_expired_entries_and_rejects_a_zero_bound():
    cache = BoundedMemoryCache(max_entries=5)
    ns = ("execute",)
    cache.set({(ns, "old"): ("x", -1), (ns, "new"): ("y", 60)})
    assert cache.get([(ns, "old"), (ns, "new")]) == {(ns, "new"): "y"}
    assert len(cache) == 1
    with pytest.raises(ValueError, match="max_entries"):
        BoundedMemoryCache(max_entries=0)


def test_the_graphs_node_cache_follows_the_setting(kos_factory):
    kos = kos_factory(responses=["openssl fixed CVE-2026-28387 [1]."] * 10,
                      cache={"answer_cache": False, "node_max_entries": 1})
    kos.run("What changed in openssl since March?", as_of=AS_OF)
    kos.run("What changed in curl since March?", as_of=AS_OF)  # evicts the openssl entry
    again = kos.run("What changed in openssl since March?", as_of=AS_OF)
    assert "node_hits" not in again.manifest["cache"]
    assert len(kos.services.node_cache) == 1
    control = kos_factory(responses=["openssl fixed CVE-2026-28387 [1]."] * 10, cache={"answer_cache": False})
    control.run("What changed in openssl since March?", as_of=AS_OF)
    control.run("What changed in curl since March?", as_of=AS_OF)
    assert control.run("What changed in openssl since March?", as_of=AS_OF).manifest["cache"]["node_hits"] == ["execute"]


def test_thread_history_keeps_the_newest_runs(kos_factory):
    kos = kos_factory(storage={"thread_history_max": 2})
    ids = [kos.run(q, as_of=AS_OF, thread_id="t-hist", use_cache=False).run_id
           for q in ("What changed in openssl since March?", "What changed in curl since March?",
                     "Which upload fixed CVE-2025-9230?")]

    async def history() -> list:
        async with kos._graph() as graph:
            return (await graph.aget_state({"configurable": {"thread_id": "t-hist"}})).values["history"]

    assert [h["run_id"] for h in asyncio.run(history())] == ids[1:]


def test_a_run_writes_at_most_run_events_max_events(kos_factory, monkeypatch):
    import knowledge_os.domains.steps as steps

    original = steps.STEPS["group"]

    def noisy_group(ctx):  # a step that raises three events
        ctx.events.extend({"type": f"note_{i}"} for i in range(3))
        original(ctx)

    monkeypatch.setitem(steps.STEPS, "group", noisy_group)
    kos = kos_factory(storage={"run_events_max": 2})
    r = kos.run("What changed in openssl since March?", as_of=AS_OF, use_cache=False)
    raised = r.manifest["counts"]["events"]
    assert raised >= 3

    async def written() -> list[str]:
        memory = await kos.services.episodic_memory()
        return [e.type for e in await memory.recent(entity_id=r.run_id, limit=100)]

    async def raised_events() -> list[dict]:
        async with kos._graph() as graph:
            return (await graph.aget_state({"configurable": {"thread_id": r.thread_id}})).values["events"]

    first_two = [e["type"] for e in asyncio.run(raised_events())[:2]]
    assert sorted(asyncio.run(written())) == sorted([*first_two, "run_completed", "run_started"])
    assert r.manifest["counts"]["events_dropped"] == raised - 2


def test_answer_cache_keeps_at_most_max_entries_rows(tmp_path):
    cache = AnswerCache(tmp_path / "answers.db", ttl_s=3600, max_entries=2)
    v = np.ones(4, dtype=np.float32) / 2
    for i in range(3):
        cache.put(key=f"k{i}", scope="s", signature="g", domain="digest", query=f"q{i}", embedding=v,
                  result={"answer": str(i)})
    assert cache.get_exact("k0") is None  # the oldest went
    assert [cache.get_exact(k)["answer"] for k in ("k1", "k2")] == ["1", "2"]
    cache.close()
