"""Two KnowledgeOS instances with different homes (two hosts) sharing one PostgreSQL
(``KOS_TEST_POSTGRES_DSN``, database ``<name>_shared`` of its own): one corpus, one
answer cache, one corpus generation, one set of embeddings (vectors.backend=postgres_edge:
each host searches its own qdrant-edge copy). Fake chat model and embedder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from knowledge_os.api import KnowledgeOS
from knowledge_os.services import Services
from knowledge_os.settings import Settings
from tests.conftest import CHANGELOGS, write_changelog
from tests.fakes import HashEmbedder
from tests.integration.pgdb import SHARED_TABLES, empty_tables, own_database

pytestmark = pytest.mark.integration

AS_OF = "2026-11-22"
SUMMARY = "openssl fixed two CVEs in April 2026 [1] after importing 3.0.19 [2]."


def shared_settings(home: Path, dsn: str) -> Settings:
    return Settings(home=home, postgres={"dsn": dsn}, vectors={"backend": "postgres_edge", "shared_check_s": 0},
                    storage={"documents": "postgres", "answer_cache": "postgres"})


def host(home: Path, dsn: str) -> KnowledgeOS:
    return KnowledgeOS(services=Services(shared_settings(home, dsn), embedder=HashEmbedder(),
                                         chat_model=FakeListChatModel(responses=[SUMMARY] * 20)))


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[KnowledgeOS, KnowledgeOS]]:
    dsn = own_database("shared")
    empty_tables(dsn, (*SHARED_TABLES, "kos_embeddings", "kos_embedding_deletes"))
    made = [host(tmp_path / name, dsn) for name in ("host-a", "host-b")]
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


def test_the_embeddings_ingested_on_one_host_are_searched_on_every_host(hosts, corpus_dir: Path, tmp_path: Path) -> None:
    a, b = hosts
    a.ingest([corpus_dir])
    doc = a.services.docstore.get(["deb:openssl:3.0.19-1~deb12u2"])[0]
    query = b.services.embedder.embed_query(doc.text[:512])
    assert b.services.vector_store.search(query, top_k=1)[0].id == doc.id  # B synced on its search
    assert b.services.vector_store.sync() == 0  # up to date: one read
    shutil.rmtree(corpus_dir / "openssl")
    assert a.ingest([corpus_dir]).removed == 3
    assert doc.id not in [h.id for h in b.services.vector_store.search(query, top_k=10)]
    c = host(tmp_path / "host-c", dsn=a.settings.postgres.dsn.get_secret_value())  # a new host copies all
    try:
        assert [h.id for h in c.services.vector_store.search(query, top_k=3)] == \
            [h.id for h in b.services.vector_store.search(query, top_k=3)]
        assert c.services.vector_store.count() == a.services.docstore.count() == 2
    finally:
        c.close()


def test_hosts_writing_in_turns_end_with_the_same_vectors_as_the_database(tmp_path: Path) -> None:
    """Two hosts upserting and deleting interleaved (each write advancing the counter):
    after a sync both local copies hold exactly the shared rows, vectors included."""
    import random

    import numpy as np

    from knowledge_os.retrieval.base import VectorPoint
    from knowledge_os.retrieval.vectors_shared import SharedVectorStore
    from tests.fakes import MemoryVectorStore

    dsn = own_database("shared")
    empty_tables(dsn, (*SHARED_TABLES, "kos_embeddings", "kos_embedding_deletes"))
    settings = Settings(postgres={"dsn": dsn}, vectors={"shared_check_s": 3600})  # sync only when asked
    locals_ = [MemoryVectorStore(4), MemoryVectorStore(4)]
    stores = [SharedVectorStore(settings, tmp_path / name, lambda _folder, m=m: m)
              for name, m in zip(("a", "b"), locals_)]
    rng, pyrng = np.random.default_rng(3), random.Random(3)
    expected: dict[str, np.ndarray] = {}
    try:
        for step in range(60):
            store = stores[pyrng.randrange(2)]
            if expected and pyrng.random() < 0.3:
                gone = pyrng.sample(sorted(expected), k=min(3, len(expected)))
                store.delete(gone)
                for i in gone:
                    expected.pop(i)
            else:
                ids = [f"d{pyrng.randrange(40)}" for _ in range(3)]
                points = [VectorPoint(id=i, vector=rng.standard_normal(4).astype(np.float32),
                                      payload={"channel": "c", "ts": step, "source": "debian"}) for i in ids]
                store.upsert(points)
                expected.update({p.id: p.vector for p in points})
        for store, local in zip(stores, locals_):
            store.sync()
            assert set(local.points) == set(expected)
            assert all(np.allclose(local.points[i].vector, v / np.linalg.norm(v)) for i, v in expected.items())  # the fake normalises
        assert stores[0].sync() == stores[1].sync() == 0
    finally:
        for store in stores:
            store.close()
