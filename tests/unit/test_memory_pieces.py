"""Unit tests of the memory pieces that need no server: limits, cuts, backoff, factories,
DSN redaction, the dead-letter worker (on the SQLite queue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from knowledge_os.db.pool import _yoyo_uri, redact_dsn
from knowledge_os.errors import ConfigError, UnknownNameError
from knowledge_os.memory._common import clamp_limit, cut_error, cut_stack, next_failure_state
from knowledge_os.memory.base import DeadLetter, DeadLetterQueue, EpisodicMemory
from knowledge_os.memory.dlq_worker import work_due
from knowledge_os.memory.factory import make_dead_letter_queue, make_episodic_memory
from knowledge_os.memory.sqlite import SqliteDeadLetterQueue
from knowledge_os.retrieval.factory import make_graph_store
from knowledge_os.retrieval.graph_neo4j import redact_uri
from knowledge_os.retrieval.graph_sqlite import SqliteGraphStore
from knowledge_os.settings import Settings


def test_limits_and_cuts() -> None:
    assert [clamp_limit(n) for n in (-5, 0, 1, 50, 1000, 10**6)] == [1, 1, 1, 50, 1000, 1000]
    assert len(cut_error("x" * 1001)) == 1000 and cut_error("short") == "short"
    assert len(cut_stack("x" * 5001)) == 5000


def test_failure_state_follows_backoff_and_max_attempts() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_failure_state(1, now) == (2, "pending", now + timedelta(seconds=240))
    assert next_failure_state(2, now) == (3, "permanent_failure", now)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://kos:s3cr%40t@db:5432/kos", "postgresql://kos:***@db:5432/kos"),
        ("postgresql://kos@db/kos?password=abc&sslmode=require",
         "postgresql://kos@db/kos?password=***&sslmode=require"),
        ("host=db user=kos password='a b' dbname=kos", "host=db user=kos password=*** dbname=kos"),
        ("postgresql://postgres@127.0.0.1:5433/kos_test", "postgresql://postgres@127.0.0.1:5433/kos_test"),
    ],
)
def test_redact_dsn_hides_passwords(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown
    assert "secret" not in redact_uri("neo4j://u:secret@h:7687")


def test_yoyo_uri_uses_psycopg3_a_connect_timeout_and_names_its_connection() -> None:
    name = "fallback_application_name=kos%20migrations"
    assert _yoyo_uri("postgresql://u@h/db", 10) == f"postgresql+psycopg://u@h/db?connect_timeout=10&{name}"
    assert _yoyo_uri("postgres://u@h/db?sslmode=disable", 2.4).endswith(f"?sslmode=disable&connect_timeout=2&{name}")
    assert _yoyo_uri("postgres://u@h/db?application_name=ops", 1).endswith(f"?application_name=ops&connect_timeout=1&{name}")
    with pytest.raises(ConfigError):
        _yoyo_uri("host=h dbname=db", 10)


def test_factories_pick_sqlite(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    assert isinstance(make_episodic_memory(settings), EpisodicMemory)
    assert isinstance(make_dead_letter_queue(settings), DeadLetterQueue)
    store = make_graph_store(settings)
    assert isinstance(store, SqliteGraphStore) and settings.sqlite_path.exists()
    store.close()


def test_factories_reject_unknown_names(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    for section, factory in (("storage", make_episodic_memory), ("storage", make_dead_letter_queue)):
        bad = settings.model_copy(
            update={section: settings.storage.model_copy(update={"memory": "redis"})}
        )
        with pytest.raises(UnknownNameError, match="postgres, sqlite"):
            factory(bad)
    bad = settings.model_copy(update={"graph": settings.graph.model_copy(update={"backend": "x"})})
    with pytest.raises(UnknownNameError, match="neo4j, sqlite"):
        make_graph_store(bad)


async def test_work_due_bookkeeping(tmp_path: Path) -> None:
    queue = SqliteDeadLetterQueue(tmp_path / "q.db")
    ok = await queue.enqueue(run_id="ok", thread_id="t", checkpoint_id=None, payload={}, error="e")
    bad = await queue.enqueue(run_id="bad", thread_id="t", checkpoint_id=None, payload={}, error="e")
    resumed: list[str] = []

    async def resume(letter: DeadLetter) -> None:
        resumed.append(letter.run_id)
        if letter.run_id == "bad":
            raise RuntimeError("still broken")

    now = datetime.now(UTC)
    assert await work_due(queue, resume, limit=10, now=now) == {
        "claimed": 0, "reprocessed": 0, "rescheduled": 0, "permanent_failure": 0,
    }
    counts = await work_due(queue, resume, limit=10, now=now + timedelta(seconds=121))
    assert counts == {"claimed": 2, "reprocessed": 1, "rescheduled": 1, "permanent_failure": 0}
    assert (await queue.get(ok)).status == "reprocessed"
    failed = await queue.get(bad)
    assert failed.attempts == 2 and failed.error == "RuntimeError: still broken"
    assert "Traceback" in failed.stack
    counts = await work_due(queue, resume, limit=10, now=now + timedelta(seconds=121 + 241))
    assert counts == {"claimed": 1, "reprocessed": 0, "rescheduled": 0, "permanent_failure": 1}
    assert resumed == ["ok", "bad", "bad"]
    await queue.close()
