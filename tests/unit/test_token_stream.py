"""LLM tokens of the summary through ``KnowledgeOS.astream(tokens=True)`` and the SSE
stream of ``kos serve``: langchain-core's fake chat models (one streams a character at a
time, the other cannot stream)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
from langchain_core.language_models.fake_chat_models import FakeListChatModel, FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from knowledge_os.api import TOKEN_EVENT, KnowledgeOS
from knowledge_os.server import create_app
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore
from tests.unit.conftest import SUMMARY

Q = "What changed in openssl since March?"
AS_OF = "2026-11-22"


def make(tmp_path: Path, corpus_dir: Path, model) -> KnowledgeOS:
    services = Services(Settings(home=tmp_path / ".kos"), chat_model=model, embedder=HashEmbedder(),
                        vector_store=MemoryVectorStore())
    kos = KnowledgeOS(services=services)
    assert kos.ingest([corpus_dir]).problems == []
    return kos


def collect(kos: KnowledgeOS, **kw) -> list[tuple[str, dict]]:
    async def go():
        return [item async for item in kos.astream(Q, as_of=AS_OF, use_cache=False, **kw)]

    return asyncio.run(go())


def test_astream_yields_the_summary_token_by_token_before_execute_finishes(tmp_path, corpus_dir):
    kos = make(tmp_path, corpus_dir, FakeListChatModel(responses=[SUMMARY]))
    items = collect(kos, tokens=True)
    kos.close()
    names = [n for n, _ in items]
    tokens = [u for n, u in items if n == TOKEN_EVENT]
    assert len(tokens) == len(SUMMARY)  # the fake streams one character at a time
    assert "".join(t["text"] for t in tokens) == SUMMARY
    assert {(t["node"], t["call"], t["variant"], t["mode"]) for t in tokens} == {("execute", "summarise", 0, "prose")}
    # every token arrives after route and before execute's own update
    assert names.index("route") < names.index(TOKEN_EVENT)
    assert max(i for i, n in enumerate(names) if n == TOKEN_EVENT) < names.index("execute")
    answer = [u for n, u in items if n == "finalize" or "answer" in u][-1]
    assert answer  # the run still finishes


def test_without_tokens_astream_yields_node_updates_only(tmp_path, corpus_dir):
    kos = make(tmp_path, corpus_dir, FakeListChatModel(responses=[SUMMARY]))
    names = [n for n, _ in collect(kos)]
    kos.close()
    assert TOKEN_EVENT not in names and names[0] == "cache_lookup" and names[-1] == "finalize"


def test_a_model_that_cannot_stream_gives_one_piece_with_the_whole_reply(tmp_path, corpus_dir):
    kos = make(tmp_path, corpus_dir, FakeMessagesListChatModel(responses=[AIMessage(SUMMARY)]))
    tokens = [u for n, u in collect(kos, tokens=True) if n == TOKEN_EVENT]
    kos.close()
    assert [t["text"] for t in tokens] == [SUMMARY]


def test_an_answer_cache_hit_streams_no_tokens(tmp_path, corpus_dir):
    kos = make(tmp_path, corpus_dir, FakeListChatModel(responses=[SUMMARY]))

    async def go():
        first = [n async for n, _ in kos.astream(Q, as_of=AS_OF, tokens=True)]
        second = [n async for n, _ in kos.astream(Q, as_of=AS_OF, tokens=True)]
        return first, second

    first, second = asyncio.run(go())
    kos.close()
    assert TOKEN_EVENT in first and "route" not in second and TOKEN_EVENT not in second


async def sse(client: httpx.AsyncClient, url: str) -> list[tuple[str, dict]]:
    async with client.stream("POST", url, json={"query": Q, "as_of": AS_OF, "use_cache": False}) as r:
        assert r.status_code == 200
        text = "".join([chunk async for chunk in r.aiter_text()])
    out = []
    for block in text.strip().split("\n\n"):
        event, data = block.split("\n", 1)
        out.append((event.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


async def test_the_sse_stream_carries_token_events_between_node_events(tmp_path, corpus_dir):
    app = create_app(make(tmp_path, corpus_dir, FakeListChatModel(responses=[SUMMARY])), max_concurrent_runs=2)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kos") as client:
            events = await sse(client, "/v1/runs/stream")
            quiet = await sse(client, "/v1/runs/stream?tokens=false")
    names = [e for e, _ in events]
    tokens = [d for e, d in events if e == "token"]
    assert "".join(t["text"] for t in tokens) == SUMMARY
    assert set(tokens[0]) == {"node", "call", "variant", "mode", "text"} and tokens[0]["call"] == "summarise"
    first_token = names.index("token")
    assert names[:first_token].count("node") >= 3 and names[-1] == "result"  # cache_lookup, route, plan first
    executed = [i for i, (e, d) in enumerate(events) if e == "node" and d["node"] == "execute"][0]
    assert max(i for i, n in enumerate(names) if n == "token") < executed
    assert "token" not in [e for e, _ in quiet] and [e for e, _ in quiet][-1] == "result"
