"""LangGraph Studio's server (`langgraph dev`, from langgraph-cli[inmem]) serves the graph
of langgraph.json: the server hands out its input and context schemas (Studio's input
form; tests/unit/test_state.py builds them in-process), and a run through langgraph-sdk
answers from an ingested corpus with the real embedded models.
The test starts the server itself on a free port and stops it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).parent / "langgraph"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path, corpus_dir: Path) -> Iterator[str]:
    env = {**os.environ, "KOS_HOME": str(tmp_path / ".kos"), "PYTHONPATH": str(ROOT)}
    ingest = subprocess.run([sys.executable, "-m", "knowledge_os.cli", "ingest", "--json", str(corpus_dir)],
                            env=env, cwd=tmp_path, capture_output=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr
    assert orjson.loads(ingest.stdout)["documents"] == 5
    # The repo's langgraph.json, its paths made absolute, so the server's files stay in tmp_path.
    config = orjson.loads((ROOT / "langgraph.json").read_bytes())
    config["dependencies"] = [str((ROOT / d).resolve()) for d in config["dependencies"]]
    config["graphs"] = {name: str((ROOT / spec).resolve()) for name, spec in config["graphs"].items()}
    (tmp_path / "langgraph.json").write_bytes(orjson.dumps(config))
    port = free_port()
    proc = subprocess.Popen([str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--port", str(port),
                             "--config", str(tmp_path / "langgraph.json")],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-3000:]
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "langgraph dev did not answer /ok within 120 s"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        proc.stdout.close()


def test_a_run_through_langgraph_sdk(server: str) -> None:
    from langgraph_sdk import get_client

    async def main() -> tuple[dict, dict]:
        async with get_client(url=server) as client:
            assistant = (await client.assistants.search(graph_id="knowledge_os"))[0]
            schemas = await client.assistants.get_schemas(assistant["assistant_id"])
            output = await client.runs.wait(
                None, "knowledge_os", input={"query": "What changed in openssl since March?"},
                context={"as_of": "2026-11-22", "domain": "digest"},
            )
        return schemas, output

    schemas, output = asyncio.run(main())
    assert set(schemas["input_schema"]["properties"]) == {"query"}
    assert "persona" in schemas["context_schema"]["properties"]
    assert "services" not in schemas["context_schema"]["properties"]
    assert output["domain"] == "digest" and output["route"]["method"] == "forced"
    assert [c["id"] for c in output["citations"]] == ["deb:openssl:3.0.19-1~deb12u2"]
    assert output["answer"]
