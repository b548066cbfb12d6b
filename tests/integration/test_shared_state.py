"""Two KnowledgeOS instances with different homes (two hosts) sharing one PostgreSQL
(``KOS_TEST_POSTGRES_DSN``, database ``<name>_shared`` of its own): one corpus, one
answer cache, one corpus generation. Fake chat model and embedder; each instance keeps
its own in-memory vectors, so what the second host finds it finds through the shared
document store (full text, exact ids) and the shared answer cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from knowledge_os.api import KnowledgeOS
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.conftest import CHANGELOGS, write_changelog
from tests.fakes import HashEmbedder, MemoryVectorStore
from tests.integration.pgdb import empty_tables, own_database

pytestmark = pytest.mark.integration

AS_OF = "2026-11-22"
SUMMARY = "openssl fixed two CVEs in April 2026 [1] after importing 3.0.19 [2]."


def shared_settings(home: Path, dsn: str) -> Settings:
    return Settings(home=home, postgres={"dsn": dsn},
                    storage={"documents": "postgres", "answer_cache": "postgres"})


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[KnowledgeOS, KnowledgeOS]]:
    dsn = own_database("shared")
    empty_tables(dsn)
    made = [KnowledgeOS(services=Services(shared_settings(tmp_path / name, dsn),
                                          chat_model=FakeListChatModel(responses=[SUMMARY] * 20),
                                          embedder=HashEmbedder(), vector_store=MemoryVectorStore()))
            for name in ("host-a", "host-b")]
    yield made[0], made[1]
    for kos in made:
        kos.close()


def test_a_corpus_ingested_on_one_host_is_the_others(hosts, corpus_dir: Path) -> None:
    a, b = hosts
    assert b.services.docstore.count() == 0
    report = a.ingest([corpus_dir])
    assert report.new == 5 and report.problems == []
    assert b.services.docstore.count() == 5
    assert b.services.docstore.generation() == a.services.docstore.generation() > 0
    assert "openssl" in b.services.channels()
    hits = b.services.docstore.search_text("CVE-2026-28389")
    assert [i for i, _ in hits] == ["deb:openssl:3.0.19-1~deb12u2"]
    result = b.run("Which entry fixes CVE-2026-28389?", as_of=AS_OF)
    assert "deb:openssl:3.0.19-1~deb12u2" in [c.id for c in result.citations]


def test_an_answer_made_on_one_host_is_served_on_the_other_until_the_corpus_changes(
    hosts, corpus_dir: Path
) -> None:
    a, b = hosts
    a.ingest([corpus_dir])
    first = a.run("What changed in openssl since March?", as_of=AS_OF)
    assert first.manifest["cache"]["hit"] is False
    again = b.run("What changed in openssl since March?", as_of=AS_OF)
    assert again.manifest["cache"]["hit"] is True and again.manifest["cache"]["kind"] == "exact"
    assert again.usage.llm_calls == 0 and again.answer == first.answer
    entries = [list(e) for e in CHANGELOGS["openssl"]]
    entries[0][5] = [*entries[0][5], "Also fix a memory leak in the CMS decoder."]
    write_changelog(corpus_dir, "openssl", entries)
    assert b.ingest([corpus_dir]).updated == 1  # host B changes the corpus ...
    after = a.run("What changed in openssl since March?", as_of=AS_OF)
    assert after.manifest["cache"]["hit"] is False  # ... and host A no longer serves the old answer
