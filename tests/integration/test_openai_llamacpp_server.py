"""llm.provider=openai against llama.cpp's own OpenAI-compatible server
(``python -m llama_cpp.server``, llama-cpp-python's ``server`` extra) serving the shipped
GGUF: JSON-Schema output, a per-call timeout, token streaming through ``kos serve``, and
a server that dies mid-run (the run fails naming it, is dead-lettered, and resumes from
its checkpoint once a server is back)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from knowledge_os.errors import BackendTimeoutError, BackendUnavailableError
from knowledge_os.llm.chat import default_model_path
from knowledge_os.llm.factory import make_chat_model
from knowledge_os.settings import LLMSettings
from tests.integration.test_serve_process import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("starlette_context") is None,
                       reason="llama-cpp-python[server] (the llm-server extra) not installed"),
]

SCHEMA = {"type": "object", "properties": {"domain": {"type": "string", "enum": ["trend", "digest"]}},
          "required": ["domain"]}


def start_llama_server(port: int, log: Path, *extra: str) -> subprocess.Popen:
    """``python -m llama_cpp.server`` on the shipped GGUF (``extra``: more server flags),
    once it answers ``/v1/models``."""
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
                                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
                                 "--n_threads", "1", "--model_alias", "smollm2", *extra],
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"llama_cpp.server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("llama_cpp.server did not answer in 120 s")


@pytest.fixture
def llama_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    proc = start_llama_server(port, tmp_path / "llama.log")
    yield f"http://127.0.0.1:{port}/v1", proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


def settings(url: str, **kw) -> LLMSettings:
    return LLMSettings(provider="openai", openai_base_url=url, openai_model="smollm2",
                       openai_json_mode="json_object", **kw)


def call(model, **kwargs):
    from knowledge_os.llm.budget import Budget
    from knowledge_os.llm.calls import call_llm

    messages = [SystemMessage("Answer with JSON."), HumanMessage("Which domain: what changed in openssl?")]
    return call_llm(model, messages, usage={}, budget=Budget(max_llm_calls=4, max_tokens=8000, max_steps=8),
                    **kwargs)


def test_json_schema_output_over_http(llama_server):
    url, _ = llama_server
    from knowledge_os.llm.chat import invoke_kwargs

    model = make_chat_model(settings(url))
    message = model.invoke([HumanMessage("Which domain is 'what changed in openssl'? Answer in JSON.")],
                           **invoke_kwargs(model, json_schema=SCHEMA, max_tokens=32))
    assert orjson.loads(message.content)["domain"] in {"trend", "digest"}
    assert message.usage_metadata["input_tokens"] > 0


def test_a_call_past_its_timeout_is_a_backend_timeout(llama_server):
    url, _ = llama_server
    model = make_chat_model(settings(url, max_tokens=512))
    with pytest.raises(BackendTimeoutError, match="within 0.010 s"):
        call(model, timeout_s=0.01, max_tokens=512)


def test_a_dead_server_is_a_clear_backend_error(llama_server):
    url, proc = llama_server
    proc.terminate()
    proc.wait(timeout=30)
    model = make_chat_model(settings(url))
    with pytest.raises(BackendUnavailableError, match=f"openai: cannot reach {url}"):
        call(model, max_tokens=16)


def kos_cli(home: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KOS_HOME": str(home), "KOS_LLM__PROVIDER": "openai", "KOS_LLM__OPENAI_BASE_URL": url,
           "KOS_LLM__OPENAI_MODEL": "smollm2", "KOS_LLM__OPENAI_JSON_MODE": "json_object",
           "KOS_LLM__ANSWER_MODE": "prose"}
    return subprocess.run([sys.executable, "-m", "knowledge_os.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)


async def test_a_server_killed_mid_run_dead_letters_the_run_and_it_resumes_once_back(llama_server, tmp_path,
                                                                                   corpus_dir):
    """The run is under way (routed and planned) when the server is SIGKILLed: the run
    fails with an error naming the server (not a data-only answer), the dead-letter queue
    holds it (``kos dlq list``), and once a server is back on the same address ``kos
    resume`` finishes it from its checkpoint with the model's summary."""
    url, proc = llama_server
    from knowledge_os.api import KnowledgeOS
    from knowledge_os.settings import Settings

    home = tmp_path / ".kos"
    kos = KnowledgeOS(Settings(home=home, llm=settings(url, answer_mode="prose")))
    assert kos.ingest([corpus_dir]).problems == []
    seen: list[str] = []
    with pytest.raises(BackendUnavailableError, match=f"cannot reach {url}"):
        async for node, _ in kos.astream("What changed in openssl since March?", thread_id="t-kill",
                                         as_of="2026-11-22", use_cache=False):
            seen.append(node)
            if node == "plan":  # mid-run: execute's summary call comes next
                proc.kill()
                proc.wait(timeout=30)
    await kos.aclose()
    assert seen[-1] == "plan" and "execute" not in seen

    listed = kos_cli(home, url, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [letter] = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert letter["thread_id"] == "t-kill" and letter["status"] == "pending" and letter["checkpoint_id"]
    assert "BackendUnavailableError" in letter["error"] and url in letter["error"]

    down = kos_cli(home, url, "resume", "t-kill")  # still down: a clear error, no traceback
    assert down.returncode == 2 and f"cannot reach {url}" in down.stderr and "Traceback" not in down.stderr

    port = int(url.rsplit(":", 1)[1].split("/")[0])
    again = start_llama_server(port, tmp_path / "llama-again.log")
    try:
        resumed = kos_cli(home, url, "resume", "t-kill", "--json")
    finally:
        again.terminate()
        again.wait(timeout=30)
    assert resumed.returncode == 0, resumed.stderr
    result = orjson.loads(resumed.stdout)
    assert result["thread_id"] == "t-kill" and result["citations"] and result["answer"]
    # the model wrote a summary this time (SmolLM2's prose may still fail the checks: then
    # the answer says so, which is content, not the outage notice)
    assert result["usage"]["llm_calls"] >= 1 and "llm.summarise.0" in result["manifest"]["timings_ms"]
    assert "model was not available" not in result["answer"]


async def test_kos_serve_streams_the_summary_tokens_from_the_server(llama_server, tmp_path, corpus_dir):
    """SSE of ``POST /v1/runs/stream`` with the chat model behind llama.cpp's server: the
    summary arrives as token events, before ``execute`` finishes, and they make up the
    draft that ``execute`` reports."""
    url, _ = llama_server
    from knowledge_os.api import KnowledgeOS
    from knowledge_os.server import create_app
    from knowledge_os.settings import Settings

    kos = KnowledgeOS(Settings(home=tmp_path / ".kos", llm=settings(url, answer_mode="prose")))
    assert kos.ingest([corpus_dir]).problems == []
    app = create_app(kos)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kos",
                                     timeout=300) as client:
            body = {"query": "What changed in openssl since March?", "as_of": "2026-11-22", "use_cache": False}
            async with client.stream("POST", "/v1/runs/stream", json=body) as r:
                assert r.status_code == 200
                text = "".join([chunk async for chunk in r.aiter_text()])
    events = [(e.removeprefix("event: "), orjson.loads(d.removeprefix("data: ")))
              for e, d in (block.split("\n", 1) for block in text.strip().split("\n\n"))]
    names = [e for e, _ in events]
    assert names[-1] == "result", events[-1]
    tokens = [d for e, d in events if e == "token" and d["variant"] == 0 and d["call"] == "summarise"]
    assert len(tokens) > 3 and {t["mode"] for t in tokens} == {"prose"}
    executed = next(d["update"] for e, d in events if e == "node" and d["node"] == "execute")
    assert names.index("token") < [i for i, (e, d) in enumerate(events) if e == "node" and d["node"] == "execute"][0]
    first = executed["candidates"][0]
    assert first["mode"] == "prose"
    assert "".join(t["text"] for t in tokens).strip() == first["summary"]
