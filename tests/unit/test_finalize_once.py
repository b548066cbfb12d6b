"""finalize writes a run's episodic events once, keyed by its run id, even when it runs
again: a queued job retried after finalize ran resumes the thread from the checkpoint
before it (tests/integration/test_hosts.py covers the queue end to end)."""

from __future__ import annotations

import asyncio

import orjson

from knowledge_os.api import CONTEXT_METADATA_KEY
from knowledge_os.graph.state import Context

AS_OF = "2026-11-22"


async def _replay_finalize(kos, thread: str) -> dict:
    """Run finalize again from the thread's checkpoint before it (as a retried job does)."""
    async with kos._graph() as graph:
        before = [s async for s in graph.aget_state_history({"configurable": {"thread_id": thread}})
                  if s.next == ("finalize",)][0]
        values = orjson.loads(before.metadata[CONTEXT_METADATA_KEY])
        context = Context(**values, services=kos.services)
        return await graph.ainvoke(None, config=before.config, context=context, durability="sync")


def test_finalize_run_again_writes_the_events_and_the_answer_once(kos_factory) -> None:
    kos = kos_factory(responses=["curl fixed a crash [1]."])
    first = kos.run("What changed in curl in 2020?", as_of=AS_OF, thread_id="t-once", use_cache=False)

    async def types() -> list[str]:
        memory = await kos.services.episodic_memory()
        return [e.type for e in await memory.recent(entity_id=first.run_id, limit=100)]

    written = asyncio.run(types())
    assert written.count("run_started") == 1 and written.count("run_completed") == 1
    assert "retry" in written  # a run event besides the two: all of them are kept once

    state = kos._sync(_replay_finalize(kos, "t-once"))
    assert state["run_id"] == first.run_id
    assert sorted(asyncio.run(types())) == sorted(written)  # nothing written a second time
    assert [h["run_id"] for h in state["history"]] == [first.run_id]  # the answer, once


def test_a_new_run_on_the_thread_still_writes_its_events(kos_factory) -> None:
    kos = kos_factory(responses=["openssl fixed two CVEs [1]."])
    a = kos.run("What changed in openssl since March?", as_of=AS_OF, thread_id="t-two", use_cache=False)
    b = kos.run("What changed in openssl since March?", as_of=AS_OF, thread_id="t-two", use_cache=False)

    async def completed(run_id: str) -> int:
        memory = await kos.services.episodic_memory()
        return len(await memory.recent(entity_id=run_id, types=("run_completed",), limit=10))

    assert a.run_id != b.run_id
    assert (asyncio.run(completed(a.run_id)), asyncio.run(completed(b.run_id))) == (1, 1)
