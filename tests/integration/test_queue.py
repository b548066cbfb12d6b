"""Queued runs on Procrastinate against a real PostgreSQL (``KOS_TEST_POSTGRES_DSN``; the
tests use a database of their own, ``<name>_queue``): enqueue, worker, the context of the
job, the thread lock and the queueing lock, the seed's retries and the dead-letter list,
``kos dlq retry``; real ``kos worker`` processes, one of them SIGKILLed mid-run. The in-process tests use fake
models; the process test uses the configured ones."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from tests.integration.conftest import require_service_env

pytestmark = pytest.mark.integration

procrastinate = pytest.importorskip("procrastinate")

from knowledge_os.api import KnowledgeOS  # noqa: E402
from knowledge_os.queue.app import (  # noqa: E402
    SeedRetry,
    aenqueue_resume,
    ensure_schema,
    list_dead_letters,
    make_app,
    retry_dead_letter,
    run_worker,
)
from knowledge_os.services import Services  # noqa: E402
from knowledge_os.settings import Settings  # noqa: E402
from tests.fakes import HashEmbedder, MemoryVectorStore  # noqa: E402

SUMMARY = "openssl fixed two CVEs in April 2026 [1] after importing 3.0.19 [2]."
QUESTION = "What changed in openssl since March?"
AS_OF = "2026-11-22"
KOS = [sys.executable, "-m", "knowledge_os.cli"]


def queue_dsn() -> str:
    """The test server's DSN with the database ``<db>_queue``, created when missing."""
    import psycopg

    base = require_service_env("KOS_TEST_POSTGRES_DSN")
    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/') or 'postgres'}_queue"
    with psycopg.connect(base, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    import psycopg

    dsn = queue_dsn()
    s = Settings(home=tmp_path / ".kos", postgres={"dsn": dsn}, storage={"checkpointer": "postgres"},
                 queue={"backend": "procrastinate", "name": f"kos-test-{time.time_ns()}", "retry_base_s": 0.05,
                        "heartbeat_s": 1.0, "stalled_after_s": 3.0})
    ensure_schema(s)
    with psycopg.connect(dsn, autocommit=True) as conn:  # each test starts with no job
        conn.execute("DELETE FROM procrastinate_jobs")
        conn.execute("DELETE FROM kos_job_failures")
        for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints"):  # and no thread
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None:
                conn.execute(f"DELETE FROM {table}")
    return s


def fake_kos(settings: Settings, corpus_dir: Path | None = None) -> KnowledgeOS:
    services = Services(settings, chat_model=FakeListChatModel(responses=[SUMMARY]),
                        embedder=HashEmbedder(), vector_store=MemoryVectorStore())
    kos = KnowledgeOS(services=services)
    if corpus_dir is not None:
        assert kos.ingest([corpus_dir]).problems == []
    return kos


async def work(settings: Settings, kos: KnowledgeOS, *, concurrency: int = 1) -> None:
    """Worker passes that end when no job is due (``kos worker --burst``), until no job is
    waiting (a pass ends while a job behind a thread lock still waits)."""
    for _ in range(10):
        await run_worker(settings, concurrency=concurrency, wait=False, kos_factory=lambda: kos)
        if not any(r["status"] == "todo" for r in await job_rows(settings)):
            return


async def job_rows(settings: Settings) -> list[dict[str, Any]]:
    app = make_app(settings)
    async with app.open_async():
        return await app.connector.execute_query_all_async(
            "SELECT id, status, attempts, lock, queueing_lock, args FROM procrastinate_jobs ORDER BY id")


def test_seed_retry_policy_matches_the_seed_backoff() -> None:
    from knowledge_os.memory.base import MAX_ATTEMPTS, backoff_s

    seed = SeedRetry()
    assert [seed.delay_s(n) for n in (1, 2, 3)] == [backoff_s(1), backoff_s(2), None]
    assert seed.max_attempts == MAX_ATTEMPTS


async def test_an_enqueued_run_is_answered_by_a_worker_with_its_context(settings, corpus_dir) -> None:
    caller = fake_kos(settings, corpus_dir)
    queued = await caller.aenqueue(QUESTION, thread_id="q-ctx", domain="trend", path="smart",
                                   persona="the security team", as_of=AS_OF, use_cache=False,
                                   qos="thorough")
    assert queued.thread_id == "q-ctx"
    assert await caller.aget_thread("q-ctx") is None  # nothing ran in the caller
    [row] = await job_rows(settings)
    assert (row["status"], row["lock"]) == ("todo", "q-ctx")
    assert row["args"]["persona"] == "the security team" and row["args"]["as_of"] == AS_OF
    assert row["args"]["qos"] == "thorough"

    await work(settings, fake_kos(settings))
    result = await caller.aget_thread("q-ctx")
    assert result is not None and result.answer
    assert (result.domain, result.route.method, result.path) == ("trend", "forced", "smart")
    assert result.manifest["route"]["qos"] == "thorough"
    assert [c.id for c in result.citations] == ["deb:openssl:3.0.19-1~deb12u2"]
    [row] = await job_rows(settings)
    assert row["status"] == "succeeded"
    await caller.aclose()


async def test_the_thread_lock_runs_one_job_per_thread_at_a_time(settings, corpus_dir) -> None:
    caller = fake_kos(settings, corpus_dir)
    worker = fake_kos(settings)
    active: dict[str, int] = {}
    most: dict[str, int] = {}
    original = worker.arun

    async def slow_arun(query: str, **kwargs: Any) -> Any:
        thread = kwargs["thread_id"]
        active[thread] = active.get(thread, 0) + 1
        most[thread] = max(most.get(thread, 0), active[thread])
        most["all"] = max(most.get("all", 0), sum(active.values()))
        await asyncio.sleep(0.5)
        try:
            return await original(query, **kwargs)
        finally:
            active[thread] -= 1

    worker.arun = slow_arun  # type: ignore[method-assign]
    for thread in ("q-lock-a", "q-lock-a", "q-lock-b"):
        await caller.aenqueue(QUESTION, thread_id=thread, as_of=AS_OF, use_cache=False)
    await work(settings, worker, concurrency=3)
    assert most["q-lock-a"] == 1  # same thread: one after the other
    assert most["all"] >= 2  # different threads did run at the same time
    assert [r["status"] for r in await job_rows(settings)] == ["succeeded"] * 3
    await caller.aclose()


async def test_the_queueing_lock_drops_a_duplicate_resume(settings) -> None:
    app = make_app(settings)
    async with app.open_async():
        first = await aenqueue_resume(app, "q-dup")
        second = await aenqueue_resume(app, "q-dup")
        other = await aenqueue_resume(app, "q-dup-other")
    assert first is not None and other is not None
    assert second is None
    rows = await job_rows(settings)
    assert [r["queueing_lock"] for r in rows] == ["resume:q-dup", "resume:q-dup-other"]


async def test_retries_then_dead_letter_then_retry_resumes_from_the_checkpoint(
        settings, corpus_dir, monkeypatch) -> None:
    import knowledge_os.domains.steps as steps

    caller = fake_kos(settings, corpus_dir)
    calls: list[str] = []
    original = steps.STEPS["retrieve"]
    broken = {"on": True}

    def retrieve(*args: Any, **kwargs: Any) -> Any:
        calls.append("retrieve")
        if broken["on"]:
            raise RuntimeError("index unavailable")
        return original(*args, **kwargs)

    monkeypatch.setitem(steps.STEPS, "retrieve", retrieve)
    queued = await caller.aenqueue(QUESTION, thread_id="q-dlq", as_of=AS_OF, use_cache=False)
    worker = fake_kos(settings)
    started = time.monotonic()
    for _ in range(40):  # the retries are due 0.1 s, then 0.2 s after each failure
        await run_worker(settings, wait=False, kos_factory=lambda: worker)
        [row] = await job_rows(settings)
        if row["status"] == "failed":
            break
        await asyncio.sleep(0.1)
    assert row["status"] == "failed" and row["attempts"] == 3
    assert len(calls) == 3
    assert time.monotonic() - started >= 0.1 + 0.2  # the backoff was waited
    seen = worker.services.metrics.snapshot()  # one dead letter, given up after its third attempt
    assert seen["kos_dead_letters_enqueued_total"] == 1
    assert seen["kos_dead_letters_permanent_failures_total"] == 1
    await caller.arefresh_metrics()  # the gauge reads the queue, as kos serve's /metrics does
    assert caller.services.metrics.snapshot()["kos_dead_letters{status=permanent_failure}"] == 1

    app = make_app(settings)
    async with app.open_async():
        [letter] = await list_dead_letters(app, status="permanent_failure")
        assert (letter.id, letter.thread_id, letter.attempts) == (queued.job_id, "q-dlq", 3)
        assert letter.error == "RuntimeError: index unavailable"
        assert letter.checkpoint_id  # the thread's last checkpoint
        assert await list_dead_letters(app, status="reprocessed") == []
        history = [s async for s in _history(caller, "q-dlq")]
        broken["on"] = False
        await retry_dead_letter(app, queued.job_id)
        with pytest.raises(Exception, match="not a permanent failure"):
            await retry_dead_letter(app, queued.job_id)  # it is waiting now
    await work(settings, worker)
    result = await caller.aget_thread("q-dlq")
    assert result is not None and [c.id for c in result.citations] == ["deb:openssl:3.0.19-1~deb12u2"]
    assert len(calls) == 4
    # Resumed from the checkpoint: each node before the failing one ran once, in the first attempt.
    after = [s async for s in _history(caller, "q-dlq")]
    failing = history[0].next
    ran_before = {n for s in history for n in s.next} - set(failing)
    assert ran_before, "no node ran before the failure: the test would prove nothing"
    for node in ran_before:
        assert sum(node in s.next for s in after) == 1, node
    assert len(after) > len(history)
    async with app.open_async():
        [letter] = await list_dead_letters(app)
        assert letter.status == "reprocessed"
    assert worker.services.metrics.snapshot()["kos_dead_letters_reprocessed_total"] == 1
    await caller.arefresh_metrics()
    gauge = caller.services.metrics.snapshot()
    assert (gauge["kos_dead_letters{status=reprocessed}"], gauge["kos_dead_letters{status=permanent_failure}"]) == (1, 0)
    await caller.aclose()


async def _history(kos: KnowledgeOS, thread: str):
    async with kos._graph() as graph:
        async for s in graph.aget_state_history({"configurable": {"thread_id": thread}}):
            yield s


def test_kos_dlq_retry_without_a_queue_says_so(tmp_path) -> None:
    env = {**os.environ, "KOS_HOME": str(tmp_path / ".kos"), "KOS_QUEUE__BACKEND": "none"}
    done = subprocess.run([*KOS, "dlq", "retry", "1"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "queue.backend: procrastinate" in done.stderr


def test_a_real_kos_worker_process_answers_a_run_queued_from_the_cli(settings, corpus_dir, tmp_path) -> None:
    env = {**os.environ, "KOS_HOME": str(settings.home), "KOS_POSTGRES__DSN": settings.postgres.dsn.get_secret_value(),
           "KOS_STORAGE__CHECKPOINTER": "postgres", "KOS_QUEUE__BACKEND": "procrastinate",
           "KOS_QUEUE__NAME": settings.queue.name}
    subprocess.run([*KOS, "ingest", "--json", str(corpus_dir)], env=env, check=True, capture_output=True, timeout=600)
    upgraded = subprocess.run([*KOS, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert upgraded.returncode == 0 and "Procrastinate schema already on" in upgraded.stdout, upgraded.stderr
    queued = subprocess.run([*KOS, "run", "--queue", "--json", "--domain", "trend", "--path", "fast",
                             "--as-of", AS_OF, "--no-cache", QUESTION], env=env, capture_output=True, text=True,
                            timeout=120)
    assert queued.returncode == 0, queued.stderr
    ids = orjson.loads(queued.stdout)
    worker = subprocess.Popen([*KOS, "worker", "--concurrency", "2", "--name", "test-worker"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600
        status = "todo"
        while time.time() < deadline and worker.poll() is None:
            status = asyncio.run(_status(settings, ids["job_id"]))
            if status in ("succeeded", "failed"):
                break
            time.sleep(0.5)
        assert status == "succeeded", f"job {status}; worker rc={worker.poll()}"
    finally:
        worker.terminate()  # SIGTERM: Procrastinate's graceful stop
        _, stderr = worker.communicate(timeout=120)
    assert worker.returncode == 0, stderr
    shown = subprocess.run([*KOS, "run", "--json", "--thread", ids["thread_id"]], env=env, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    result = orjson.loads(shown.stdout)
    assert result["thread_id"] == ids["thread_id"] and result["answer"]
    assert result["domain"] == "trend" and result["path"] == "fast"
    assert any(c["id"].startswith("deb:openssl:") for c in result["citations"])


async def _status(settings: Settings, job_id: int) -> str:
    app = make_app(settings)
    async with app.open_async():
        rows = await app.connector.execute_query_all_async(
            "SELECT status FROM procrastinate_jobs WHERE id = %(id)s", id=job_id)
    return rows[0]["status"]


SMART_QUESTION = "Compare what changed in openssl and curl since March and explain why"


def test_a_sigkilled_workers_run_is_resumed_by_another_worker(settings, corpus_dir) -> None:
    """Worker A is SIGKILLed while the run is in ``execute``; worker B finds the job stalled
    (A's heartbeat stops), resumes the thread from its checkpoint, and the answer and the
    episodic events are written once."""
    from tests.integration.test_crash_resume import history

    env = {**os.environ, "KOS_HOME": str(settings.home), "KOS_POSTGRES__DSN": settings.postgres.dsn.get_secret_value(),
           "KOS_STORAGE__CHECKPOINTER": "postgres", "KOS_QUEUE__BACKEND": "procrastinate",
           "KOS_QUEUE__NAME": settings.queue.name, "KOS_QUEUE__HEARTBEAT_S": "1", "KOS_QUEUE__STALLED_AFTER_S": "4",
           "KOS_LLM__ANSWER_MODE": "prose"}  # execute always calls the LLM: long enough to be killed in
    subprocess.run([*KOS, "ingest", "--json", str(corpus_dir)], env=env, check=True, capture_output=True, timeout=600)
    queued = subprocess.run([*KOS, "run", "--queue", "--json", "--as-of", AS_OF, "--no-cache", SMART_QUESTION],
                            env=env, capture_output=True, text=True, timeout=120)
    assert queued.returncode == 0, queued.stderr
    ids = orjson.loads(queued.stdout)
    thread = ids["thread_id"]
    a = subprocess.Popen([*KOS, "worker", "--name", "worker-a"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    b = None
    try:
        deadline = time.time() + 300
        killed = False
        while time.time() < deadline and a.poll() is None:
            states = asyncio.run(history(env, thread))
            if states and states[0].next == ("execute",):
                a.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.05)
        a.wait(timeout=60)
        assert killed, f"worker A finished or stalled before it could be killed: rc={a.returncode}"
        before = asyncio.run(history(env, thread))
        assert before[0].next == ("execute",)
        assert asyncio.run(_status(settings, ids["job_id"])) == "doing"  # A died holding it

        b = subprocess.Popen([*KOS, "worker", "--name", "worker-b"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        status = "doing"
        deadline = time.time() + 600
        while time.time() < deadline and b.poll() is None:
            status = asyncio.run(_status(settings, ids["job_id"]))
            if status in ("succeeded", "failed"):
                break
            time.sleep(0.5)
        assert status == "succeeded", f"job {status}; worker B rc={b.poll()}"
    finally:
        if a.poll() is None:
            a.kill()
        if b is not None:
            b.terminate()
            _, stderr = b.communicate(timeout=120)
    assert "put back on the queue" in stderr  # B found the stalled job
    after = asyncio.run(history(env, thread))
    assert after[0].next == ()
    nexts = [s.next for s in after]
    for node in ("cache_lookup", "route", "plan"):
        assert nexts.count((node,)) == 1, (node, nexts)  # completed nodes were not run again
    run_id = after[0].values["run_id"]
    assert run_id == before[0].values["run_id"]  # the same run, finished
    shown = subprocess.run([*KOS, "memory", "recent", "--json", "--entity-id", run_id, "--limit", "1000"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    types = [orjson.loads(line)["type"] for line in shown.stdout.splitlines()]
    assert types.count("run_started") == 1 and types.count("run_completed") == 1, types
    history_entries = [h for h in after[0].values.get("history") or [] if h["run_id"] == run_id]
    assert len(history_entries) == 1 and history_entries[0]["answer"]  # the answer, once
