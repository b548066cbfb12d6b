"""QoS levels: the router picks one (or the caller asks), its budgets cap the run, a
Smart Path run that cannot fit its level takes the Fast Path and says so, a spent wall
time ends the run with its best answer and is counted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from knowledge_os.api import KnowledgeOS
from knowledge_os.errors import InputError
from knowledge_os.nodes._common import budget_for
from knowledge_os.qos import choose_qos
from knowledge_os.services import Services
from knowledge_os.settings import QoSLevelSettings, QoSSettings, Settings
from tests.fakes import HashEmbedder, MemoryVectorStore
from tests.unit.conftest import SUMMARY

AS_OF = "2026-11-22"
SHORT = "What changed in openssl?"
LONG_FAST = "What changed in the openssl package since March of this year?"
SMART_Q = "Compare what changed in openssl and curl since March and explain why"


def make_kos(tmp_path: Path, corpus_dir: Path, **settings_kw: Any) -> KnowledgeOS:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    services = Services(Settings(home=tmp_path / ".kos", **settings_kw),
                        chat_model=FakeListChatModel(responses=[SUMMARY]),
                        embedder=HashEmbedder(), vector_store=MemoryVectorStore())
    kos = KnowledgeOS(services=services)
    assert kos.ingest([corpus_dir]).problems == []
    return kos


@pytest.mark.parametrize(("query", "path", "important", "asked", "forced", "want"), [
    (SHORT, "fast", False, None, False, ("fast", "interactive", "router", False)),
    (LONG_FAST, "fast", False, None, False, ("fast", "standard", "router", False)),
    (SHORT, "fast", True, None, False, ("fast", "standard", "router", False)),
    (SMART_Q, "smart", False, None, False, ("smart", "thorough", "router", False)),
    (SHORT, "fast", False, "thorough", False, ("fast", "thorough", "asked", False)),
    (SMART_Q, "smart", False, "standard", False, ("smart", "standard", "asked", False)),
    (SMART_Q, "smart", False, "interactive", False, ("fast", "interactive", "asked", True)),
    (SMART_Q, "smart", False, "interactive", True, ("smart", "interactive", "asked", False)),  # path forced
])
def test_choose_qos(query, path, important, asked, forced, want):
    out = choose_qos(settings=Settings(), query=query, path=path, important=important, asked=asked,
                     path_forced=forced)
    assert (out["path"], out["qos"], out["qos_method"], "qos_fallback" in out) == want
    if want[3]:
        assert "Fast Path" in out["qos_fallback"] and "interactive" in out["qos_fallback"]


def test_the_level_caps_the_domain_budget():
    services = Services(Settings(), embedder=HashEmbedder(), vector_store=MemoryVectorStore())
    spec = services.domains.get("trend")
    plain = budget_for(services, spec)
    capped = budget_for(services, spec, {"route": {"qos": "interactive"}, "started_at": 1000.0})
    level = services.settings.qos.interactive
    assert (capped.max_llm_calls, capped.max_tokens, capped.max_steps) == (
        min(plain.max_llm_calls, level.max_llm_calls), min(plain.max_tokens, level.max_tokens),
        min(plain.max_steps, level.max_steps))
    assert capped.max_llm_calls < plain.max_llm_calls and capped.deadline == 1000.0 + level.max_wall_s
    assert budget_for(services, spec, {"route": {"qos": "thorough"}}).max_llm_calls == plain.max_llm_calls


def test_an_asked_level_too_small_for_the_smart_path_falls_back_and_says_so(tmp_path, corpus_dir):
    kos = make_kos(tmp_path, corpus_dir)
    r = kos.run(SMART_Q, as_of=AS_OF, use_cache=False)
    assert (r.path, r.manifest["route"]["qos"]) == ("smart", "thorough")
    r = kos.run(SMART_Q, as_of=AS_OF, use_cache=False, qos="interactive")
    route = r.manifest["route"]
    assert (r.path, route["qos"], route["qos_method"]) == ("fast", "interactive", "asked")
    assert "Smart Path needs" in route["qos_fallback"]
    assert r.manifest["budget"]["llm_calls"] == kos.settings.qos.interactive.max_llm_calls
    text = kos.metrics_text()
    assert 'kos_qos_level_requests_total{qos="interactive"} 1.0' in text
    assert 'kos_qos_level_requests_total{qos="thorough"} 1.0' in text
    with pytest.raises(InputError, match="qos must be one of interactive, standard, thorough"):
        kos.run(SMART_Q, qos="platinum")
    kos.close()


def test_a_spent_wall_time_ends_the_run_with_its_best_answer_and_is_counted(tmp_path, corpus_dir):
    tiny = QoSLevelSettings(max_llm_calls=8, max_tokens=16000, max_steps=24, max_wall_s=1e-6)
    kos = make_kos(tmp_path, corpus_dir, qos=QoSSettings(thorough=tiny))
    r = kos.run(SMART_Q, as_of=AS_OF, use_cache=False)
    assert r.path == "smart" and r.manifest["route"]["qos"] == "thorough"
    # the deadline passed before the first step: no LLM call, the data-only answer says so
    assert r.answer and r.data_only and "written from the data alone" in r.answer
    assert r.usage.llm_calls == 0
    assert 'kos_request_budget_exceeded_total{budget="wall_time"} 1.0' in kos.metrics_text()
    kos.close()


def test_http_and_cli_take_a_level(tmp_path, corpus_dir, monkeypatch):
    import httpx

    from knowledge_os.server import create_app

    kos = make_kos(tmp_path, corpus_dir)

    async def post() -> Any:
        app = create_app(kos)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kos") as client:
            return await client.post("/v1/runs", json={"query": SHORT, "qos": "thorough", "as_of": AS_OF})

    r = asyncio.run(post())
    assert r.status_code == 200 and r.json()["manifest"]["route"]["qos"] == "thorough"
    kos.close()

    from knowledge_os import cli

    result = CliRunner().invoke(cli.app, ["run", "--qos", "gold", SHORT])
    assert result.exit_code == 2 and "qos must be one of" in result.output
