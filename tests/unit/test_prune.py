"""`kos db prune`: finished threads keep only their latest checkpoint, finished threads
idle past the retention are deleted, interrupted threads are kept (they can be resumed)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from typer.testing import CliRunner

from knowledge_os._cli_ops import db_app
from knowledge_os.graph.checkpointer import open_sqlite_saver
from knowledge_os.graph.prune import prune_checkpoints
from tests.unit.test_runs_and_threads import failing_once

AS_OF = "2026-11-22"


def checkpoints_per_thread(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id").fetchall())


def blob_versions(path: Path, thread_id: str) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return set(db.execute("SELECT channel, version FROM checkpoint_blobs WHERE thread_id = ?", (thread_id,)))


def test_prune_keeps_what_threads_still_need(kos_factory, monkeypatch):
    import knowledge_os.domains.steps as steps

    kos = kos_factory()
    kos.run("What changed in openssl since March?", as_of=AS_OF, thread_id="done")
    last = kos.run("What changed in curl since March?", as_of=AS_OF, thread_id="done")
    monkeypatch.setitem(steps.STEPS, "retrieve", failing_once(steps.STEPS["retrieve"]))
    try:
        kos.run("Which upload fixed CVE-2025-9230?", as_of=AS_OF, thread_id="broken", use_cache=False)
    except RuntimeError:
        pass
    before = checkpoints_per_thread(kos.settings.checkpoint_path)
    assert before["done"] > 2 and before["broken"] > 1

    blobs_before = blob_versions(kos.settings.checkpoint_path, "done")
    report = asyncio.run(prune_checkpoints(kos.settings, older_than_days=30))
    after = checkpoints_per_thread(kos.settings.checkpoint_path)
    assert after == {"done": 1, "broken": before["broken"]}
    # the values only older checkpoints referenced went with them; the latest's stayed
    saver = open_sqlite_saver(kos.settings)
    try:
        versions = saver.get_tuple({"configurable": {"thread_id": "done"}}).checkpoint["channel_versions"]
    finally:
        saver.close()
    kept = {(ch, str(v)) for ch, v in versions.items()} & blobs_before
    assert blob_versions(kos.settings.checkpoint_path, "done") == kept  # (test_checkpointer: keep_latest)
    assert (report.threads_pruned, report.threads_deleted, report.threads_kept) == (1, 0, 1)
    assert report.checkpoints_deleted == before["done"] - 1
    seen = kos.get_thread("done")  # the thread still reads and continues
    assert seen is not None and seen.run_id == last.run_id
    more = kos.run("Which upload fixed CVE-2025-9230?", as_of=AS_OF, thread_id="done")
    assert more.citations[0].id == "deb:openssl:3.0.17-1~deb12u3"

    later = datetime.now(UTC) + timedelta(days=31)
    report = asyncio.run(prune_checkpoints(kos.settings, older_than_days=30, now=later))
    assert (report.threads_deleted, report.threads_kept) == (1, 1)
    assert set(checkpoints_per_thread(kos.settings.checkpoint_path)) == {"broken"}
    assert kos.resume("broken").citations[0].id == "deb:openssl:3.0.17-1~deb12u3"  # still resumable


def test_kos_db_prune_prints_what_it_did(kos_factory, monkeypatch):
    kos = kos_factory()
    kos.run("What changed in openssl since March?", as_of=AS_OF, thread_id="t")
    kos.run("What changed in curl since March?", as_of=AS_OF, thread_id="t")
    n = checkpoints_per_thread(kos.settings.checkpoint_path)["t"]
    monkeypatch.setenv("KOS_HOME", str(kos.settings.home))
    monkeypatch.setenv("KOS_CONFIG_FILE", str(kos.settings.home / "absent.yaml"))
    done = CliRunner().invoke(db_app, ["prune", "--json"])
    assert done.exit_code == 0, done.output
    assert orjson.loads(done.output) == {"threads_pruned": 1, "threads_deleted": 0, "threads_kept": 0,
                                         "checkpoints_deleted": n - 1}
    again = CliRunner().invoke(db_app, ["prune"])
    assert again.exit_code == 0 and "0 checkpoint(s) deleted" in again.output
