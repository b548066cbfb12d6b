"""One conformance suite for every DocumentStore implementation.

Parametrized over the embedded SQLite store (a temp file) and PostgreSQL
(``KOS_TEST_POSTGRES_DSN``, database ``<name>_docs`` of its own, tables emptied before
each test; skipped when unset, failing under ``CI``). FTS5's behaviour is the reference:
the last test checks that PostgreSQL matches the very documents FTS5 matches.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge_os.retrieval.base import Document, DocumentStore, VectorFilter
from knowledge_os.retrieval.factory import make_document_store
from knowledge_os.retrieval.graph_sqlite import SqliteGraphStore
from knowledge_os.retrieval.ingest import ingest
from knowledge_os.settings import Settings
from tests.conftest import CHANGELOGS, write_changelog
from tests.fakes import HashEmbedder, MemoryVectorStore
from tests.integration.pgdb import empty_tables, own_database

pytestmark = pytest.mark.integration

def store_settings(backend: str, home: Path) -> Settings:
    """Settings of a document store of ``backend``; PostgreSQL's tables emptied."""
    if backend == "sqlite":
        return Settings(home=home)
    dsn = own_database("docs")
    empty_tables(dsn)
    return Settings(home=home, storage={"documents": "postgres"}, postgres={"dsn": dsn})


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    docs = make_document_store(store_settings(request.param, tmp_path / "kos"))
    yield docs
    docs.close()


def _doc(doc_id: str, text: str, *, channel: str = "openssh", ts: int = 1_700_000_000,
         entities: tuple[str, ...] = (), origin: str = "", title: str | None = None) -> Document:
    return Document(id=doc_id, channel=channel, title=title or f"{channel} {doc_id}", text=text, ts=ts,
                    source="debian", metadata={"version": doc_id, "z": 1, "a": {"nested": [1, 2]}},
                    entities=entities, content_hash=f"h-{doc_id}-{len(text)}", origin=origin)


def test_implements_protocol_and_starts_empty(store: DocumentStore) -> None:
    assert isinstance(store, DocumentStore)
    assert (store.count(), store.generation(), store.channels()) == (0, 0, {})
    assert store.search_text("openssh") == [] and store.get(["x"]) == [] and store.hashes([]) == {}


def test_put_get_round_trip_keeps_every_field_and_the_order_asked(store: DocumentStore) -> None:
    a = _doc("a", "Fix CVE-2024-6387.", entities=("package:openssh", "cve:CVE-2024-6387"), origin="/d/a")
    b = _doc("b", "Rebuild.", channel="curl", ts=1_600_000_000)
    store.upsert([a, b])
    assert store.get(["b", "missing", "a"]) == [b, a]
    assert list(store.get(["a"])[0].metadata) == ["version", "z", "a"]  # key order as written
    assert store.hashes(["a", "b", "c"]) == {"a": a.content_hash, "b": b.content_hash}
    assert store.count() == 2


def test_upsert_replaces_the_document_and_its_entity_rows(store: DocumentStore) -> None:
    store.upsert([_doc("a", "Fix CVE-2024-6387.", entities=("cve:CVE-2024-6387",))])
    new = _doc("a", "Fix regression. Closes: #1055473", entities=("bug:1055473",))
    store.upsert([new])
    assert store.get(["a"]) == [new] and store.count() == 1
    assert store.by_entities(["cve:CVE-2024-6387"]) == []
    assert store.by_entities(["bug:1055473"]) == ["a"]
    assert store.search_text("CVE-2024-6387") == []  # the full-text row follows the document
    assert [i for i, _ in store.search_text("regression")] == ["a"]


def test_delete_removes_rows_full_text_entities_and_orphaned_aliases(store: DocumentStore) -> None:
    store.upsert([_doc("a", "openssh fix", entities=("package:openssh",)),
                  _doc("b", "curl fix", channel="curl", entities=("package:curl",))])
    store.add_aliases([("ssh", "openssh"), ("libcurl4", "curl"), ("libcurl4", "curl")])
    assert store.channels() == {"openssh": "openssh", "curl": "curl", "ssh": "openssh", "libcurl4": "curl"}
    store.delete(["b", "never-stored"])
    assert store.get(["a", "b"]) == [store.get(["a"])[0]] and store.count() == 1
    assert store.by_entities(["package:curl"]) == [] and store.search_text("curl") == []
    assert store.channels() == {"openssh": "openssh", "ssh": "openssh"}


def test_set_origin_and_ids_in_scope_read_sqlite_glob_patterns(store: DocumentStore) -> None:
    store.upsert([_doc("a", "x", origin="/doc/openssh/changelog.Debian.gz"),
                  _doc("b", "x", origin="/doc/sub/dir/notes.md"),
                  _doc("c", "x", origin="/doc/we*rd[1].md"),
                  _doc("d", "x", origin="/other/notes.md")])
    assert store.ids_in_scope(["/doc/*/changelog.Debian.gz"]) == {"a"}
    assert store.ids_in_scope(["/doc/*"]) == {"a", "b", "c"}  # '*' crosses '/'
    assert store.ids_in_scope(["/doc/we[*]rd[[]1].md"]) == {"c"}  # origin_scope's literal escapes
    assert store.ids_in_scope(["/doc/we?rd*"]) == {"c"} and store.ids_in_scope(["/doc/w?rd*"]) == set()
    assert store.ids_in_scope(["/other/notes.md", "/doc/sub/*"]) == {"b", "d"}
    store.set_origin(["d", "unknown"], "/doc/moved.md")
    assert store.ids_in_scope(["/doc/moved.md"]) == {"d"} and store.ids_in_scope([]) == set()


def test_filters_by_package_and_date(store: DocumentStore) -> None:
    day = 86_400
    store.upsert([_doc("old", "security fix", ts=10 * day, entities=("package:openssh",)),
                  _doc("mid", "security fix", ts=20 * day, entities=("package:openssh",)),
                  _doc("new", "security fix", ts=30 * day, entities=("package:openssh",)),
                  _doc("curl", "security fix", channel="curl", ts=20 * day, entities=("package:openssh",))])
    spring = VectorFilter(ts_from=20 * day, ts_to=30 * day)  # half-open: 'new' is out
    openssh = VectorFilter(channels=("openssh",))
    assert store.by_entities(["package:openssh"]) == ["new", "curl", "mid", "old"]  # newest first, ties by id
    assert store.by_entities(["package:openssh"], flt=spring) == ["curl", "mid"]
    assert store.by_entities(["package:openssh"], flt=openssh, limit=2) == ["new", "mid"]
    assert {i for i, _ in store.search_text("security", flt=spring)} == {"curl", "mid"}
    assert {i for i, _ in store.search_text("security", flt=VectorFilter(channels=("curl",), sources=("debian",)))} == {"curl"}
    assert store.search_text("security", flt=VectorFilter(sources=("jsonl",))) == []
    assert store.newest() == ["new", "curl", "mid", "old"]  # newest first, ties by id
    assert store.newest(openssh, limit=2) == ["new", "mid"]
    assert store.newest(VectorFilter(channels=("curl",), ts_from=30 * day)) == []
    assert [d.id for d in store.iter_documents()] == ["old", "curl", "mid", "new"]  # oldest first, ties by id
    assert [d.id for d in store.iter_documents(VectorFilter(channels=("openssh",), ts_from=20 * day))] == ["mid", "new"]


def _id_docs() -> list[Document]:
    """Eight openssh fillers; one entry names CVE-2024-6387, one CVE-2024-6388 (and says
    openssh four times), one the numbers 2024 and 6387 apart; bugs #1055473 / #1055474;
    one accented word."""
    return [
        *(_doc(f"f{i:02d}", f"openssh: new upstream release {i}. Rebuild for openssl.") for i in range(8)),
        _doc("target", "Fix a signal handler race in sshd (CVE-2024-6387). openssh.",
             entities=("cve:CVE-2024-6387",)),
        _doc("near", "openssh openssh openssh: fix CVE-2024-6388 in openssh.", entities=("cve:CVE-2024-6388",)),
        _doc("apart", "openssh: 2024 rebuild, 6387 lines changed."),
        _doc("bug", "Fix crash on reload. Closes: #1055473", channel="curl", entities=("bug:1055473",)),
        _doc("bug2", "Fix crash on exit. Closes: #1055474", channel="curl", entities=("bug:1055474",)),
        _doc("accent", "Café: fix the reload of cached files.", channel="curl"),
    ]


@pytest.fixture
def id_corpus(store: DocumentStore) -> DocumentStore:
    store.upsert(_id_docs())
    return store


def test_fts_keeps_ids_exact_and_ranks_the_entry_naming_the_id_first(id_corpus: DocumentStore) -> None:
    assert [i for i, _ in id_corpus.search_text("CVE-2024-6387")] == ["target"]  # never 6388, never 'apart'
    hits = id_corpus.search_text("openssh CVE-2024-6387 regression")
    assert hits[0][0] == "target" and all(score > 0 for _, score in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert {i for i, _ in hits} == {"target", "near", "apart", *(f"f{i:02d}" for i in range(8))}
    assert [i for i, _ in id_corpus.search_text("crash #1055473")][0] == "bug"
    assert [i for i, _ in id_corpus.search_text("bug #1055473")] == ["bug"]  # 'bug' the word is in no entry


def test_fts_query_syntax_is_inert_and_stopwords_alone_find_nothing(id_corpus: DocumentStore) -> None:
    for query in ('openssh" OR NOT (', "openssh & !curl | 'x':*", "NEAR(openssh crash)", "openssh:*"):
        assert {i for i, _ in id_corpus.search_text(query)} >= {"target"}, query
    assert id_corpus.search_text("what changed in the package since") == []
    assert id_corpus.search_text("") == [] and id_corpus.search_text("zzzunknownword") == []


def test_pending_count_counts_documents_without_their_content_hash(store: DocumentStore) -> None:
    from dataclasses import replace

    a, b = _doc("a", "x"), _doc("b", "y")
    store.upsert([replace(a, content_hash=""), b])  # ingest's text stage writes '' until the vector is in
    assert store.pending_count() == 1 and store.hashes(["a", "b"]) == {"a": "", "b": b.content_hash}
    store.upsert([a])
    assert store.pending_count() == 0


def test_corpus_generation_counts_changes(store: DocumentStore) -> None:
    assert store.generation() == 0
    assert store.bump_generation() == 1 and store.bump_generation() == 2
    assert store.generation() == 2


def _ingest(store: DocumentStore, graph: SqliteGraphStore, vectors: MemoryVectorStore, corpus: Path):
    return ingest([corpus], docstore=store, embedder=HashEmbedder(), vector_store=vectors, graph_store=graph)


def test_reingest_removes_what_the_sources_lost_and_bumps_the_generation(
    store: DocumentStore, tmp_path: Path, corpus_dir: Path
) -> None:
    graph, vectors = SqliteGraphStore(tmp_path / "graph.db"), MemoryVectorStore()
    first = _ingest(store, graph, vectors, corpus_dir)
    generation = store.generation()
    assert (first.new, first.problems, store.count(), store.pending_count()) == (5, [], 5, 0) and generation > 0
    assert _ingest(store, graph, vectors, corpus_dir).unchanged == 5 and store.generation() == generation
    write_changelog(corpus_dir, "curl", CHANGELOGS["curl"][:1])  # the changelog shrank
    shutil.rmtree(corpus_dir / "openssl")  # the package is gone
    again = _ingest(store, graph, vectors, corpus_dir)
    kept = {d.id for d in store.iter_documents()}
    assert again.removed == 5 - len(kept) > 0 and store.generation() > generation
    assert kept == {f"deb:curl:{CHANGELOGS['curl'][0][0]}"} == set(vectors.points)
    assert store.by_entities(["cve:CVE-2026-28389"]) == [] and store.search_text("DANE") == []
    assert "openssl" not in store.channels()
    graph.close()


FTS5_REFERENCE_QUERIES = [
    "openssh", "CVE-2024-6387", "openssh CVE-2024-6387 regression", "2024 6387", "#1055473",
    "crash reload", "new upstream release 3", "openssl rebuild", "cafe", "CAFÉ", "sshd race", "3.0.11-1",
]


def test_postgres_matches_the_documents_fts5_matches(tmp_path: Path) -> None:
    stores = [make_document_store(store_settings(b, tmp_path / b)) for b in ("sqlite", "postgres")]
    try:
        for s in stores:
            s.upsert(_id_docs())
        for query in FTS5_REFERENCE_QUERIES:
            sqlite_hits, pg_hits = (s.search_text(query, limit=100) for s in stores)
            assert {i for i, _ in pg_hits} == {i for i, _ in sqlite_hits}, query
    finally:
        for s in stores:
            s.close()


def test_a_lost_connection_costs_no_call_afterwards(tmp_path: Path) -> None:
    """The server dropping every connection (a restart, a failover): the pool checks a
    connection before lending it, so the next call reconnects instead of failing."""
    import psycopg

    settings = store_settings("postgres", tmp_path / "kos")
    store = make_document_store(settings)
    try:
        store.upsert([_doc("a", "openssh fix")])
        dsn = settings.postgres.dsn.get_secret_value()
        with psycopg.connect(dsn, autocommit=True) as conn:
            # Only the store's own sessions: an autovacuum worker on this database would
            # also count and let the assertion pass with the store's connection alive.
            killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                                  "AND application_name = 'kos document store'").fetchone()[0]
        assert killed >= 1
        assert store.count() == 1 and [i for i, _ in store.search_text("openssh")] == ["a"]
    finally:
        store.close()
