"""Personas: profiles from YAML, the offline index, resolution, ordering, prompts, cache scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from knowledge_os.api import KnowledgeOS
from knowledge_os.domains.compose import DEFAULT_CHANGE_KINDS
from knowledge_os.errors import UnknownNameError
from knowledge_os.personas.index import PersonaIndex, index_dir
from knowledge_os.personas.profiles import (
    BUILTIN_FILE,
    SUMMARY_MAX_TOKENS,
    SUMMARY_MIN_TOKENS,
    PersonaConfigError,
    load_profiles,
    profile_version,
    summary_text,
)
from knowledge_os.personas.registry import PersonaRegistry, order_by_interests
from knowledge_os.personas.tokens import approx_tokens
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore

AS_OF = "2026-11-22"
Q = "What changed in curl in 2026?"
CVE_UPLOAD = "deb:curl:7.88.1-10+deb12u13"  # May 2026, CVE-2025-10148
BUGFIX_UPLOAD = "deb:curl:7.88.1-10+deb12u14"  # October 2026, a crash fix (newer)
LONG = ("The reader maintains embedded boards and wants to know which uploads change the "
        "kernel interfaces, the boot loaders and the firmware they ship, on which dates and in "
        "which versions, with every fact copied from the changelog entries and cited. ") * 2


def _write(path: Path, profiles: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"personas": profiles}), encoding="utf-8")
    return path


def _builtin() -> dict:
    return load_profiles([BUILTIN_FILE], count_tokens=approx_tokens)


# -- profiles ------------------------------------------------------------------------------


def test_the_shipped_profiles_load_and_their_summaries_are_in_the_token_bound() -> None:
    profiles = _builtin()
    assert {"security-team", "release-manager", "developer"} <= set(profiles)
    for p in profiles.values():
        assert SUMMARY_MIN_TOKENS <= approx_tokens(summary_text(p)) <= SUMMARY_MAX_TOKENS, p.name
    assert profiles["security-team"].interests[0] == "security"


@pytest.mark.parametrize(("profile", "key", "words"), [
    ({"name": "Ops Team", "description": LONG, "interests": ["security"]}, "personas[0].name", "pattern"),
    ({"name": "ops", "description": LONG, "interests": ["kernels"]}, "personas[0].interests.0", "kernels"),
    ({"name": "ops", "description": LONG, "interests": ["security"], "colour": "red"}, "personas[0].colour",
     "Extra inputs"),
    ({"name": "ops", "description": "Short.", "interests": ["security"]}, "personas[0].description",
     "lengthen"),
    ({"name": "ops", "description": LONG * 3, "interests": ["security"]}, "personas[0].description",
     "shorten"),
])
def test_a_bad_profile_is_an_error_naming_the_file_and_the_key(tmp_path, profile, key, words) -> None:
    path = _write(tmp_path / "p.yaml", [profile])
    with pytest.raises(PersonaConfigError) as caught:
        load_profiles([path], count_tokens=approx_tokens)
    assert caught.value.key_path == key and str(path) in str(caught.value)
    assert words in str(caught.value)


def test_a_user_file_adds_and_replaces_profiles_by_name(tmp_path) -> None:
    own = _write(tmp_path / "personas.yaml", [
        {"name": "embedded-team", "description": LONG, "interests": ["bugfix"]},
        {"name": "developer", "title": "an app developer", "description": LONG, "interests": ["new_upstream"]},
    ])
    services = Services(Settings(home=tmp_path), chat_model=_Echo(), embedder=HashEmbedder(),
                        vector_store=MemoryVectorStore())
    assert services.settings.persona_files[-1] == own  # <home>/personas.yaml after the built-in file
    profiles = services.personas.profiles
    assert profiles["embedded-team"].interests == ("bugfix",)
    assert profiles["developer"].reader == "an app developer"
    assert "security-team" in profiles


def test_the_version_changes_with_any_edit() -> None:
    p = _builtin()["developer"]
    assert profile_version(p) == profile_version(p.model_copy())
    assert profile_version(p) != profile_version(p.model_copy(update={"interests": ("security",)}))


# -- the index and resolution --------------------------------------------------------------


def _registry(tmp_path: Path, profiles: dict | None = None, floor: float = 0.5) -> PersonaRegistry:
    return PersonaRegistry(profiles=profiles or _builtin(), embedder=HashEmbedder(),
                           index_folder=index_dir(tmp_path), similarity_floor=floor)


def test_build_stores_one_row_per_profile_and_a_changed_profile_makes_it_stale(tmp_path) -> None:
    reg = _registry(tmp_path)
    built = reg.build()
    loaded = PersonaIndex.load(index_dir(tmp_path))
    assert loaded is not None and loaded.names == built.names == tuple(reg.profiles)
    assert loaded.vectors.shape == (len(reg.profiles), HashEmbedder.dim)
    np.testing.assert_allclose(np.linalg.norm(loaded.vectors, axis=1), 1.0, rtol=1e-5)
    assert loaded.stale_for(reg.profiles, HashEmbedder.name) is None
    edited = {**reg.profiles, "developer": reg.profiles["developer"].model_copy(update={"interests": ("security",)})}
    assert "developer" in loaded.stale_for(edited, HashEmbedder.name)
    assert "embedder" in loaded.stale_for(reg.profiles, "other/model")


def test_a_missing_index_is_built_on_first_use_and_stored(tmp_path) -> None:
    reg = _registry(tmp_path)
    assert PersonaIndex.load(index_dir(tmp_path)) is None
    reg.resolve("the security team")
    assert PersonaIndex.load(index_dir(tmp_path)) is not None


def test_a_name_resolves_by_name_and_case_is_folded(tmp_path) -> None:
    r = _registry(tmp_path).resolve(" Security-Team ")
    assert (r.method, r.name, r.similarity) == ("name", "security-team", None)
    assert r.version == profile_version(_builtin()["security-team"])
    assert r.interests[0] == "security" and r.summary == summary_text(_builtin()["security-team"])


def test_an_unknown_name_is_an_error_naming_it_and_listing_the_profiles(tmp_path) -> None:
    with pytest.raises(UnknownNameError) as caught:
        _registry(tmp_path).resolve("secuirty-team")
    assert "'secuirty-team'" in str(caught.value) and "security-team" in str(caught.value)


def test_free_text_takes_the_nearest_profile_above_the_floor_and_none_below(tmp_path) -> None:
    # The hashing embedder: shared words make texts similar.
    reg = _registry(tmp_path, floor=0.3)
    near = reg.resolve("security team tracks vulnerabilities CVE ids")
    assert (near.method, near.name) == ("embedding", "security-team") and near.similarity >= 0.3
    far = reg.resolve("zebra crossing")
    assert (far.method, far.name, far.scope()) == ("none", None, None)
    assert "answered without a persona" in far.note and far.similarity < 0.3


# -- ordering ------------------------------------------------------------------------------


def _doc(i: int, body: str) -> dict[str, Any]:
    return {"id": f"d{i}", "text": f"pkg ({i}) unstable; urgency=medium\n  * {body}"}


def test_interests_reorder_without_dropping_or_adding() -> None:
    listing = [_doc(0, "Import 3.0.19"), _doc(1, "Fix crash. Closes: #123"), _doc(2, "CVE-2025-1 fixed"),
               _doc(3, "Update German translation"), _doc(4, "CVE-2025-2 and a crash")]
    out = order_by_interests(listing, ("security", "bugfix"), DEFAULT_CHANGE_KINDS)
    assert [d["id"] for d in out] == ["d2", "d4", "d1", "d0", "d3"]  # security, then bug fixes, then as listed
    assert sorted(d["id"] for d in out) == sorted(d["id"] for d in listing)
    assert order_by_interests(listing, ("documentation",), DEFAULT_CHANGE_KINDS) == listing  # nothing matches


# -- whole runs ----------------------------------------------------------------------------


class _Echo(BaseChatModel):
    """Writes a fixed grounded summary and records every system prompt."""

    systems: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "echo-fake"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self.systems.append(str(messages[0].content))
        return ChatResult(generations=[ChatGeneration(message=AIMessage("curl had uploads in 2026 [1] [2]."))])


@pytest.fixture
def kos(tmp_path, corpus_dir):
    chat = _Echo(systems=[])
    k = KnowledgeOS(services=Services(Settings(home=tmp_path / ".kos"), chat_model=chat, embedder=HashEmbedder(),
                                      vector_store=MemoryVectorStore()))
    assert k.ingest([corpus_dir]).problems == []
    yield k
    k.close()


def test_a_persona_changes_what_is_listed_first_not_what_is_listed(kos) -> None:
    plain = kos.run(Q, as_of=AS_OF, use_cache=False)
    security = kos.run(Q, as_of=AS_OF, use_cache=False, persona="security-team")
    assert [c.id for c in plain.citations] == [BUGFIX_UPLOAD, CVE_UPLOAD]  # grouped: newest first
    assert [c.id for c in security.citations] == [CVE_UPLOAD, BUGFIX_UPLOAD]
    assert security.answer.index("CVE-2025-10148") < security.answer.index("deb12u14")
    developer = kos.run(Q, as_of=AS_OF, use_cache=False, persona="developer")
    assert [c.id for c in developer.citations] == [BUGFIX_UPLOAD, CVE_UPLOAD]  # bug fixes first


def test_the_summary_goes_into_the_synthesis_prompt_and_the_manifest_names_the_profile(kos) -> None:
    chat = kos.services.chat_model
    r = kos.run(Q, as_of=AS_OF, use_cache=False, persona="security-team")
    summary = summary_text(kos.services.personas.profiles["security-team"])
    assert chat.systems and summary in chat.systems[-1]
    assert "for the security team" in chat.systems[-1]  # {persona}: the profile's title
    p = r.manifest["persona"]
    assert (p["name"], p["method"]) == ("security-team", "name")
    assert p["version"] == profile_version(kos.services.personas.profiles["security-team"])
    assert "summary" not in p  # references only
    kos.run(Q, as_of=AS_OF, use_cache=False)
    assert summary not in chat.systems[-1]


def test_the_persona_is_part_of_the_answer_cache_scope(kos) -> None:
    first = kos.run(Q, as_of=AS_OF, persona="security-team")
    assert kos.run(Q, as_of=AS_OF, persona="security-team").manifest["cache"]["hit"] is True
    other = kos.run(Q, as_of=AS_OF, persona="developer")
    assert other.manifest["cache"]["hit"] is False and other.answer != first.answer
    assert kos.run(Q, as_of=AS_OF).manifest["cache"]["hit"] is False


def test_an_unknown_persona_name_fails_before_the_run(kos) -> None:
    with pytest.raises(UnknownNameError, match="secuirty-team"):
        kos.run(Q, as_of=AS_OF, persona="secuirty-team")


def test_free_text_far_from_every_profile_runs_without_a_persona_and_says_so(kos) -> None:
    r = kos.run(Q, as_of=AS_OF, use_cache=False, persona="zebra crossing")
    assert r.manifest["persona"]["method"] == "none" and r.manifest["persona"]["name"] is None
    assert "answered without a persona" in r.manifest["persona"]["note"]
    assert [c.id for c in r.citations] == [BUGFIX_UPLOAD, CVE_UPLOAD]


def test_the_data_written_summary_names_the_newest_entry_whatever_leads_the_listing(tmp_path, corpus_dir) -> None:
    class Silent(_Echo):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            return ChatResult(generations=[ChatGeneration(message=AIMessage(""))])

    k = KnowledgeOS(services=Services(Settings(home=tmp_path / ".kos"), chat_model=Silent(systems=[]),
                                      embedder=HashEmbedder(), vector_store=MemoryVectorStore()))
    try:
        assert k.ingest([corpus_dir]).problems == []
        r = k.run(Q, as_of=AS_OF, use_cache=False, persona="security-team")
    finally:
        k.close()
    assert r.manifest["quality"]["data_only"] and [c.id for c in r.citations] == [CVE_UPLOAD, BUGFIX_UPLOAD]
    assert "The newest is curl 7.88.1-10+deb12u14 (2026-10-10) [2]." in r.answer


async def test_the_server_field_takes_a_profile_and_an_unknown_name_is_422(kos) -> None:
    import httpx

    from knowledge_os.server import create_app

    app = create_app(kos, max_concurrent_runs=1, shutdown_grace_s=5)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://kos") as client:
            bad = await client.post("/v1/runs", json={"query": Q, "persona": "secuirty-team", "as_of": AS_OF})
            good = await client.post("/v1/runs", json={"query": Q, "persona": "security-team", "as_of": AS_OF,
                                                        "use_cache": False})
    assert bad.status_code == 422 and "secuirty-team" in bad.json()["error"]
    assert "security-team" in bad.json()["error"].split("allowed:")[1]
    assert good.status_code == 200, good.text
    assert [c["id"] for c in good.json()["citations"]] == [CVE_UPLOAD, BUGFIX_UPLOAD]
