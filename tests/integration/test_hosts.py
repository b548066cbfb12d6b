"""Workers on separate hosts: ``kos worker`` processes in their own network namespaces
(tests/integration/netns.py) reach PostgreSQL and Neo4j over TCP on a test bridge; runs are
enqueued from a third namespace. Checked in the databases: every run completes exactly
once (one answer in its thread, one ``run_started`` and one ``run_completed`` event), a
SIGKILLed worker's run finishes on the other worker, and a PostgreSQL restart mid-run is
survived. Real processes, the real embedded models (SmolLM2-135M, a run takes 2-3 s).
The hosts use README's "Past one machine" settings: checkpoints, memory, documents,
full-text index, answer cache and embeddings in PostgreSQL, the graph in Neo4j, a KOS_HOME
of its own per host; host a runs ``kos db upgrade`` and ``kos ingest``, the others never do.

The PostgreSQL here is a cluster of the test's own (``initdb`` + ``pg_ctl``) listening on
the bridge's address only, so a test can restart it; Neo4j is one of the test's own too,
Bolt bound to the bridge's address (``scripts/services/neo4j.sh`` with ``KOS_NEO4J_HOST``).
Needs root; skipped otherwise, failed under ``CI``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import CHANGELOGS, write_changelog
from tests.integration.netns import Host, Neo4jServer, Network, PostgresCluster, require_root

pytestmark = pytest.mark.integration

pytest.importorskip("procrastinate")
psycopg = pytest.importorskip("psycopg")

KOS = [sys.executable, "-m", "knowledge_os.cli"]
AS_OF = "2026-11-22"
PG_PORT = 5440
NEO4J_PORT = 7688
QUESTIONS = [
    "What changed in openssl since March?",
    "What changed in curl since May?",
    "Which CVEs were fixed in openssl this year?",
    "What changed in curl since October?",
    "What did the openssl security updates fix?",
    "Which bugs were closed in curl?",
]
SMART_QUESTION = "Compare what changed in openssl and curl since March and explain why"
DONE_LINE = re.compile(r"job (\d+) \(thread (\S+), run (\S+)\) done by worker (\S+), attempt (\d+)")
ENQUEUE = """
import sys, orjson
from knowledge_os.api import KnowledgeOS
kos = KnowledgeOS()
out = []
for thread, query in orjson.loads(sys.argv[1]):
    q = kos.enqueue(query, thread_id=thread, as_of=sys.argv[2], use_cache=False)
    out.append({"job_id": q.job_id, "thread_id": q.thread_id})
kos.close()
print(orjson.dumps(out).decode())
"""


@dataclass
class Cluster:
    """The module's network, servers and test corpus."""

    net: Network
    pg: PostgresCluster
    neo4j: Neo4jServer
    corpus: Path
    """A folder of Debian changelogs (tests/conftest.py's CHANGELOGS)."""


def base_env(**kos: str) -> dict[str, str]:
    """The environment without any inherited ``KOS_*`` variable, plus ``kos``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOS_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                                     os.environ.get("PYTHONPATH")) if p)
    env.update(kos)
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_root()
    net = Network.create(["a", "b", "client"])
    pg = neo4j = None
    try:
        subnet = f"{net.gateway.rsplit('.', 1)[0]}.0/24"
        pg = PostgresCluster(address=net.gateway, port=PG_PORT, subnet=subnet).init()
        neo4j = Neo4jServer(address=net.gateway, port=NEO4J_PORT).start()
        doc = tmp_path_factory.mktemp("hosts") / "doc"
        for package, entries in CHANGELOGS.items():
            write_changelog(doc, package, entries)
        yield Cluster(net=net, pg=pg, neo4j=neo4j, corpus=doc)
    finally:
        if neo4j is not None:
            neo4j.destroy()
        if pg is not None:
            pg.destroy()
        net.close()


@dataclass
class Hosts:
    """One test's view: its own database and queue, a KOS_HOME per host."""

    cluster: Cluster
    dsn: str
    queue: str
    root: Path

    def env(self, host: str, **extra: str) -> dict[str, str]:
        """The settings of README's "Past one machine": all state shared, a KOS_HOME per host."""
        return base_env(
            KOS_HOME=str(self.root / host / ".kos"), KOS_POSTGRES__DSN=self.dsn,
            KOS_STORAGE__CHECKPOINTER="postgres", KOS_STORAGE__MEMORY="postgres",
            KOS_STORAGE__DOCUMENTS="postgres", KOS_STORAGE__ANSWER_CACHE="postgres",
            KOS_VECTORS__BACKEND="postgres_edge", KOS_QUEUE__BACKEND="procrastinate", KOS_QUEUE__NAME=self.queue,
            KOS_QUEUE__HEARTBEAT_S="1", KOS_QUEUE__STALLED_AFTER_S="4", KOS_QUEUE__RETRY_BASE_S="0.5",
            KOS_GRAPH__BACKEND="neo4j", KOS_GRAPH__NEO4J_URI=self.cluster.neo4j.uri, **extra)

    def host(self, name: str) -> Host:
        return self.cluster.net.hosts[name]

    def worker(self, name: str, log: Path, **extra: str) -> subprocess.Popen[bytes]:
        """``kos -v worker --name host-<name>`` in namespace ``name``, output to ``log``;
        ``extra``: more environment variables (settings)."""
        return self.host(name).popen([*KOS, "-v", "worker", "--name", f"host-{name}"], env=self.env(name, **extra),
                                     log=log)

    def enqueue(self, runs: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Enqueue ``(thread, question)`` pairs from the client namespace (KnowledgeOS.enqueue)."""
        done = self.host("client").run([sys.executable, "-c", ENQUEUE, orjson.dumps(runs).decode(), AS_OF],
                                       env=self.env("client"), timeout=300)
        return orjson.loads(done.stdout)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql, args).fetchall()

    def jobs(self) -> dict[int, tuple[str, int]]:
        """Job id -> (status, attempts)."""
        return {i: (s, a) for i, s, a in self.query("SELECT id, status::text, attempts FROM procrastinate_jobs")}

    def wait_jobs(self, ids: list[int], workers: list[subprocess.Popen[bytes]], *, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            jobs = self.jobs()
            if all(jobs.get(i, ("todo", 0))[0] in ("succeeded", "failed") for i in ids):
                return
            if all(w.poll() is not None for w in workers):
                break
            time.sleep(0.5)
        raise AssertionError(f"jobs not done: {self.jobs()}; workers rc={[w.poll() for w in workers]}")

    def events(self, run_id: str) -> list[str]:
        return [t for (t,) in self.query("SELECT type FROM kos_episodic_events WHERE entity_id = %s ORDER BY id",
                                         run_id)]

    def checkpoint(self, thread: str) -> Any:
        """The thread's latest state snapshot (from PostgreSQL, read in this process)."""
        return self.history(thread)[0]

    def history(self, thread: str) -> list[Any]:
        from tests.integration.test_crash_resume import history

        return asyncio.run(history({"KOS_HOME": str(self.root / "reader"), "KOS_STORAGE__CHECKPOINTER": "postgres",
                                    "KOS_POSTGRES__DSN": self.dsn}, thread))


@pytest.fixture
def hosts(cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> Hosts:
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    dsn = cluster.pg.create_database(f"kos_{name}_{time.time_ns() % 10**6}")
    hosts = Hosts(cluster=cluster, dsn=dsn, queue=f"kos-hosts-{time.time_ns()}", root=tmp_path)
    a = hosts.host("a")  # host a sets up the database and ingests; b and the client never do
    a.run([*KOS, "db", "upgrade"], env=hosts.env("a"))
    done = a.run([*KOS, "ingest", "--json", str(cluster.corpus)], env=hosts.env("a"))
    assert orjson.loads(done.stdout)["problems"] == [], done.stdout
    return hosts


def stop(*workers: subprocess.Popen[bytes]) -> None:
    for w in workers:
        if w.poll() is None:
            w.terminate()  # SIGTERM: Procrastinate's graceful stop
    for w in workers:
        try:
            w.wait(timeout=120)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait(timeout=30)


def done_by(log: Path) -> dict[str, str]:
    """Thread id -> worker name, from the workers' ``done by worker`` lines in ``log``."""
    return {m.group(2): m.group(4) for m in DONE_LINE.finditer(log.read_text(errors="replace"))}


def assert_once(hosts: Hosts, thread: str) -> str:
    """The thread's run finished, its answer is in the thread once, its episodic events
    were written once; returns the run id."""
    state = hosts.checkpoint(thread)
    assert state.next == (), (thread, state.next)
    run_id = state.values["run_id"]
    answers = [h for h in state.values.get("history") or [] if h["run_id"] == run_id]
    assert len(answers) == 1 and answers[0]["answer"], (thread, answers)
    events = hosts.events(run_id)
    assert events.count("run_started") == 1 and events.count("run_completed") == 1, (thread, events)
    return run_id


def wait_registered(hosts: Hosts, n: int, workers: list[subprocess.Popen[bytes]]) -> None:
    """Until ``n`` workers have a row in ``procrastinate_workers`` (they fetch jobs)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if hosts.query("SELECT count(*) FROM procrastinate_workers")[0][0] >= n:
                return
        except psycopg.Error:  # the schema is being applied by the first worker
            pass
        assert all(w.poll() is None for w in workers), [w.poll() for w in workers]
        time.sleep(0.3)
    raise AssertionError(f"{n} workers did not register")


def test_runs_from_a_third_host_complete_exactly_once_on_two_worker_hosts(hosts: Hosts, tmp_path: Path) -> None:
    log = tmp_path / "workers.log"
    workers = [hosts.worker("a", log), hosts.worker("b", log)]
    try:
        wait_registered(hosts, 2, workers)
        runs = [(f"hosts-{k}", q) for k, q in enumerate(QUESTIONS)]
        queued = hosts.enqueue(runs)
        assert [q["thread_id"] for q in queued] == [t for t, _ in runs]
        # The workers' connections come over the bridge from their namespaces.
        addresses = {str(a) for (a,) in hosts.query(
            "SELECT DISTINCT client_addr FROM pg_stat_activity WHERE datname = current_database()")}
        hosts.wait_jobs([q["job_id"] for q in queued], workers)
    finally:
        stop(*workers)
    assert {hosts.host("a").address, hosts.host("b").address} <= addresses, addresses
    assert [w.returncode for w in workers] == [0, 0], log.read_text()[-4000:]
    assert set(hosts.jobs().values()) == {("succeeded", 1)}, hosts.jobs()  # attempts counts the one that succeeded
    run_ids = {assert_once(hosts, t) for t, _ in runs}
    assert len(run_ids) == len(runs)
    by = done_by(log)
    assert set(by) == {t for t, _ in runs}, by
    assert set(by.values()) == {"host-a", "host-b"}, by  # both hosts took jobs
    # The graph the runs expanded is in Neo4j, the documents in PostgreSQL (host a's ingest,
    # over TCP); host b answered from them with an index of its own built from the shared embeddings.
    for thread, worker in by.items():
        if worker == "host-b":
            assert hosts.checkpoint(thread).values["citations"], thread  # b retrieved without ever ingesting
    import neo4j

    with neo4j.GraphDatabase.driver(hosts.cluster.neo4j.uri) as driver:
        records, _, _ = driver.execute_query("MATCH (n) WHERE n.id STARTS WITH 'doc:deb:openssl:' RETURN count(n) AS n")
    assert records[0]["n"] == len(CHANGELOGS["openssl"])


async def test_first_checkpointers_of_several_hosts_at_once_on_a_fresh_database(tmp_path: Path) -> None:
    """Two hosts' first jobs opened the checkpointer together on a fresh database, and one
    failed: LangGraph's ``setup()`` inserted the same ``checkpoint_migrations`` row twice
    (seen in the two-host test above). Now one setup waits for the other."""
    from urllib.parse import urlsplit, urlunsplit

    from knowledge_os.graph.checkpointer import open_checkpointer
    from knowledge_os.settings import Settings
    from tests.integration.conftest import require_service_env

    base = require_service_env("KOS_TEST_POSTGRES_DSN")
    for attempt in range(3):  # a race: three fresh databases, eight openers each
        name = f"kos_hosts_setup_{time.time_ns() % 10**9}_{attempt}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            dsn = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
            settings = Settings(home=tmp_path / ".kos", postgres={"dsn": dsn}, storage={"checkpointer": "postgres"})

            async def open_one() -> None:
                async with open_checkpointer(settings) as saver:
                    assert saver is not None

            await asyncio.gather(*(open_one() for _ in range(8)))
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(what: str, check: Any, workers: list[subprocess.Popen[bytes]], *, timeout_s: float = 300,
             every_s: float = 0.05) -> Any:
    """Poll ``check()`` until it returns a truthy value; fail if every worker exited or time ran out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        assert any(w.poll() is None for w in workers), f"{what}: every worker exited {[w.poll() for w in workers]}"
        time.sleep(every_s)
    raise AssertionError(f"{what}: not after {timeout_s:.0f} s")


def at_execute(hosts: Hosts, thread: str) -> bool:
    states = hosts.history(thread)
    return bool(states) and states[0].next == ("execute",)


def test_a_sigkilled_hosts_run_finishes_on_the_other_host(hosts: Hosts, tmp_path: Path) -> None:
    """Host a's worker is SIGKILLed while its run is in ``execute``; host b's worker finds
    the job stalled (no heartbeat from a for ``queue.stalled_after_s`` = 4 s), puts it back
    and resumes the thread from its checkpoint: the nodes a completed are not run again, and
    the answer and the episodic events are written once."""
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = hosts.worker("a", log_a, KOS_LLM__ANSWER_MODE="prose")  # execute always calls the LLM: killable in it
    workers = [a]
    try:
        wait_registered(hosts, 1, workers)
        [queued] = hosts.enqueue([("hosts-kill", SMART_QUESTION)])
        wait_for("a takes the job", lambda: hosts.jobs()[queued["job_id"]][0] == "doing", workers, every_s=0.2)
        b = hosts.worker("b", log_b)  # idle until a's job is put back
        workers.append(b)
        wait_for("the run reaches execute", lambda: at_execute(hosts, "hosts-kill"), workers)
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=60)
        before = hosts.history("hosts-kill")
        assert before[0].next == ("execute",)
        assert hosts.jobs()[queued["job_id"]][0] == "doing"  # a died holding it
        hosts.wait_jobs([queued["job_id"]], [b])
    finally:
        stop(*workers)
    assert a.returncode == -signal.SIGKILL
    assert hosts.jobs()[queued["job_id"]] == ("succeeded", 2)  # the lost attempt counts
    assert "put back on the queue" in log_b.read_text()
    assert done_by(log_b) == {"hosts-kill": "host-b"} and done_by(log_a) == {}
    after = hosts.history("hosts-kill")
    nexts = [s.next for s in after]
    for node in ("cache_lookup", "route", "plan"):
        assert nexts.count((node,)) == 1, (node, nexts)  # completed nodes were not run again
    assert after[0].values["run_id"] == before[0].values["run_id"]  # the same run, finished
    assert_once(hosts, "hosts-kill")


def test_a_postgresql_restart_mid_run_is_survived(hosts: Hosts, tmp_path: Path) -> None:
    """PostgreSQL stops (``pg_ctl stop -m fast``: every connection terminated) while a run
    is in ``execute`` and comes back 3 s later. The runs finish, each exactly once, the
    interrupted one resumed from its checkpoint.

    What a worker sees (run of 2026-12-01): psycopg_pool (Procrastinate's) and asyncpg
    (episodic memory) log failed reconnects while the server is away and reconnect by
    themselves; the running job's node finishes, then its checkpoint write fails on the
    checkpointer's lost connection (``OperationalError``); Procrastinate records the failed
    attempt and retries the job after ``queue.retry_base_s * 2`` s; a worker resumes the
    thread from the checkpoint before ``execute``. Both workers stay up, and their LISTEN
    connections come back (:class:`knowledge_os.queue.app.ListeningConnector`; the next
    test).
    """
    log = tmp_path / "workers.log"
    workers = [hosts.worker("a", log), hosts.worker("b", log)]
    pg = hosts.cluster.pg
    try:
        wait_registered(hosts, 2, workers)
        runs = [("hosts-restart-0", SMART_QUESTION), ("hosts-restart-1", QUESTIONS[0])]
        queued = hosts.enqueue(runs)
        wait_for("a run reaches execute", lambda: at_execute(hosts, "hosts-restart-0"), workers)
        before = hosts.history("hosts-restart-0")
        pg.stop("fast")
        time.sleep(3)
        pg.start()
        hosts.wait_jobs([q["job_id"] for q in queued], workers)
    finally:
        if not pg.running():
            pg.start()
        stop(*workers)
    text = log.read_text(errors="replace")
    jobs = hosts.jobs()
    assert {jobs[q["job_id"]][0] for q in queued} == {"succeeded"}, (jobs, text[-4000:])
    # The interrupted attempt failed (its checkpoint write lost the connection) and was retried.
    assert jobs[queued[0]["job_id"]][1] >= 2, jobs
    [(attempts, error)] = hosts.query("SELECT attempts, error FROM kos_job_failures WHERE job_id = %s",
                                      queued[0]["job_id"])
    assert attempts == 1 and error.startswith(("OperationalError", "BackendUnavailableError")), error
    for thread, _ in runs:
        assert_once(hosts, thread)
    after = hosts.history("hosts-restart-0")
    nexts = [s.next for s in after]
    for node in ("cache_lookup", "route", "plan"):
        assert nexts.count((node,)) == 1, (node, nexts)
    assert after[0].values["run_id"] == before[0].values["run_id"]


def listening(hosts: Hosts) -> int:
    """The queue's sessions (``application_name`` "kos queue") whose last statement was a
    LISTEN: a waiting worker's."""
    return hosts.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kos queue' "
                       "AND query LIKE 'LISTEN %%'")[0][0]


def test_a_waiting_worker_listens_again_after_a_postgresql_restart(hosts: Hosts, tmp_path: Path) -> None:
    """PostgreSQL stops for 3 s while a worker waits for jobs; the worker polls only every
    300 s (``queue.poll_s``), so a run enqueued after the restart can start within the
    test's 120 s only by its notification. Procrastinate 3.10 alone opens the LISTEN
    connection again once, at once, while the server is still away, and then gives up on it
    (seen 2026-12-01); :class:`~knowledge_os.queue.app.ListeningConnector` tries until the
    server is back."""
    log = tmp_path / "worker.log"
    workers = [hosts.worker("a", log, KOS_QUEUE__POLL_S="300")]
    pg = hosts.cluster.pg
    try:
        wait_registered(hosts, 1, workers)
        wait_for("the worker listens", lambda: listening(hosts), workers, every_s=0.2)
        pg.stop("fast")
        time.sleep(3)
        pg.start()
        wait_for("the worker listens again", lambda: listening(hosts), workers, timeout_s=60, every_s=0.2)
        queued = hosts.enqueue([("hosts-listen", QUESTIONS[0])])
        hosts.wait_jobs([queued[0]["job_id"]], workers, timeout_s=120)
    finally:
        if not pg.running():
            pg.start()
        stop(*workers)
    assert "LISTEN connection to PostgreSQL lost" in log.read_text(errors="replace")
    assert hosts.jobs()[queued[0]["job_id"]] == ("succeeded", 1)
    assert_once(hosts, "hosts-listen")


class WorkerLost(BaseException):
    """Stands for the worker process dying at that point (no ``except Exception`` stops it)."""


@pytest.mark.parametrize("lost", [
    "after_events", "job_ack",
    "finalize_checkpoint",
])
async def test_a_job_retried_after_finalize_ran_writes_the_answer_and_events_once(
        tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch, lost: str) -> None:
    """The first attempt gets as far as finalize, then fails. ``after_events``: the worker
    is lost right after finalize committed the run's episodic events, so the retry resumes
    the thread from the checkpoint before finalize and finalize runs again (without the
    run-id check it wrote every event twice). ``job_ack``: the run finished and was
    checkpointed, but the attempt failed before the job was marked done, so the retry finds
    the finished run. ``finalize_checkpoint``: finalize's results were saved as task writes,
    then the checkpoint after it failed (the connection dropped); the retry writes that
    checkpoint from the saved writes, without running finalize again. Each: one answer in the
    thread, one set of episodic events for the run id. In-process worker, fake chat model,
    the shared PostgreSQL (``KOS_TEST_POSTGRES_DSN``)."""
    from knowledge_os.memory.postgres import PostgresEpisodicMemory
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from knowledge_os.queue.app import run_worker
    from knowledge_os.settings import Settings
    from tests.integration.test_queue import QUESTION, fake_kos, job_rows, queue_dsn

    dsn = queue_dsn()
    settings = Settings(home=tmp_path / ".kos", postgres={"dsn": dsn},
                        storage={"checkpointer": "postgres", "memory": "postgres"},
                        queue={"backend": "procrastinate", "name": f"kos-once-{time.time_ns()}", "retry_base_s": 0.05})
    caller = fake_kos(settings, corpus_dir)
    thread = f"q-once-{lost}-{time.time_ns()}"
    queued = await caller.aenqueue(QUESTION, thread_id=thread, as_of=AS_OF, use_cache=False)
    failed: list[str] = []
    original_put = AsyncPostgresSaver.aput

    async def put(self: Any, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        # The checkpoint after finalize: the first of this fresh thread with a history (finalize writes it).
        if lost == "finalize_checkpoint" and not failed and "history" in checkpoint["channel_values"]:
            failed.append("finalize")
            raise psycopg.OperationalError("the connection is lost (injected)")
        return await original_put(self, config, checkpoint, metadata, new_versions)

    monkeypatch.setattr(AsyncPostgresSaver, "aput", put)
    original_record_many = PostgresEpisodicMemory.record_many

    async def record_many(self: Any, events: Any) -> None:
        await original_record_many(self, events)
        if lost == "after_events" and not failed:
            failed.append("events")
            raise WorkerLost("the worker died after the events were committed (injected)")

    monkeypatch.setattr(PostgresEpisodicMemory, "record_many", record_many)
    worker = fake_kos(settings)
    original_arun = worker.arun

    async def arun(query: str, **kwargs: Any) -> Any:
        result = await original_arun(query, **kwargs)
        if lost == "job_ack" and not failed:
            failed.append("ack")
            raise ConnectionError("worker lost before the job was marked done (injected)")
        return result

    worker.arun = arun  # type: ignore[method-assign]
    try:
        for _ in range(20):
            await run_worker(settings, wait=False, kos_factory=lambda: worker)
            rows = [r for r in await job_rows(settings) if r["id"] == queued.job_id]
            if rows[0]["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.1)
        assert failed, "the fault was not injected: the test would prove nothing"
        assert (rows[0]["status"], rows[0]["attempts"]) == ("succeeded", 2)

        result = await caller.aget_thread(thread)
        assert result is not None and result.answer
        memory = await caller.services.episodic_memory()
        events = [e.type for e in await memory.recent(entity_id=result.run_id, limit=100)]
        assert events.count("run_started") == 1 and events.count("run_completed") == 1, events
        from tests.integration.test_crash_resume import history

        states = await history({"KOS_HOME": str(settings.home), "KOS_STORAGE__CHECKPOINTER": "postgres",
                                "KOS_POSTGRES__DSN": dsn}, thread)
        assert [h["run_id"] for h in states[0].values["history"]] == [result.run_id]  # the answer, once
        assert states[0].next == () and not states[0].tasks  # the thread's head is the finished run
        # after_events: finalize ran again (a second checkpoint before it, from the resume).
        assert [s.next for s in states].count(("finalize",)) == (2 if lost == "after_events" else 1)
    finally:
        await caller.aclose()
        await worker.aclose()
