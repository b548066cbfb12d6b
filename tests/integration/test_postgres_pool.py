"""One PostgreSQL pool per process: synchronous runs share one event loop, one asyncpg pool
and one checkpointer connection, and ``close()`` gives every connection back. Counted on
the server (``pg_stat_activity``) in a database of its own, and in this process's sockets.

Why both, and why the server's count may wait: a psycopg (libpq) close sends Terminate and
closes its socket without waiting for the server (PostgreSQL 15 manual, 55.2.10
"Termination"); the backend then exits on its own and leaves ``pg_stat_activity`` a few
milliseconds later (2 of 150 closes under load 7-9 on 2 cores still listed the "kos
checkpointer" backend, gone within 8 ms; CI once failed so). asyncpg waits for the server
to drop the socket, which the backend keeps open until it has exited (PostgreSQL's
``socket_close`` in ``src/backend/libpq/pqcomm.c``). So right after ``close()`` this process
must hold no socket to the server, and within :data:`BACKEND_EXIT_TIMEOUT_S` the server
must list no client backend on the database. Autovacuum workers are not connections of
ours (they visit a new database about once per ``autovacuum_naptime``, for up to half a
second here) and are not counted.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from knowledge_os.api import KnowledgeOS
from knowledge_os.db.appname import application_name
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore
from tests.integration.conftest import require_service_env

pytestmark = pytest.mark.integration

BACKEND_EXIT_TIMEOUT_S = 10.0
"""How long the server may take to drop the backends of closed connections, seconds."""


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database on the test server; its DSN. Dropped afterwards. ``PGAPPNAME`` is
    unset, so every connection reports the name its owner gives it."""
    monkeypatch.delenv("PGAPPNAME", raising=False)
    base = require_service_env("KOS_TEST_POSTGRES_DSN")
    name = f"kos_pool_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backends(base_dsn: str, database: str) -> list[dict[str, Any]]:
    """The server's client backends on ``database`` (one per connection; no autovacuum
    worker): pid, application_name, client_port, backend_start, state, their last query."""
    with psycopg.connect(base_dsn, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT pid, application_name, client_port, backend_start::text, state, left(query, 60) AS query"
            " FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'"
            " ORDER BY backend_start", (database,)).fetchall()


def connections(base_dsn: str, database: str) -> int:
    return len(backends(base_dsn, database))


def wait_until_no_backends(base_dsn: str, database: str) -> list[dict[str, Any]]:
    """Poll ``pg_stat_activity`` (every 20 ms) until it lists no client backend on ``database``;
    the backends still listed after :data:`BACKEND_EXIT_TIMEOUT_S` (empty: all gone)."""
    deadline = time.monotonic() + BACKEND_EXIT_TIMEOUT_S
    while (left := backends(base_dsn, database)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def sockets_to_server(dsn: str) -> set[tuple[str, int]]:
    """This process's open sockets to the server of ``dsn`` (TCP, or its Unix socket when
    ``host`` is a directory), as their local addresses."""
    info = conninfo_to_dict(dsn)
    port, host = int(info.get("port") or 5432), info.get("host") or "/"
    if host.startswith("/"):
        return {(c.laddr, 0) for c in psutil.Process().net_connections(kind="unix")
                if str(c.raddr).endswith(f".s.PGSQL.{port}")}
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process().net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port}


def assert_all_closed(dsn: str, base_dsn: str, before: set[tuple[str, int]], what: str) -> None:
    """No socket to the server beyond ``before`` now, and no client backend on the
    database within :data:`BACKEND_EXIT_TIMEOUT_S`."""
    held = sockets_to_server(dsn) - before
    listed = backends(base_dsn, dsn.rsplit("/", 1)[1])
    assert not held, f"{what} returned with {len(held)} connection(s) still open (local ends {sorted(held)}); " \
                     f"the server lists {listed}"
    left = wait_until_no_backends(base_dsn, dsn.rsplit("/", 1)[1])
    assert not left, f"{len(left)} backend(s) still listed {BACKEND_EXIT_TIMEOUT_S} s after {what}: {left}"


def test_sync_runs_share_one_pool_and_close_returns_every_connection(tmp_path: Path, corpus_dir: Path,
                                                                     database: str) -> None:
    base = require_service_env("KOS_TEST_POSTGRES_DSN")
    name = database.rsplit("/", 1)[1]
    before = sockets_to_server(database)
    settings = Settings(home=tmp_path / ".kos", storage={"checkpointer": "postgres", "memory": "postgres"},
                        postgres={"dsn": database, "pool_min_size": 1, "pool_max_size": 2})
    kos = KnowledgeOS(services=Services(settings, chat_model=FakeListChatModel(responses=["openssl fixed it [1]."]),
                                        embedder=HashEmbedder(), vector_store=MemoryVectorStore()))
    kos.ingest([corpus_dir])
    try:
        kos.run("What changed in curl since March?", as_of="2026-11-22", use_cache=False)  # warm-up (migrations)
        seen = []
        for i in range(5):
            r = kos.run(f"What changed in openssl since March? ({i})", as_of="2026-11-22", use_cache=False)
            assert r.citations
            seen.append(connections(base, name))
        # at most the pool (2) + one checkpointer connection, and no growth from run to run
        assert max(seen) <= 3 and seen[-1] <= seen[0], seen
        assert kos.get_thread(r.thread_id).run_id == r.run_id
        # each names its owner (knowledge_os/db/appname.py)
        names = sorted(b["application_name"] for b in backends(base, name))
        assert set(names) == {application_name("memory"), application_name("checkpointer")}, names
    finally:
        kos.close()
    assert_all_closed(database, base, before, "KnowledgeOS.close()")


def test_prune_on_postgres_keeps_what_threads_still_need(tmp_path: Path, corpus_dir: Path, database: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import knowledge_os.domains.steps as steps
    from knowledge_os.graph.prune import prune_checkpoints
    from tests.unit.test_runs_and_threads import failing_once

    settings = Settings(home=tmp_path / ".kos", storage={"checkpointer": "postgres"}, postgres={"dsn": database})
    kos = KnowledgeOS(services=Services(settings, chat_model=FakeListChatModel(responses=["openssl fixed it [1]."]),
                                        embedder=HashEmbedder(), vector_store=MemoryVectorStore()))
    kos.ingest([corpus_dir])
    kos.run("What changed in openssl since March?", as_of="2026-11-22", thread_id="done")
    last = kos.run("What changed in curl since March?", as_of="2026-11-22", thread_id="done")
    monkeypatch.setitem(steps.STEPS, "retrieve", failing_once(steps.STEPS["retrieve"]))
    with pytest.raises(RuntimeError):
        kos.run("Which upload fixed CVE-2025-9230?", as_of="2026-11-22", thread_id="broken", use_cache=False)

    def counts() -> dict[str, int]:
        with psycopg.connect(database) as conn:
            return dict(conn.execute("SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id").fetchall())

    before = counts()
    report = asyncio.run(prune_checkpoints(settings, older_than_days=30))
    assert counts() == {"done": 1, "broken": before["broken"]}
    assert (report.threads_pruned, report.threads_kept, report.checkpoints_deleted) == (1, 1, before["done"] - 1)
    assert kos.get_thread("done").run_id == last.run_id
    assert kos.resume("broken").citations[0].id == "deb:openssl:3.0.17-1~deb12u3"
    kos.close()


def test_sync_pool_close_waits_for_a_lent_connection_and_closes_it(database: str) -> None:
    """A thread still inside ``connection()`` when the store closes (a worker shutting
    down mid-query): ``close()`` returns after that connection is back and closed, and
    no new one is lent meanwhile."""
    from knowledge_os.db.sync import SyncPool
    from knowledge_os.errors import BackendUnavailableError

    base = require_service_env("KOS_TEST_POSTGRES_DSN")
    before = sockets_to_server(database)
    pool = SyncPool(Settings(postgres={"dsn": database}), what="document store")
    assert {b["application_name"] for b in backends(base, database.rsplit("/", 1)[1])} == {"kos document store"}
    lent, done, closed = threading.Event(), [], []

    def query() -> None:
        with pool.connection() as conn:
            lent.set()
            conn.execute("SELECT pg_sleep(0.5)")
            done.append(time.monotonic())

    def close() -> None:
        pool.close()
        closed.append((time.monotonic(), sockets_to_server(database) - before))

    worker = threading.Thread(target=query)
    worker.start()
    assert lent.wait(10)
    closer = threading.Thread(target=close)
    closer.start()
    time.sleep(0.1)
    with pytest.raises(BackendUnavailableError, match="document store.*closed"):
        with pool.connection():
            pass
    closer.join(10)
    worker.join(10)
    (closed_at, held), = closed
    assert done and done[0] <= closed_at, "close() returned while a connection was still lent"
    assert not held, f"close() returned with connections still open: {held}"
    assert_all_closed(database, base, before, "SyncPool.close()")
