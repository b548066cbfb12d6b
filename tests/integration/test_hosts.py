"""Workers on separate hosts: ``kos worker`` processes in their own network namespaces
(tests/integration/netns.py) reach PostgreSQL and Neo4j over TCP on a test bridge; runs are
enqueued from a third namespace. Checked in the databases: every run completes exactly
once (one answer in its thread, one ``run_started`` and one ``run_completed`` event), a
SIGKILLed worker's run finishes on the other worker, and a PostgreSQL restart mid-run is
survived. Real processes, the real embedded models (SmolLM2-135M, a run takes 2-3 s).

The PostgreSQL here is a cluster of the test's own (``initdb`` + ``pg_ctl``) listening on
the bridge's address only, so a test can restart it; Neo4j is one of the test's own too,
Bolt bound to the bridge's address (``scripts/services/neo4j.sh`` with ``KOS_NEO4J_HOST``).
Needs root; skipped otherwise, failed under ``CI``.
"""

from __future__ import annotations

import os
import re
import shutil
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
    """The module's network, servers and ingested corpus."""

    net: Network
    pg: PostgresCluster
    neo4j: Neo4jServer
    seed_home: Path
    """A KOS_HOME with the test corpus ingested (documents and vectors; the graph is in Neo4j)."""


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
        root = tmp_path_factory.mktemp("hosts")
        doc = root / "doc"
        for package, entries in CHANGELOGS.items():
            write_changelog(doc, package, entries)
        seed = root / "seed" / ".kos"
        dsn = pg.create_database("kos_hosts_ingest")
        env = base_env(KOS_HOME=str(seed), KOS_POSTGRES__DSN=dsn, KOS_GRAPH__BACKEND="neo4j",
                       KOS_GRAPH__NEO4J_URI=neo4j.uri)
        done = net.hosts["a"].run([*KOS, "ingest", "--json", str(doc)], env=env)  # host a writes the graph
        assert orjson.loads(done.stdout)["problems"] == [], done.stdout
        yield Cluster(net=net, pg=pg, neo4j=neo4j, seed_home=seed)
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
        home = self.root / host / ".kos"
        if not home.exists():  # each host its own copy of the ingested corpus
            shutil.copytree(self.cluster.seed_home, home)
        return base_env(
            KOS_HOME=str(home), KOS_POSTGRES__DSN=self.dsn, KOS_STORAGE__CHECKPOINTER="postgres",
            KOS_STORAGE__MEMORY="postgres", KOS_QUEUE__BACKEND="procrastinate", KOS_QUEUE__NAME=self.queue,
            KOS_QUEUE__HEARTBEAT_S="1", KOS_QUEUE__STALLED_AFTER_S="4", KOS_QUEUE__RETRY_BASE_S="0.5",
            KOS_GRAPH__BACKEND="neo4j", KOS_GRAPH__NEO4J_URI=self.cluster.neo4j.uri, **extra)

    def host(self, name: str) -> Host:
        return self.cluster.net.hosts[name]

    def worker(self, name: str, log: Path) -> subprocess.Popen[bytes]:
        """``kos -v worker --name host-<name>`` in namespace ``name``, output to ``log``."""
        return self.host(name).popen([*KOS, "-v", "worker", "--name", f"host-{name}"], env=self.env(name), log=log)

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
        import asyncio

        from tests.integration.test_crash_resume import history

        return asyncio.run(history({"KOS_HOME": str(self.root / "reader"), "KOS_STORAGE__CHECKPOINTER": "postgres",
                                    "KOS_POSTGRES__DSN": self.dsn}, thread))


@pytest.fixture
def hosts(cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> Hosts:
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    dsn = cluster.pg.create_database(f"kos_{name}_{time.time_ns() % 10**6}")
    return Hosts(cluster=cluster, dsn=dsn, queue=f"kos-hosts-{time.time_ns()}", root=tmp_path)


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
    # The graph the runs expanded is in Neo4j (written over TCP by host a's ingest).
    import neo4j

    with neo4j.GraphDatabase.driver(hosts.cluster.neo4j.uri) as driver:
        records, _, _ = driver.execute_query("MATCH (n) WHERE n.id STARTS WITH 'doc:deb:openssl:' RETURN count(n) AS n")
    assert records[0]["n"] == len(CHANGELOGS["openssl"])


async def test_first_checkpointers_of_several_hosts_at_once_on_a_fresh_database(tmp_path: Path) -> None:
    """Two hosts' first jobs opened the checkpointer together on a fresh database, and one
    failed: LangGraph's ``setup()`` inserted the same ``checkpoint_migrations`` row twice
    (seen in the two-host test above). Now one setup waits for the other."""
    import asyncio
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
