"""llm.provider=openai against llama.cpp's own OpenAI-compatible server
(``python -m llama_cpp.server``, llama-cpp-python's ``server`` extra) serving the shipped
GGUF: JSON-Schema output, a per-call timeout, and a server that dies mid-run (the run
still answers from the data and says so; a failed run is dead-lettered and resumes)."""

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


def test_a_dead_server_is_a_clear_backend_error_and_a_run_still_answers(llama_server, tmp_path, corpus_dir):
    url, proc = llama_server
    proc.terminate()
    proc.wait(timeout=30)
    model = make_chat_model(settings(url))
    with pytest.raises(BackendUnavailableError, match=f"openai: cannot reach {url}"):
        call(model, max_tokens=16)
    # a whole run on the dead server: the nodes fall back to the data and say so
    from knowledge_os.api import KnowledgeOS
    from knowledge_os.settings import Settings

    env_keys = {"KOS_HOME": str(tmp_path / ".kos")}
    os.environ.update(env_keys)
    try:
        kos = KnowledgeOS(Settings(home=tmp_path / ".kos", llm=settings(url)))
        assert kos.ingest([corpus_dir]).problems == []
        r = kos.run("What changed in openssl since March?", as_of="2026-11-22", use_cache=False)
        assert r.data_only and "model was not available" in r.answer and r.citations
        kos.close()
    finally:
        for k in env_keys:
            os.environ.pop(k, None)


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
