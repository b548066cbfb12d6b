"""The model's server down mid-run (infrastructure) versus a bad reply (content): the
first fails the run with an error naming the server, dead-letters it and resumes from
its checkpoint once the server is back; the second keeps the data-only answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from knowledge_os.api import KnowledgeOS
from knowledge_os.errors import BackendError, BackendUnavailableError
from knowledge_os.llm.budget import Budget
from knowledge_os.llm.calls import call_llm
from knowledge_os.memory.factory import make_dead_letter_queue
from knowledge_os.server import create_app
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore
from tests.unit.conftest import SUMMARY

Q = "What changed in openssl since March?"
AS_OF = "2026-11-22"
URL = "http://10.0.0.9:8080/v1"


class SwitchableModel(FakeListChatModel):
    """A fake chat model whose server can be switched off: ``failure`` is raised from
    every call while set."""

    failure: Any = None
    calls: int = 0

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return super()._call(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Any:  # a streamed call (the SSE endpoint)
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        yield from super()._stream(*args, **kwargs)


def make(tmp_path: Path, corpus_dir: Path) -> tuple[KnowledgeOS, SwitchableModel]:
    model = SwitchableModel(responses=[SUMMARY])
    services = Services(Settings(home=tmp_path / ".kos"), chat_model=model, embedder=HashEmbedder(),
                        vector_store=MemoryVectorStore())
    kos = KnowledgeOS(services=services)
    assert kos.ingest([corpus_dir]).problems == []
    return kos, model


def letters(kos: KnowledgeOS, status: str = "pending") -> list[Any]:
    async def go() -> list[Any]:
        queue = make_dead_letter_queue(kos.settings)
        try:
            return await queue.list(status=status)
        finally:
            await queue.close()

    return asyncio.run(go())


def test_a_dead_server_fails_the_run_dead_letters_it_and_the_run_resumes(tmp_path, corpus_dir):
    kos, model = make(tmp_path, corpus_dir)
    model.failure = BackendUnavailableError(f"openai: cannot reach {URL}: Connection refused")
    with pytest.raises(BackendUnavailableError, match=f"cannot reach {URL}"):
        kos.run(Q, thread_id="t-down", as_of=AS_OF, use_cache=False)
    [letter] = letters(kos)
    assert letter.thread_id == "t-down" and letter.checkpoint_id and URL in letter.error
    assert kos.get_thread("t-down").answer == ""  # interrupted: no answer was made without the model
    assert kos.services.metrics.snapshot()["kos_dead_letters_enqueued_total"] == 1

    model.failure = None  # the server is back
    calls_before = model.calls
    done = kos.resume("t-down")
    assert not done.data_only and done.answer_mode == "prose" and SUMMARY.split(" [")[0] in done.answer
    assert done.citations and model.calls == calls_before + 1  # only the summary call, from execute on
    kos.close()


def test_a_bad_reply_still_gets_the_data_only_answer(tmp_path, corpus_dir):
    kos, model = make(tmp_path, corpus_dir)
    model.failure = ValueError("the reply was not JSON")  # content, not infrastructure
    r = kos.run(Q, thread_id="t-bad", as_of=AS_OF, use_cache=False)
    assert r.data_only and r.citations
    assert letters(kos) == []
    kos.close()


@pytest.mark.parametrize("exc", [ConnectionError("Failed to connect to Ollama"),
                                 httpx.ConnectError("[Errno 111] Connection refused"),
                                 httpx.RemoteProtocolError("peer closed connection")])
def test_call_llm_calls_connection_errors_unavailable_naming_the_server(exc):
    model = SwitchableModel(responses=["x"], failure=exc)
    object.__setattr__(model, "base_url", "http://127.0.0.1:11434")  # as ChatOllama has
    with pytest.raises(BackendUnavailableError, match="cannot reach http://127.0.0.1:11434"):
        call_llm(model, [], usage={}, budget=Budget(max_llm_calls=2, max_tokens=1000, max_steps=4))


def test_other_provider_errors_stay_plain_backend_errors():
    model = SwitchableModel(responses=["x"], failure=httpx.ReadTimeout("slow"))
    with pytest.raises(BackendError) as info:
        call_llm(model, [], usage={}, budget=Budget(max_llm_calls=2, max_tokens=1000, max_steps=4))
    assert not isinstance(info.value, BackendUnavailableError)


async def test_over_http_the_outage_is_a_503_naming_the_server_and_resume_answers(tmp_path, corpus_dir):
    kos, model = make(tmp_path, corpus_dir)
    model.failure = BackendUnavailableError(f"openai: cannot reach {URL}: Connection refused")
    app = create_app(kos)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                     base_url="http://kos") as client:
            r = await client.post("/v1/runs", json={"query": Q, "thread_id": "t-http", "as_of": AS_OF,
                                                    "use_cache": False})
            assert r.status_code == 503 and r.json()["backend"] == "openai" and URL in r.json()["error"]
            assert "Traceback" not in r.text
            stream = await client.post("/v1/runs/stream", json={"query": Q, "thread_id": "t-sse", "as_of": AS_OF,
                                                                "use_cache": False})
            assert "event: error" in stream.text and URL in stream.text and "Traceback" not in stream.text
            assert '"backend":"openai"' in stream.text
            queue = make_dead_letter_queue(kos.settings)
            try:
                pending = {letter.thread_id for letter in await queue.list(status="pending")}
            finally:
                await queue.close()
            assert pending == {"t-http", "t-sse"}
            r = await client.post("/v1/runs", json={"query": Q, "thread_id": "t-bg", "as_of": AS_OF,
                                                    "use_cache": False, "background": True})
            assert r.status_code == 202
            for _ in range(500):
                polled = await client.get("/v1/threads/t-bg")
                if polled.status_code != 202:
                    break
                await asyncio.sleep(0.02)
            assert polled.status_code == 503 and polled.json()["status"] == "failed"
            assert polled.json()["backend"] == "openai" and URL in polled.json()["error"]
            model.failure = None
            r = await client.post("/v1/threads/t-http/resume")
            assert r.status_code == 200 and not r.json()["data_only"] and r.json()["citations"]
            r = await client.post("/v1/threads/t-bg/resume")
            assert r.status_code == 200 and r.json()["citations"]
            assert (await client.get("/v1/threads/t-bg")).status_code == 200


def test_the_time_a_run_stood_still_does_not_count_against_its_wall_time_budget(tmp_path, corpus_dir):
    import time

    from knowledge_os.settings import QoSLevelSettings

    model = SwitchableModel(responses=[SUMMARY])
    qos = {"interactive": QoSLevelSettings(max_llm_calls=3, max_tokens=8000, max_steps=16, max_wall_s=3)}
    services = Services(Settings(home=tmp_path / ".kos", qos=qos), chat_model=model, embedder=HashEmbedder(),
                        vector_store=MemoryVectorStore())
    kos = KnowledgeOS(services=services)
    assert kos.ingest([corpus_dir]).problems == []
    model.failure = BackendUnavailableError(f"openai: cannot reach {URL}: Connection refused")
    with pytest.raises(BackendUnavailableError):
        kos.run(Q, thread_id="t-wait", as_of=AS_OF, use_cache=False, qos="interactive")
    time.sleep(3.2)  # longer than the level's whole wall-time budget
    model.failure = None
    done = kos.resume("t-wait")
    kos.close()
    assert not done.data_only and done.citations and "wall_time" not in str(done.manifest.get("usage"))
    assert done.usage.latency_s < 3  # the run's own time, not the wait
