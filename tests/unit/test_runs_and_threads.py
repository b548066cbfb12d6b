"""Runs on threads: the run's context survives a resume, per-run fields start empty, the
stream names only nodes, and instances do not touch each other's services."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from knowledge_os.api import KnowledgeOS
from knowledge_os.services import Services, get_services, reset_services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore
from tests.unit.conftest import SUMMARY

AS_OF = "2026-11-22"


class RecordingChat(FakeListChatModel):
    """A fake chat model that keeps every prompt it was sent (system + user text)."""

    prompts: list[str] = []

    def _call(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> str:
        self.prompts.append("\n".join(str(m.content) for m in messages))
        return super()._call(messages, stop, run_manager, **kwargs)


def failing_once(original: Any) -> Any:
    """``original``, except that its first call raises RuntimeError."""
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker died")
        return original(*args, **kwargs)

    return wrapper


def recording_kos(tmp_path: Path, corpus_dir: Path, **settings_kw: Any) -> tuple[KnowledgeOS, RecordingChat]:
    model = RecordingChat(responses=[SUMMARY], prompts=[])
    services = Services(Settings(home=tmp_path / ".kos", **settings_kw), chat_model=model,
                        embedder=HashEmbedder(), vector_store=MemoryVectorStore())
    kos = KnowledgeOS(services=services)
    assert kos.ingest([corpus_dir]).problems == []
    return kos, model


def ts(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


# -- bug 1: the run's context travels with the thread -------------------------------------


def test_resume_after_a_failure_in_the_first_node_keeps_the_run_context(tmp_path, corpus_dir, monkeypatch):
    import knowledge_os.nodes.cache_lookup as cache_lookup_module

    kos, model = recording_kos(tmp_path, corpus_dir)
    monkeypatch.setattr(cache_lookup_module, "analyze_query", failing_once(cache_lookup_module.analyze_query))
    with pytest.raises(RuntimeError, match="worker died"):
        kos.run("What changed in openssl since March?", thread_id="t-ctx", domain="trend", path="smart",
                persona="security-team", as_of="2025-06-15", use_cache=False)
    r = asyncio.run(kos.aresume("t-ctx"))
    assert (r.domain, r.route.method, r.path) == ("trend", "forced", "smart")
    # "since March" is read against the run's as-of day (2025-06-15), not the day of the resume
    assert r.manifest["analysis"]["dates"]["ts_from"] == ts("2025-03-01")
    assert model.prompts and all("the security team" in p for p in model.prompts)
    kos.close()


def test_resume_after_a_failure_in_execute_keeps_persona_and_cache_scope(tmp_path, corpus_dir, monkeypatch):
    import knowledge_os.domains.steps as steps

    kos, model = recording_kos(tmp_path, corpus_dir)
    monkeypatch.setitem(steps.STEPS, "retrieve", failing_once(steps.STEPS["retrieve"]))
    with pytest.raises(RuntimeError, match="worker died"):
        kos.run("What changed in openssl since March?", thread_id="t-ctx2", persona="security-team",
                as_of=AS_OF)
    r = asyncio.run(kos.aresume("t-ctx2"))
    assert [c.id for c in r.citations] == ["deb:openssl:3.0.19-1~deb12u2"]
    assert model.prompts and all("the security team" in p for p in model.prompts)
    # The stored answer is found again by the same question, persona and day.
    again = kos.run("What changed in openssl since March?", persona="security-team", as_of=AS_OF)
    assert again.route.method == "cache" and again.answer == r.answer
    kos.close()


# -- bug 2: per-run events ------------------------------------------------------------------


def test_each_run_on_a_thread_writes_only_its_own_events(kos_factory):
    kos = kos_factory(responses=["curl fixed a crash [1]."])
    first = kos.run("What changed in curl in 2020?", as_of=AS_OF, thread_id="t-ev", use_cache=False)
    assert first.manifest["replans"] == 1  # this run raised a "retry" event
    second = kos.run("What changed in openssl since March?", as_of=AS_OF, thread_id="t-ev", use_cache=False)

    async def types_of(run_id: str) -> list[str]:
        memory = await kos.services.episodic_memory()
        return [e.type for e in await memory.recent(entity_id=run_id, limit=100)]

    assert "retry" in asyncio.run(types_of(first.run_id))
    assert "retry" not in asyncio.run(types_of(second.run_id))
    assert second.manifest["counts"]["events"] == 0


# -- bug 6: the stream names nodes only ------------------------------------------------------


def test_stream_on_a_node_cache_hit_yields_nodes_only(kos_factory):
    kos = kos_factory(responses=["openssl fixed CVE-2026-28387 [1]."], cache={"answer_cache": False})

    async def collect() -> list[str]:
        return [n async for n, _ in kos.astream("What changed in openssl since March?", as_of=AS_OF)]

    first = asyncio.run(collect())
    again = asyncio.run(collect())
    assert again == first == ["cache_lookup", "route", "plan", "execute", "check", "verify", "rank",
                              "cache_store", "finalize"]


# -- bug 10: no process-wide side effects ---------------------------------------------------


def test_a_second_instance_leaves_the_first_one_alone(tmp_path, corpus_dir):
    fake_a = MemoryVectorStore()
    a = KnowledgeOS(services=Services(Settings(home=tmp_path / "a"), chat_model=FakeListChatModel(responses=[SUMMARY]),
                                      embedder=HashEmbedder(), vector_store=fake_a))
    a.ingest([corpus_dir])
    default = get_services()
    b = KnowledgeOS(services=Services(Settings(home=tmp_path / "b"), chat_model=FakeListChatModel(responses=[SUMMARY]),
                                      embedder=HashEmbedder(), vector_store=MemoryVectorStore()))
    assert get_services() is default  # constructing an instance changes no process-wide state
    reset_services(None)
    assert a.services.vector_store is fake_a and fake_a.count() > 0
    r = a.run("What changed in openssl since March?", as_of=AS_OF)
    assert [c.id for c in r.citations] == ["deb:openssl:3.0.19-1~deb12u2"]
    a.close()
    b.close()


def test_an_injected_store_survives_close(tmp_path, corpus_dir):
    fake = MemoryVectorStore()
    kos = KnowledgeOS(services=Services(Settings(home=tmp_path / ".kos"), chat_model=FakeListChatModel(responses=[SUMMARY]),
                                        embedder=HashEmbedder(), vector_store=fake))
    kos.ingest([corpus_dir])
    kos.close()
    assert kos.services.vector_store is fake  # not silently replaced by a real store
    r = kos.run("What changed in openssl since March?", as_of=AS_OF)
    assert [c.id for c in r.citations] == ["deb:openssl:3.0.19-1~deb12u2"]
    kos.close()


def test_a_script_that_never_calls_close_exits(tmp_path, corpus_dir):
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        from langchain_core.language_models.fake_chat_models import FakeListChatModel
        from knowledge_os.api import KnowledgeOS
        from knowledge_os.services import Services
        from knowledge_os.settings import Settings
        from tests.fakes import HashEmbedder, MemoryVectorStore
        kos = KnowledgeOS(services=Services(Settings(home={str(tmp_path / ".kos")!r}),
                          chat_model=FakeListChatModel(responses=["x [1]."]),
                          embedder=HashEmbedder(), vector_store=MemoryVectorStore()))
        kos.ingest([{str(corpus_dir)!r}])
        print(kos.run("What changed in openssl since March?", as_of="{AS_OF}").citations[0].id)
        print(kos.get_thread(kos.run("and curl?", as_of="{AS_OF}").thread_id) is not None)
    """)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["deb:openssl:3.0.19-1~deb12u2", "True"]


# -- issue 13: the graph is compiled once per instance, checkpoints stay durable -------------


def test_runs_compile_the_graph_once_and_checkpoint_every_run(tmp_path, corpus_dir, monkeypatch):
    from knowledge_os.graph import builder as builder_module

    compiles: list[object] = []
    original = builder_module.builder.compile

    def counting(*args: Any, **kwargs: Any) -> Any:
        compiles.append(kwargs.get("checkpointer"))
        return original(*args, **kwargs)

    monkeypatch.setattr(builder_module.builder, "compile", counting)
    kos, _ = recording_kos(tmp_path, corpus_dir)
    first = kos.run("What changed in openssl since March?", as_of=AS_OF, use_cache=False)
    second = kos.run("What changed in curl since March?", as_of=AS_OF, use_cache=False)
    assert kos.get_thread(first.thread_id) is not None
    assert len(compiles) == 1
    kos.close()
    # Each run's checkpoints are on disk: a new instance (a new process would be the same)
    # reads both threads back.
    other = KnowledgeOS(services=Services(Settings(home=tmp_path / ".kos"),
                                          chat_model=FakeListChatModel(responses=[SUMMARY]),
                                          embedder=HashEmbedder(), vector_store=MemoryVectorStore()))
    for run in (first, second):
        back = other.get_thread(run.thread_id)
        assert back is not None and back.answer == run.answer
    other.close()
