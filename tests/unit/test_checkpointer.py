"""The SQLite checkpointer a KnowledgeOS keeps open: one per instance for every event loop,
checkpoints committed before a run returns, the same rows LangGraph's own saver reads."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from knowledge_os.graph import checkpointer as checkpointer_module
from knowledge_os.graph.checkpointer import SqliteSaverInThreads, open_sqlite_saver
from knowledge_os.settings import Settings
from tests.unit.conftest import make_kos

AS_OF = "2026-11-22"
QUESTION = "What changed in openssl since March?"


def checkpoints_on_disk(path: Path, thread_id: str) -> int:
    """Checkpoints of a thread, read through a connection of its own (what another
    process, or this one after a crash, would find)."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread_id,)).fetchone()[0]


def test_one_saver_serves_every_run_and_loop_and_is_closed_by_close(tmp_path, corpus_dir, monkeypatch):
    opened: list[SqliteSaverInThreads] = []
    original = checkpointer_module.open_sqlite_saver

    def counting(settings: Settings) -> SqliteSaverInThreads:
        opened.append(original(settings))
        return opened[-1]

    monkeypatch.setattr(checkpointer_module, "open_sqlite_saver", counting)
    kos = make_kos(tmp_path, ["openssl fixed it [1]."])
    assert kos.ingest([corpus_dir]).problems == []
    path = kos.settings.checkpoint_path
    first = kos.run(QUESTION, as_of=AS_OF)
    hit = kos.run(QUESTION, as_of=AS_OF)  # an answer-cache hit checkpoints its thread too
    assert hit.manifest["cache"]["kind"] == "exact"
    other_loop = asyncio.run(kos.arun("What changed in curl since March?", as_of=AS_OF))  # not the sync loop
    assert len(opened) == 1
    for run in (first, hit, other_loop):  # committed before the run returned, while still open
        assert checkpoints_on_disk(path, run.thread_id) >= 3
    assert kos.get_thread(hit.thread_id).answer == first.answer
    kos.close()
    with pytest.raises(sqlite3.ProgrammingError):  # closed, not left to the garbage collector
        opened[0].get_tuple({"configurable": {"thread_id": first.thread_id, "checkpoint_ns": ""}})
    again = kos.run(QUESTION, as_of=AS_OF)  # usable after close: a new saver
    assert len(opened) == 2 and again.manifest["cache"]["kind"] == "exact"
    kos.close()


async def test_library_saver_reads_what_it_wrote_and_deletes_threads(tmp_path):
    """Same tables and serialisation as LangGraph's AsyncSqliteSaver, in both directions."""
    settings = Settings(home=tmp_path / ".kos")
    saver = open_sqlite_saver(settings)
    try:
        from knowledge_os.graph.builder import builder

        ours = builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "t1"}}
        await ours.aupdate_state(config, {"query": "hello"}, as_node="cache_lookup")
        async with AsyncSqliteSaver.from_conn_string(str(settings.checkpoint_path)) as theirs:
            got = await theirs.aget_tuple(config)
            assert got is not None and got.checkpoint["channel_values"]["query"] == "hello"
            await theirs.aput_writes(got.config, [("answer", "from the library")], "task-1")
        back = await saver.aget_tuple(config)
        assert back.checkpoint["id"] == got.checkpoint["id"]
        assert ("task-1", "answer", "from the library") in back.pending_writes
        assert [c.checkpoint["id"] async for c in saver.alist(config)][0] == got.checkpoint["id"]
        await saver.adelete_thread("t1")
        assert await saver.aget_tuple(config) is None
        assert checkpoints_on_disk(settings.checkpoint_path, "t1") == 0
    finally:
        saver.close()
