"""Queued runs without a queue configured: the embedded default stays as it is, and the
queue commands say what to set (no PostgreSQL needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from knowledge_os.cli import app
from knowledge_os.settings import Settings

procrastinate = pytest.importorskip("procrastinate")


def test_the_default_has_no_queue_and_the_seed_retry_policy() -> None:
    q = Settings().queue
    assert q.backend == "none"
    assert (q.max_attempts, q.retry_base_s) == (3, 60.0)


def test_seed_retry_waits_base_times_two_to_the_n_then_gives_up() -> None:
    from knowledge_os.queue.app import SeedRetry

    retry = SeedRetry(max_attempts=3, base_s=0.5)
    assert [retry.delay_s(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, None, None]


@pytest.mark.parametrize("args", [["run", "--queue", "What changed in openssl?"], ["worker", "--burst"]])
def test_queue_commands_without_a_queue_exit_2_naming_the_setting(args, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KOS_HOME", str(tmp_path / ".kos"))
    monkeypatch.delenv("KOS_QUEUE__BACKEND", raising=False)
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    assert "KOS_QUEUE__BACKEND=procrastinate" in " ".join(done.output.split())


def test_queue_with_procrastinate_but_no_dsn_names_the_dsn_setting(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KOS_HOME", str(tmp_path / ".kos"))
    monkeypatch.setenv("KOS_QUEUE__BACKEND", "procrastinate")
    monkeypatch.delenv("KOS_POSTGRES__DSN", raising=False)
    done = CliRunner().invoke(app, ["run", "--queue", "What changed in openssl?"])
    assert done.exit_code == 2, done.output
    assert "KOS_POSTGRES__DSN" in " ".join(done.output.split())
