"""The ``db`` / ``memory`` / ``dlq`` sub-commands on the SQLite stores (no server)."""

from __future__ import annotations

import asyncio
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from knowledge_os._cli_ops import db_app, dlq_app, memory_app
from knowledge_os.memory.base import DeadLetter, EpisodicEvent
from knowledge_os.memory.sqlite import SqliteDeadLetterQueue, SqliteEpisodicMemory

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KOS_HOME", str(tmp_path / "kos"))
    monkeypatch.setenv("KOS_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.delenv("KOS_POSTGRES__DSN", raising=False)
    monkeypatch.delenv("KOS_STORAGE__MEMORY", raising=False)
    (tmp_path / "kos").mkdir()
    return tmp_path / "kos"


def _seed(home: Path) -> int:
    async def main() -> int:
        memory = SqliteEpisodicMemory(home / "kos.db")
        await memory.record_many([
            EpisodicEvent(type="run_started", entity_type="run", entity_id="r1"),
            EpisodicEvent(type="error", entity_type="run", entity_id="r1", metadata={"m": 1},
                          created_at=datetime.now(UTC) - timedelta(days=200)),
        ])
        await memory.close()
        queue = SqliteDeadLetterQueue(home / "kos.db")
        letter_id = await queue.enqueue(run_id="r1", thread_id="t1", checkpoint_id="c1",
                                        payload={"query": "q"}, error="boom")
        await queue.close()
        return letter_id

    return asyncio.run(main())


def test_memory_recent_and_purge(home: Path) -> None:
    _seed(home)
    result = runner.invoke(memory_app, ["recent", "--json"])
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.output.splitlines()]
    assert [r["type"] for r in rows] == ["run_started", "error"]
    result = runner.invoke(memory_app, ["recent", "--type", "error", "--json"])
    assert [orjson.loads(x)["metadata"] for x in result.output.splitlines()] == [{"m": 1}]
    result = runner.invoke(memory_app, ["purge"])
    assert result.exit_code == 0 and "deleted 1 event(s) older than 90 day(s)" in result.output


def test_dlq_list_and_bad_status(home: Path) -> None:
    letter_id = _seed(home)
    result = runner.invoke(dlq_app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = [orjson.loads(line) for line in result.output.splitlines()]
    assert (row["id"], row["status"], row["attempts"]) == (letter_id, "pending", 1)
    assert runner.invoke(dlq_app, ["list", "--status", "bogus"]).exit_code == 2


def test_dlq_work_uses_the_api_resume(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    letter_id = _seed(home)
    seen: list[DeadLetter] = []

    async def resume_dead_letter(letter: DeadLetter) -> None:
        seen.append(letter)

    monkeypatch.setitem(__import__("sys").modules, "knowledge_os.api",
                        types.SimpleNamespace(resume_dead_letter=resume_dead_letter))
    result = runner.invoke(dlq_app, ["work"])
    assert result.exit_code == 0 and "claimed: 0" in result.output  # not due for 120 s

    async def make_due() -> None:
        queue = SqliteDeadLetterQueue(home / "kos.db")
        await queue._db.run(lambda c: c.execute("UPDATE kos_dead_letters SET next_attempt_at = 0"),
                            write=True)
        await queue.close()

    asyncio.run(make_due())
    result = runner.invoke(dlq_app, ["work", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "reprocessed: 1" in result.output
    assert [d.id for d in seen] == [letter_id]


def test_db_upgrade_without_dsn_is_a_no_op(home: Path) -> None:
    result = runner.invoke(db_app, ["upgrade"])
    assert result.exit_code == 0 and "nothing to upgrade" in result.output


def test_unreachable_postgres_exits_2_with_redacted_dsn(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("KOS_STORAGE__MEMORY", "postgres")
    monkeypatch.setenv("KOS_POSTGRES__DSN", "postgresql://kos:s3cret@127.0.0.1:1/kos")
    monkeypatch.setenv("KOS_POSTGRES__CONNECT_TIMEOUT_S", "2")
    result = runner.invoke(dlq_app, ["list"])
    assert result.exit_code == 2
    assert "s3cret" not in result.output
