"""Re-ingest makes the real stores equal the sources: qdrant-edge vectors, the SQLite
document store, and both graph backends (embedded SQLite and Neo4j at
``KOS_TEST_NEO4J_URI``; Community Neo4j has one database, so it is cleared first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_os.retrieval.docstore import DocumentStore
from knowledge_os.retrieval.factory import make_graph_store
from knowledge_os.retrieval.ingest import ingest
from knowledge_os.retrieval.factory import make_vector_store
from knowledge_os.settings import Settings
from tests.conftest import CHANGELOGS, write_changelog
from tests.fakes import HashEmbedder

pytestmark = pytest.mark.integration

GONE = ["deb:curl:7.88.1-10+deb12u14", "deb:curl:7.88.1-10+deb12u13", "deb:openssl:3.0.17-1~deb12u3"]
ENTITIES = ["package:curl", "package:openssl", "cve:CVE-2025-9230", "cve:CVE-2025-10148", "cve:CVE-2026-28387",
            "cve:CVE-2026-28389", "bug:1109876", "person:samueloph@debian.org",
            "person:sebastian@breakpoint.cc"]


def _settings(tmp_path: Path, backend: str, require_service) -> Settings:
    graph = {"backend": backend}
    if backend == "neo4j":
        graph["neo4j_uri"] = require_service("KOS_TEST_NEO4J_URI")
    return Settings(home=tmp_path, graph=graph)


def _ingest_and_snapshot(settings: Settings, folder: Path, *, clear: bool) -> dict:
    embedder = HashEmbedder()
    docstore = DocumentStore(settings.sqlite_path)
    vectors = make_vector_store(settings, embedder.dim)
    graph = make_graph_store(settings)
    try:
        if clear:
            graph.clear()
        report = ingest([folder], docstore=docstore, embedder=embedder, vector_store=vectors, graph_store=graph)
        ids = sorted(d.id for d in docstore.iter_documents())
        query = embedder.embed_query("openssl curl CVE fix")
        return {
            "report": (report.new, report.updated, report.unchanged, report.removed),
            "ids": ids,
            "vectors": (vectors.count(), sorted(h.id for h in vectors.search(query, top_k=50))),
            "fts": [i for i, _ in docstore.search_text("WebSocket mask DANE CMS openssl", limit=50)],
            "graph": graph.counts(),
            "nodes": sorted(n.id for n in graph.get_nodes([f"doc:{i}" for i in ids + GONE] + ENTITIES)),
            "walk": sorted((h.id, h.distance) for h in graph.expand(ENTITIES, depth=2, limit=500)),
        }
    finally:
        vectors.close()
        graph.close()
        docstore.close()


@pytest.mark.parametrize("backend", ["sqlite", "neo4j"])
def test_reingest_equals_a_fresh_ingest(tmp_path: Path, corpus_dir: Path, backend: str, require_service) -> None:
    settings = _settings(tmp_path / "a", backend, require_service)
    first = _ingest_and_snapshot(settings, corpus_dir, clear=True)
    assert first["report"] == (5, 0, 0, 0) and len(first["ids"]) == 5

    (corpus_dir / "curl" / "changelog.Debian.gz").unlink()
    entries = [list(e) for e in CHANGELOGS["openssl"][:2]]
    entries[0][5] = entries[0][5][:1]  # no longer names CVE-2026-28389
    write_changelog(corpus_dir, "openssl", entries)
    after = _ingest_and_snapshot(settings, corpus_dir, clear=False)
    assert after["report"] == (0, 1, 1, 3)

    fresh = _ingest_and_snapshot(_settings(tmp_path / "b", backend, require_service), corpus_dir, clear=True)
    assert fresh["report"] == (2, 0, 0, 0)
    assert {k: v for k, v in after.items() if k != "report"} == {k: v for k, v in fresh.items() if k != "report"}
    assert after["ids"] == ["deb:openssl:3.0.19-1~deb12u1", "deb:openssl:3.0.19-1~deb12u2"]
    assert after["vectors"][0] == 2
    assert "cve:CVE-2026-28389" not in after["nodes"] and "package:curl" not in after["nodes"]
