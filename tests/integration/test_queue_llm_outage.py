"""A queued run whose model server (llama.cpp's ``python -m llama_cpp.server``, the shipped
GGUF) cannot be reached: the worker's attempts fail with an error naming the server, the
job ends on the dead-letter list (``kos dlq list``), and ``kos dlq retry`` once the server
is up finishes the run from its checkpoint with the model's summary. Needs PostgreSQL
(``KOS_TEST_POSTGRES_DSN``) and llama-cpp-python's server extra."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("starlette_context") is None,
                       reason="llama-cpp-python[server] (the llm-server extra) not installed"),
]

procrastinate = pytest.importorskip("procrastinate")

from knowledge_os.api import KnowledgeOS  # noqa: E402
from knowledge_os.queue.app import list_dead_letters, make_app, retry_dead_letter, run_worker  # noqa: E402
from knowledge_os.services import Services  # noqa: E402
from knowledge_os.settings import LLMSettings  # noqa: E402
from tests.fakes import HashEmbedder, MemoryVectorStore  # noqa: E402
from tests.integration.test_openai_llamacpp_server import start_llama_server  # noqa: E402
from tests.integration.test_queue import job_rows, settings, work  # noqa: E402, F401 - settings is a fixture
from tests.integration.test_serve_process import free_port  # noqa: E402

QUESTION = "What changed in openssl since March?"


async def test_a_queued_run_on_a_dead_model_server_is_dead_lettered_and_retried_once_it_is_back(
        settings, corpus_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    s = settings.model_copy(update={"llm": LLMSettings(provider="openai", openai_base_url=url, openai_model="smollm2",
                                                       openai_json_mode="json_object", answer_mode="prose")})
    kos = KnowledgeOS(services=Services(s, embedder=HashEmbedder(), vector_store=MemoryVectorStore()))
    assert kos.ingest([corpus_dir]).problems == []
    queued = await kos.aenqueue(QUESTION, thread_id="q-llm", as_of="2026-11-22", use_cache=False)
    for _ in range(60):  # three attempts, 0.05 s and 0.1 s apart
        await run_worker(s, wait=False, kos_factory=lambda: kos)
        [row] = await job_rows(s)
        if row["status"] == "failed":
            break
    assert row["status"] == "failed" and row["attempts"] == 3
    counted = kos.services.metrics.snapshot()
    assert (counted["kos_dead_letters_enqueued_total"], counted["kos_dead_letters_permanent_failures_total"]) == (1, 1)

    env = {**os.environ, "KOS_HOME": str(s.home), "KOS_QUEUE__BACKEND": "procrastinate",
           "KOS_POSTGRES__DSN": s.postgres.dsn.get_secret_value()}
    listed = subprocess.run([sys.executable, "-m", "knowledge_os.cli", "dlq", "list", "--json"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    [letter] = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert (letter["id"], letter["thread_id"], letter["status"]) == (queued.job_id, "q-llm", "permanent_failure")
    assert letter["error"].startswith("BackendUnavailableError") and url in letter["error"]
    assert letter["checkpoint_id"]

    server = start_llama_server(port, tmp_path / "llama.log")
    try:
        app = make_app(s)
        async with app.open_async():
            await retry_dead_letter(app, queued.job_id)
        await work(s, kos)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = await kos.aget_thread("q-llm")
    assert result is not None and result.citations and result.usage.llm_calls >= 1
    assert "model was not available" not in result.answer
    async with app.open_async():
        [letter] = await list_dead_letters(app)
        assert letter.status == "reprocessed"
    assert kos.services.metrics.snapshot()["kos_dead_letters_reprocessed_total"] == 1
    await kos.aclose()
