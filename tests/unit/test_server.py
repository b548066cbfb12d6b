"""`kos serve` against its ASGI app (httpx, fakes): status codes, bodies, slots, shutdown."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from knowledge_os.api import KnowledgeOS
from knowledge_os.errors import BackendUnavailableError
from knowledge_os.server import create_app
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore, fail_first_call
from tests.unit.conftest import SUMMARY

Q = "What changed in openssl since March?"
AS_OF = "2026-11-22"


def fake_kos(tmp_path: Path, corpus_dir: Path) -> KnowledgeOS:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    services = Services(Settings(home=tmp_path / ".kos"), chat_model=FakeListChatModel(responses=[SUMMARY]),
                        embedder=HashEmbedder(), vector_store=MemoryVectorStore())
    kos = KnowledgeOS(services=services)
    assert kos.ingest([corpus_dir]).problems == []
    return kos


@pytest.fixture
async def served(tmp_path: Path, corpus_dir: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(fake_kos(tmp_path, corpus_dir), max_concurrent_runs=1, shutdown_grace_s=5)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://kos") as client:
            yield client, app


def blocking(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make the first node wait until the returned event is set (it runs in a worker thread)."""
    import knowledge_os.nodes.cache_lookup as cache_lookup_module

    release = threading.Event()
    original = cache_lookup_module.analyze_query

    def slow(*args: Any, **kwargs: Any) -> Any:
        assert release.wait(10), "the test never released the run"
        return original(*args, **kwargs)

    monkeypatch.setattr(cache_lookup_module, "analyze_query", slow)
    return release


async def wait_for(predicate: Any, timeout_s: float = 10) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_a_run_returns_the_kos_run_json_object(served):
    client, app = served
    r = await client.post("/v1/runs", json={"query": Q, "as_of": AS_OF, "thread_id": "t1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["thread_id"] == "t1" and body["domain"] in {"trend", "digest"}
    assert body["citations"] and body["answer"]
    assert set(body) >= {"run_id", "route", "path", "answer", "quality", "usage", "manifest"}
    # the thread reads back the same run
    t = await client.get("/v1/threads/t1")
    assert t.status_code == 200 and t.json()["run_id"] == body["run_id"]


async def test_a_bad_request_is_422_naming_the_field(served):
    client, _ = served
    for body, field in (({"query": ""}, "query"), ({"query": Q, "path": "medium"}, "path"),
                        ({"query": Q, "as_of": "March"}, "as_of"), ({"query": Q, "colour": 1}, "colour"),
                        ({"query": Q, "qos": "gold"}, "qos"), ({}, "query")):
        r = await client.post("/v1/runs", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field and field in r.json()["error"]
    r = await client.post("/v1/runs", json={"query": Q, "domain": "astrology"})
    assert r.status_code == 422 and "astrology" in r.json()["error"] and "trend" in r.json()["error"]
    r = await client.post("/v1/runs", json={"query": "   "})
    assert r.status_code == 422 and "empty" in r.json()["error"]


async def test_a_backend_down_is_503_naming_it_and_no_trace_reaches_the_client(served, monkeypatch):
    import knowledge_os.nodes.cache_lookup as cache_lookup_module

    client, _ = served

    def down(*args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailableError("qdrant: connection refused at 127.0.0.1:6333")

    monkeypatch.setattr(cache_lookup_module, "analyze_query", down)
    r = await client.post("/v1/runs", json={"query": Q})
    assert r.status_code == 503 and r.json()["backend"] == "qdrant"
    assert "connection refused" in r.json()["error"]

    def bug(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(cache_lookup_module, "analyze_query", bug)
    r = await client.post("/v1/runs", json={"query": Q})
    assert r.status_code == 500
    assert r.json()["error"] == "internal error" and r.json()["id"]
    assert "secret" not in r.text and "Traceback" not in r.text


async def test_a_failed_run_resumes_over_http(served, monkeypatch):
    import knowledge_os.nodes.cache_lookup as cache_lookup_module

    client, _ = served
    fail_first_call(monkeypatch, cache_lookup_module, "analyze_query")
    r = await client.post("/v1/runs", json={"query": Q, "thread_id": "t-fail", "as_of": AS_OF, "path": "smart"})
    assert r.status_code == 500
    r = await client.post("/v1/threads/t-fail/resume")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "smart" and r.json()["answer"]
    assert (await client.post("/v1/threads/nope/resume")).status_code == 404
    assert (await client.get("/v1/threads/nope")).status_code == 404


async def test_background_run_is_202_then_the_thread_holds_the_result(served):
    client, _ = served
    r = await client.post("/v1/runs", json={"query": Q, "background": True, "as_of": AS_OF})
    assert r.status_code == 202
    thread_id = r.json()["thread_id"]
    for _ in range(500):
        t = await client.get(f"/v1/threads/{thread_id}")
        if t.status_code != 202:
            break
        await asyncio.sleep(0.02)
    assert t.status_code == 200 and t.json()["thread_id"] == thread_id and t.json()["citations"]


async def test_runs_beyond_the_limit_get_429(served, monkeypatch):
    client, app = served
    release = blocking(monkeypatch)
    r = await client.post("/v1/runs", json={"query": Q, "background": True, "thread_id": "slow"})
    assert r.status_code == 202
    assert (await client.get("/v1/threads/slow")).status_code == 202  # still running
    busy = await client.post("/v1/runs", json={"query": Q})
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
    assert (await client.post("/v1/runs/stream", json={"query": Q})).status_code == 429
    assert (await client.get("/healthz")).json() == {"status": "ok"}  # the loop is not blocked
    release.set()
    await wait_for(lambda: app.state.runs.active == 0)
    assert (await client.post("/v1/runs", json={"query": Q})).status_code == 200


async def test_stream_sends_one_event_per_node_then_the_result(served):
    client, _ = served
    # token events (on by default) are tests/unit/test_token_stream.py's
    async with client.stream("POST", "/v1/runs/stream?tokens=false", json={"query": Q, "as_of": AS_OF}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = "".join([chunk async for chunk in r.aiter_text()])
    events = [block.split("\n", 1) for block in text.strip().split("\n\n")]
    names = [e[0].removeprefix("event: ") for e in events]
    data = [orjson.loads(e[1].removeprefix("data: ")) for e in events]
    assert names[-1] == "result" and set(names[:-1]) == {"node"}
    nodes = [d["node"] for d in data[:-1]]
    assert nodes[0] == "cache_lookup" and nodes[-1] == "finalize" and "route" in nodes
    assert data[-1]["answer"] and data[-1]["thread_id"] == r.headers["X-Thread-Id"]


async def test_readyz_names_the_backend_that_is_down(served):
    client, app = served
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json()["backends"]["sqlite"] == "ok" and "llm" in r.json()["backends"]

    async def refuse() -> None:
        raise ConnectionRefusedError("connect to 127.0.0.1:7687 refused")

    app.state.extra_checks = {"neo4j": refuse}
    r = await client.get("/readyz")
    assert r.status_code == 503 and r.json()["down"] == ["neo4j"]
    assert "refused" in r.json()["backends"]["neo4j"]


async def test_metrics_are_prometheus_text_and_count_runs(served):
    client, _ = served
    await client.post("/v1/runs", json={"query": Q, "as_of": AS_OF})
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'kos_runs_total{domain="' in r.text


async def test_openapi_documents_the_endpoints(served):
    client, _ = served
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/runs", "/v1/runs/stream", "/v1/threads/{thread_id}", "/v1/threads/{thread_id}/resume",
            "/healthz", "/readyz", "/metrics"} <= set(paths)


async def test_shutdown_cancels_late_background_runs_and_they_stay_resumable(tmp_path, corpus_dir, monkeypatch):
    kos = fake_kos(tmp_path, corpus_dir)
    app = create_app(kos, max_concurrent_runs=2, shutdown_grace_s=0.2)
    release = blocking(monkeypatch)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://kos") as client:
            r = await client.post("/v1/runs", json={"query": Q, "background": True, "thread_id": "late",
                                                    "as_of": AS_OF})
            assert r.status_code == 202
            await wait_for(lambda: app.state.runs.active == 1)
    task = app.state.runs.background["late"]
    assert task.cancelled()
    release.set()
    result = await kos.aresume("late")
    assert result.thread_id == "late" and result.citations
    await kos.aclose()


async def test_every_response_carries_the_server_time(served):
    client, _ = served
    r = await client.post("/v1/runs", json={"query": Q, "as_of": AS_OF})
    timing = r.headers["server-timing"]
    assert timing.startswith("app;dur=")
    ms = float(timing.removeprefix("app;dur="))
    assert 0 < ms < 120_000 and r.json()["usage"]["latency_s"] * 1000 <= ms  # the run is inside it
    assert (await client.get("/healthz")).headers["server-timing"].startswith("app;dur=")
    async with client.stream("POST", "/v1/runs/stream", json={"query": Q, "as_of": AS_OF}) as s:
        assert s.headers["server-timing"].startswith("app;dur=")  # the stream's own events pass untouched
        assert "event: result" in "".join([chunk async for chunk in s.aiter_text()])
