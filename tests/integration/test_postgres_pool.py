"""One PostgreSQL pool per process: synchronous runs share one event loop, one asyncpg pool
and one checkpointer connection, and ``close()`` gives every connection back. Counted on
the server (``pg_stat_activity``) in a database of its own."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from knowledge_os.api import KnowledgeOS
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore
from tests.integration.conftest import require_service_env

pytestmark = pytest.mark.integration


@pytest.fixture
def database() -> str:
    """A fresh database on the test server; its DSN. Dropped afterwards."""
    base = require_service_env("KOS_TEST_POSTGRES_DSN")
    name = f"kos_pool_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def connections(base_dsn: str, database: str) -> int:
    with psycopg.connect(base_dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                            (database,)).fetchone()[0]


def test_sync_runs_share_one_pool_and_close_returns_every_connection(tmp_path: Path, corpus_dir: Path,
                                                                     database: str) -> None:
    base = require_service_env("KOS_TEST_POSTGRES_DSN")
    name = database.rsplit("/", 1)[1]
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
    finally:
        kos.close()
    assert connections(base, name) == 0


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
