"""`kos serve` as a real process on a free port, with the real embedded models: a run
over HTTP gives the `kos run --json` object, /readyz and /metrics answer, SIGTERM shuts it down cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

KOS = [sys.executable, "-m", "knowledge_os.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """Start ``kos serve`` and wait until /healthz answers (at most 120 s)."""
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([*KOS, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"kos serve exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"kos serve did not answer: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    from tests.conftest import CHANGELOGS, write_changelog

    tmp = tmp_path_factory.mktemp("serve")
    doc = tmp / "doc"
    for package, entries in CHANGELOGS.items():
        write_changelog(doc, package, entries)
    env = {**os.environ, "KOS_HOME": str(tmp / ".kos")}
    subprocess.run([*KOS, "ingest", str(doc)], env=env, check=True, capture_output=True, timeout=600)
    port = free_port()
    proc = start_server(env, port, tmp / "serve.log")
    yield f"http://127.0.0.1:{port}", proc, tmp / "serve.log"
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_run_over_http_with_the_real_models(server):
    url, _, _ = server
    r = httpx.post(f"{url}/v1/runs", json={"query": "What changed in openssl since March?",
                                             "as_of": "2026-11-22", "thread_id": "http-1"}, timeout=300)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["thread_id"] == "http-1" and body["citations"] and body["answer"]
    assert any(c["metadata"].get("package") == "openssl" for c in body["citations"])
    assert httpx.get(f"{url}/v1/threads/http-1", timeout=30).json()["run_id"] == body["run_id"]
    ready = httpx.get(f"{url}/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["backends"]["llm"] == "ok"
    assert "kos_runs_total" in httpx.get(f"{url}/metrics", timeout=30).text
    bad = httpx.post(f"{url}/v1/runs", json={"query": "x", "path": "medium"}, timeout=30)
    assert bad.status_code == 422 and bad.json()["field"] == "path"


def test_sigterm_shuts_down_cleanly(server):
    _, proc, log = server
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down (lifespan included), then re-raises the signal it caught
    assert proc.wait(timeout=60) == -signal.SIGTERM
    text = log.read_text()
    assert "Application shutdown complete" in text and "Traceback" not in text
