"""A real `kos run` process killed (SIGKILL) in the middle of the graph resumes from its
checkpoint with the same thread id, does not repeat completed nodes, and finishes —
with the SQLite checkpointer and with PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import require_service_env

pytestmark = pytest.mark.integration

KOS = [sys.executable, "-m", "knowledge_os.cli"]
QUESTION = "Compare what changed in openssl and curl since March and explain why"


def env_for(home: Path, checkpointer: str) -> dict[str, str]:
    # Prose answers: execute always calls the LLM (a structured answer the data already
    # completes skips it, and execute is then too short to be killed in).
    env = {**os.environ, "KOS_HOME": str(home), "KOS_LLM__ANSWER_MODE": "prose"}
    if checkpointer == "postgres":
        env["KOS_STORAGE__CHECKPOINTER"] = "postgres"
        env["KOS_POSTGRES__DSN"] = require_service_env("KOS_TEST_POSTGRES_DSN")
    return env


async def history(env: dict[str, str], thread: str) -> list:
    from knowledge_os.graph.builder import builder
    from knowledge_os.graph.checkpointer import open_checkpointer
    from knowledge_os.settings import Settings

    keys = ("KOS_HOME", "KOS_STORAGE__CHECKPOINTER", "KOS_POSTGRES__DSN")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys if k in env})
    try:
        settings = Settings()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    async with open_checkpointer(settings) as saver:
        graph = builder.compile(checkpointer=saver)
        return [s async for s in graph.aget_state_history({"configurable": {"thread_id": thread}})]


@pytest.mark.parametrize("checkpointer", ["sqlite", "postgres"])
def test_killed_run_resumes_without_repeating_nodes(tmp_path: Path, corpus_dir: Path, checkpointer: str) -> None:
    home = tmp_path / ".kos"
    env = env_for(home, checkpointer)
    subprocess.run([*KOS, "ingest", "--json", str(corpus_dir)], env=env, check=True, capture_output=True, timeout=300)
    thread = f"crash-{checkpointer}-{time.time_ns()}"
    proc = subprocess.Popen([*KOS, "run", "--json", "--no-cache", "--as-of", "2026-11-22", "--thread", thread,
                             QUESTION], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Wait until `plan` has been checkpointed (next node: execute, where the LLM works), then kill.
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        states = asyncio.run(history(env, thread))
        if states and states[0].next == ("execute",):
            proc.send_signal(signal.SIGKILL)
            killed_at = states[0].next
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert killed_at == ("execute",), f"the run finished or stalled before it could be killed: rc={proc.returncode}"
    assert proc.returncode == -signal.SIGKILL
    before = asyncio.run(history(env, thread))
    assert before[0].next == ("execute",)  # interrupted mid-graph

    done = subprocess.run([*KOS, "resume", "--json", thread], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    assert result["thread_id"] == thread and result["answer"] and result["citations"]
    assert result["run_id"] == before[0].values["run_id"]  # the same run, finished

    after = asyncio.run(history(env, thread))
    assert after[0].next == ()
    nexts = [s.next for s in after]
    for node in ("cache_lookup", "route", "plan"):
        assert nexts.count((node,)) == 1, (node, nexts)  # completed nodes were not run again
