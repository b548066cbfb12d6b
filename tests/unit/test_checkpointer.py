"""The SQLite checkpointer a KnowledgeOS keeps open: one per instance for every event loop,
checkpoints committed before a run returns, LangGraph's checkpointer contract (its
conformance suite), each channel value stored once per version, and databases of the
older layout (LangGraph's own saver) still read and continued."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from knowledge_os.errors import BackendError
from knowledge_os.graph import checkpointer as checkpointer_module
from knowledge_os.graph.checkpointer import SqliteSaverInThreads, open_sqlite_saver
from knowledge_os.settings import Settings
from tests.unit.conftest import make_kos
from tests.unit.test_runs_and_threads import failing_once

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


class OldLayoutSaver(SqliteSaverInThreads):
    """The saver as it was before ``checkpoint_blobs``: LangGraph's ``SqliteSaver`` (the
    whole state in each checkpoint row) with our async wrappers."""

    get_tuple = SqliteSaver.get_tuple
    list = SqliteSaver.list
    put = SqliteSaver.put
    delete_thread = SqliteSaver.delete_thread
    get_delta_channel_history = SqliteSaver.get_delta_channel_history


def rows(path: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, args).fetchall()


def blobs_by_channel(path: Path, thread_id: str) -> dict[str, int]:
    return dict(rows(path, "SELECT channel, count(*) FROM checkpoint_blobs WHERE thread_id = ? GROUP BY channel",
                     thread_id))


@checkpointer_test(name="SqliteSaverInThreads")
async def our_saver() -> AsyncIterator[SqliteSaverInThreads]:
    with tempfile.TemporaryDirectory() as tmp:
        saver = open_sqlite_saver(Settings(home=Path(tmp) / ".kos"))
        try:
            yield saver
        finally:
            saver.close()


@checkpointer_test(name="InMemorySaver")
async def memory_saver() -> AsyncIterator[InMemorySaver]:
    yield InMemorySaver()


@pytest.mark.parametrize("registered", [our_saver, memory_saver], ids=lambda r: r.name)
async def test_saver_passes_langgraphs_checkpointer_conformance_suite(registered):
    """langgraph-checkpoint-conformance's base capabilities (put, put_writes, get_tuple,
    list with metadata filters and ``before``, delete_thread); LangGraph's in-memory saver
    runs the same suite as the reference."""
    report = await validate(registered)
    base = {cap: result for cap, result in report.results.items()
            if cap in ("put", "put_writes", "get_tuple", "list", "delete_thread")}
    assert len(base) == 5
    assert {cap: (r.passed, r.failures) for cap, r in base.items()} == {cap: (True, []) for cap in base}


@pytest.fixture
def blob_graph(tmp_path):
    """(checkpoint file, its SqliteSaverInThreads, our graph compiled with it); closed after."""
    from knowledge_os.graph.builder import builder

    settings = Settings(home=tmp_path / ".kos")
    saver = open_sqlite_saver(settings)
    try:
        yield settings.checkpoint_path, saver, builder.compile(checkpointer=saver)
    finally:
        saver.close()


async def test_values_are_stored_once_per_channel_version_and_read_back(blob_graph):
    """Round trip through the blob layout: a step that leaves a channel alone writes no
    blob of it; every checkpoint reads back its whole state, the older ones included."""
    path, saver, graph = blob_graph
    config = {"configurable": {"thread_id": "t1"}}
    history = [{"run_id": f"r{i}", "query": "q", "domain": "digest", "answer": "x" * 2000} for i in range(10)]
    docs = [{"id": f"deb:a:{i}", "title": f"a {i}", "text": "body"} for i in range(8)]
    await graph.aupdate_state(config, {"query": "hello", "history": history, "documents": docs,
                                       "candidates": [{"answer": "short"}]}, as_node="cache_lookup")
    assert blobs_by_channel(path, "t1") == {"history": 1, "documents": 1}  # small values stay in the row
    for n in range(3):  # three checkpoints that leave history and documents alone
        await graph.aupdate_state(config, {"answer": f"draft {n}", "replans": n}, as_node="verify")
    await graph.aupdate_state(config, {"documents": [*docs, {"id": "deb:b:8"}]}, as_node="execute")
    assert blobs_by_channel(path, "t1") == {"history": 1, "documents": 2}  # one more version, one more row
    assert {t for (t,) in rows(path, "SELECT DISTINCT type FROM checkpoints")} == {"blobs+msgpack"}
    assert all(len(b) < 3000 for (b,) in rows(path, "SELECT checkpoint FROM checkpoints"))  # no history inside

    snapshots = [s async for s in graph.aget_state_history(config)]
    assert len(snapshots) == 5
    latest = snapshots[0].values
    assert (latest["query"], latest["answer"], latest["replans"]) == ("hello", "draft 2", 2)
    assert latest["history"] == history and latest["candidates"] == [{"answer": "short"}]
    assert [d["id"] for d in latest["documents"]] == [*(d["id"] for d in docs), "deb:b:8"]
    assert snapshots[1].values["documents"] == docs  # the version it had
    assert all(s.values["history"] == history for s in snapshots)

    await saver.adelete_thread("t1")
    assert await saver.aget_tuple(config) is None
    assert blobs_by_channel(path, "t1") == {} and checkpoints_on_disk(path, "t1") == 0


async def test_keep_latest_deletes_the_values_only_older_checkpoints_referenced(blob_graph):
    path, saver, graph = blob_graph
    config = {"configurable": {"thread_id": "t"}}
    history = [{"run_id": f"r{i}", "query": "q", "domain": "digest", "answer": "a"} for i in range(9)]
    docs = [{"id": f"deb:a:{i}"} for i in range(8)]
    await graph.aupdate_state(config, {"history": history, "documents": docs}, as_node="cache_lookup")
    await graph.aupdate_state(config, {"documents": [*docs, {"id": "deb:b:9"}]}, as_node="execute")
    await saver.aput_writes((await saver.aget_tuple(config)).config, [("answer", "pending")], "task-1")
    await graph.aupdate_state(config, {"answer": "last"}, as_node="verify")
    assert blobs_by_channel(path, "t") == {"history": 1, "documents": 2}
    before = (await graph.aget_state(config)).values
    assert saver.keep_latest("t") == 2
    assert checkpoints_on_disk(path, "t") == 1
    assert blobs_by_channel(path, "t") == {"history": 1, "documents": 1}  # the first documents went
    assert rows(path, "SELECT count(*) FROM writes WHERE thread_id = 't'") == [(0,)]
    assert (await graph.aget_state(config)).values == before


async def test_checkpoints_of_the_older_layout_are_read_and_continued(tmp_path):
    """A checkpoint database written before the blob layout (LangGraph's own saver) is
    read as it was, and a thread continues from it: the first new checkpoint stores every
    value it carries over, so the state stays whole. LangGraph's saver then refuses the
    new rows instead of reading a state with channels missing."""
    from knowledge_os.graph.builder import builder

    settings = Settings(home=tmp_path / ".kos")
    path = settings.checkpoint_path
    config = {"configurable": {"thread_id": "old"}}
    history = [{"run_id": f"r{i}", "query": "q", "domain": "digest", "answer": "an answer"} for i in range(10)]
    path.parent.mkdir(parents=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as theirs:
        graph = builder.compile(checkpointer=theirs)
        await graph.aupdate_state(config, {"query": "hello", "history": history}, as_node="cache_lookup")
        before = await theirs.aget_tuple(config)
        await theirs.aput_writes(before.config, [("answer", "from the library")], "task-1")

    saver = open_sqlite_saver(settings)
    try:
        got = await saver.aget_tuple(config)
        assert got.checkpoint["id"] == before.checkpoint["id"]
        assert got.checkpoint["channel_values"] == before.checkpoint["channel_values"]
        assert ("task-1", "answer", "from the library") in got.pending_writes
        ours = builder.compile(checkpointer=saver)
        await ours.aupdate_state(config, {"answer": "continued"}, as_node="verify")
        latest = (await ours.aget_state(config)).values
        assert (latest["query"], latest["answer"], latest["history"]) == ("hello", "continued", history)
        assert blobs_by_channel(path, "old") == {"history": 1}  # carried over from the old row, once
        assert [s.values["history"] async for s in ours.aget_state_history(config)] == [history, history]
    finally:
        saver.close()
    async with AsyncSqliteSaver.from_conn_string(str(path)) as theirs:
        with pytest.raises(NotImplementedError, match="blobs\\+msgpack"):
            await theirs.aget_tuple(config)


def test_a_run_resumes_from_a_checkpoint_of_the_older_layout(tmp_path, corpus_dir, monkeypatch):
    """A run that failed mid-graph under the older layout is resumed under the new one."""
    import knowledge_os.domains.steps as steps

    monkeypatch.setattr(checkpointer_module, "open_sqlite_saver",
                        lambda s: OldLayoutSaver(sqlite3.connect(str(s.checkpoint_path), check_same_thread=False)))
    kos = make_kos(tmp_path, ["openssl fixed it [1]."])
    assert kos.ingest([corpus_dir]).problems == []
    monkeypatch.setitem(steps.STEPS, "retrieve", failing_once(steps.STEPS["retrieve"]))
    with pytest.raises(RuntimeError, match="worker died"):
        kos.run(QUESTION, as_of=AS_OF, thread_id="t-old", use_cache=False)
    kos.close()
    path = kos.settings.checkpoint_path
    assert {t for (t,) in rows(path, "SELECT DISTINCT type FROM checkpoints")} == {"msgpack"}
    monkeypatch.undo()  # the saver of this version again, retrieve working

    done = kos.resume("t-old")
    assert [c.id for c in done.citations] == ["deb:openssl:3.0.19-1~deb12u2"]
    assert done.manifest["plan"]["steps"]  # the plan made before the failure was kept
    types = [t for (t,) in rows(path, "SELECT type FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id",
                                "t-old")]
    assert "msgpack" in types and types[-1] == "blobs+msgpack"
    kos.close()


def test_an_unreadable_checkpoint_names_the_file_and_thread(tmp_path):
    settings = Settings(home=tmp_path / ".kos")
    saver = open_sqlite_saver(settings)
    try:
        saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
                  {**empty_checkpoint(), "channel_values": {"documents": list(range(10))},
                   "channel_versions": {"documents": "1"}}, {}, {"documents": "1"})
        with sqlite3.connect(settings.checkpoint_path) as conn:
            conn.execute("UPDATE checkpoint_blobs SET blob = x'c1'")  # 0xc1: never used by msgpack
        with pytest.raises(BackendError, match=r"checkpoints\.db: cannot read checkpoint .* of thread 't'"):
            saver.get_tuple({"configurable": {"thread_id": "t"}})
        with sqlite3.connect(settings.checkpoint_path) as conn:
            conn.execute("DELETE FROM checkpoint_blobs")  # a value lost: an error, not a state without it
        with pytest.raises(BackendError, match=r"checkpoints\.db: .* no stored value of channel\(s\) documents"):
            saver.get_tuple({"configurable": {"thread_id": "t"}})
    finally:
        saver.close()
