from __future__ import annotations

from pathlib import Path

import orjson

from tests.unit.conftest import make_kos


def test_changelog_entries_become_documents_with_entities(tmp_path: Path, corpus_dir: Path) -> None:
    kos = make_kos(tmp_path, ["x"])
    report = kos.ingest([corpus_dir])
    assert (report.files, report.documents, report.new, report.problems) == (2, 5, 5, [])
    [doc] = kos.services.docstore.get(["deb:curl:7.88.1-10+deb12u14"])
    assert doc.channel == "curl" and doc.source == "debian"
    assert doc.metadata["date"] == "2026-10-10" and doc.metadata["urgency"] == "medium"
    assert set(doc.entities) == {"package:curl", "bug:1109876", "person:samueloph@debian.org"}
    hits = kos.services.graph_store.expand(["bug:1109876"], depth=1, limit=10, kinds=["document"])
    assert [h.id for h in hits] == ["doc:deb:curl:7.88.1-10+deb12u14"]
    kos.close()


def test_reingest_of_unchanged_documents_does_no_work(tmp_path: Path, corpus_dir: Path) -> None:
    kos = make_kos(tmp_path, ["x"])
    kos.ingest([corpus_dir])
    calls = []
    embed = kos.services.embedder.embed_documents
    kos.services.embedder.embed_documents = lambda texts: calls.append(len(texts)) or embed(texts)  # type: ignore[method-assign]
    again = kos.ingest([corpus_dir])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 5)
    assert calls == []
    kos.close()


def test_changed_entry_is_updated(tmp_path: Path, corpus_dir: Path) -> None:
    from tests.conftest import CHANGELOGS, write_changelog

    kos = make_kos(tmp_path, ["x"])
    kos.ingest([corpus_dir])
    entries = [list(e) for e in CHANGELOGS["curl"]]
    entries[0][5] = ["Fix crash when following redirects. Closes: #1109876", "Rebuild."]
    write_changelog(corpus_dir, "curl", entries)
    again = kos.ingest([corpus_dir])
    assert (again.new, again.updated, again.unchanged) == (0, 1, 4)
    [doc] = kos.services.docstore.get(["deb:curl:7.88.1-10+deb12u14"])
    assert "Rebuild." in doc.text
    kos.close()


def test_bad_files_are_named_and_good_ones_kept(tmp_path: Path, corpus_dir: Path) -> None:
    bad_gz = corpus_dir / "broken" / "changelog.Debian.gz"
    bad_gz.parent.mkdir()
    bad_gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        orjson.dumps({"id": 1, "channel": "blog", "date": "2026-05-01", "text": "CVE-2026-1111 patched"}).decode()
        + "\nnot json\n"
        + orjson.dumps({"id": 2, "channel": "blog", "text": "no date"}).decode() + "\n"
    )
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Title\n\nSome notes about openssl.\n")
    (notes / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    kos = make_kos(tmp_path, ["x"])
    report = kos.ingest([corpus_dir, posts, notes, tmp_path / "missing"])
    problems = [str(p) for p in report.problems]
    assert any(str(bad_gz) in p and "unreadable" in p for p in problems)
    assert f"{posts}:2: " in " ".join(problems)
    assert any(f"{posts}:3: missing key(s): date" in p for p in problems)
    assert any(str(notes / "latin1.txt") in p and "not UTF-8" in p for p in problems)
    assert any(str(tmp_path / "missing") in p and "no such file" in p for p in problems)
    ids = {d.id for d in kos.services.docstore.iter_documents()}
    assert "jsonl:1" in ids and f"file:{notes / 'a.md'}#0" in ids
    assert len([i for i in ids if i.startswith("deb:")]) == 5
    kos.close()


def test_a_version_repeated_in_one_changelog_counts_once(tmp_path: Path) -> None:
    from tests.conftest import write_changelog

    entry = ("1.0-1", "unstable", "low", "A <a@example.org>", "Mon, 01 Jan 2024 10:00:00 +0000", ["Newest text."])
    older = ("1.0-1", "unstable", "low", "A <a@example.org>", "Sun, 31 Dec 2023 10:00:00 +0000", ["Older text."])
    write_changelog(tmp_path / "doc", "dup", [entry, older])
    kos = make_kos(tmp_path, ["x"])
    report = kos.ingest([tmp_path / "doc"])
    assert (report.documents, report.new) == (1, 1)
    [doc] = kos.services.docstore.get(["deb:dup:1.0-1"])
    assert "Newest text." in doc.text
    kos.close()


def test_default_corpus_is_the_changelogs_only(tmp_path: Path, corpus_dir: Path) -> None:
    from knowledge_os.retrieval.sources import default_corpus

    (corpus_dir / "curl" / "README.md").write_text("# not a changelog\n")
    (corpus_dir / "curl" / "examples").mkdir()
    (corpus_dir / "curl" / "examples" / "changelog.Debian.gz").write_bytes(b"")
    found = default_corpus(corpus_dir)
    assert found == [corpus_dir / "curl" / "changelog.Debian.gz", corpus_dir / "openssl" / "changelog.Debian.gz"]


def _state(kos) -> dict:
    """What the stores hold: documents with hashes, entity rows, vectors, graph."""
    s = kos.services
    docs = {d.id: d.content_hash for d in s.docstore.iter_documents()}
    entities = {(e, d.id) for d in s.docstore.iter_documents() for e in d.entities}
    by_entity = {e: tuple(s.docstore.by_entities([e], limit=100)) for e, _ in entities}
    nodes = sorted(n.id for n in s.graph_store.get_nodes(
        [f"doc:{i}" for i in docs] + [e for e, _ in entities] + _GONE_NODES))
    walk = {n: [(h.id, h.distance) for h in s.graph_store.expand([n], depth=1, limit=100)] for n in nodes}
    return {"docs": docs, "by_entity": by_entity, "vectors": sorted(s.vector_store.points),
            "graph": s.graph_store.counts(), "nodes": nodes, "walk": walk,
            "channels": s.docstore.channels()}


_GONE_NODES = ["doc:deb:curl:7.88.1-10+deb12u14", "doc:deb:curl:7.88.1-10+deb12u13",
               "doc:deb:openssl:3.0.17-1~deb12u3", "cve:CVE-2025-9230", "cve:CVE-2025-10148",
               "cve:CVE-2026-28389", "bug:1109876", "package:curl", "person:samueloph@debian.org"]


def test_reingest_removes_what_the_sources_no_longer_have(tmp_path: Path, corpus_dir: Path) -> None:
    """A deleted changelog, a shrunk one and an entry that lost a CVE: after re-ingest
    the stores hold exactly what a fresh ingest of the same files holds."""
    from tests.conftest import CHANGELOGS, write_changelog

    kos = make_kos(tmp_path / "a", ["x"])
    kos.ingest([corpus_dir])
    (corpus_dir / "curl" / "changelog.Debian.gz").unlink()  # a deleted file
    entries = [list(e) for e in CHANGELOGS["openssl"][:2]]  # the 3.0.17 entry is gone
    entries[0][5] = entries[0][5][:1]  # and 3.0.19-1~deb12u2 no longer names CVE-2026-28389
    write_changelog(corpus_dir, "openssl", entries)
    report = kos.ingest([corpus_dir])
    assert (report.new, report.updated, report.unchanged, report.removed) == (0, 1, 1, 3)

    after = _state(kos)
    assert set(after["docs"]) == {"deb:openssl:3.0.19-1~deb12u2", "deb:openssl:3.0.19-1~deb12u1"}
    assert "curl" not in after["channels"]
    assert kos.services.docstore.search_text("WebSocket mask") == []  # full-text rows gone
    assert kos.services.docstore.by_entities(["cve:CVE-2026-28389"]) == []
    kos.close()

    fresh = make_kos(tmp_path / "b", ["x"])
    fresh.ingest([corpus_dir])
    assert after == _state(fresh)
    fresh.close()


def test_reingest_of_one_folder_keeps_the_others(tmp_path: Path, corpus_dir: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nopenssl notes.\n")
    (notes / "b.md").write_text("# B\n\ncurl notes.\n")
    kos = make_kos(tmp_path, ["x"])
    kos.ingest([corpus_dir])
    kos.ingest([notes])
    (notes / "b.md").unlink()
    report = kos.ingest([notes])
    assert report.removed == 1
    ids = {d.id for d in kos.services.docstore.iter_documents()}
    assert f"file:{notes / 'a.md'}#0" in ids and f"file:{notes / 'b.md'}#0" not in ids
    assert len([i for i in ids if i.startswith("deb:")]) == 5  # the changelogs were not in scope
    kos.close()


def test_a_file_that_fails_to_read_keeps_its_documents(tmp_path: Path, corpus_dir: Path) -> None:
    kos = make_kos(tmp_path, ["x"])
    kos.ingest([corpus_dir])
    (corpus_dir / "curl" / "changelog.Debian.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    report = kos.ingest([corpus_dir])
    assert report.removed == 0 and report.files_failed == 1
    assert len(kos.services.docstore.get(["deb:curl:7.88.1-10+deb12u14"])) == 1
    kos.close()


def test_default_corpus_reingest_drops_a_removed_package(tmp_path: Path, corpus_dir: Path,
                                                        monkeypatch) -> None:
    from knowledge_os import api

    monkeypatch.setattr(api, "DEFAULT_DEBIAN_DOC_DIR", corpus_dir)
    kos = make_kos(tmp_path, ["x"])
    assert kos.ingest().documents == 5
    (corpus_dir / "curl" / "changelog.Debian.gz").unlink()
    assert kos.ingest().removed == 2
    assert {d.channel for d in kos.services.docstore.iter_documents()} == {"openssl"}
    kos.close()


def test_text_first_then_vectors_with_answers_marked_in_between(tmp_path: Path, corpus_dir: Path) -> None:
    kos = make_kos(tmp_path, ["x"] * 8, llm={"answer_mode": "structured"})
    seen: dict[str, object] = {}

    def on_stage(stage: str, report) -> None:
        store = kos.services.docstore
        seen[stage] = (store.count(), store.pending_count(), kos.services.vector_store.count(), store.generation())
        if stage == "text":  # documents, full text, ids and graph are in; no vector yet
            r = kos.run("Which upload fixed CVE-2026-28387?", as_of="2026-11-22")
            seen["run"] = r
            seen["cache"] = kos.run("Which upload fixed CVE-2026-28387?", as_of="2026-11-22").manifest["cache"]

    report = kos.ingest([corpus_dir], on_stage=on_stage)
    assert seen["text"] == (5, 5, 0, 1)
    assert seen["vectors"] == (5, 0, 5, 2)
    assert report.embedded == 5 and 0 < report.seconds_to_text <= report.seconds
    during = seen["run"]
    assert during.index_complete is False
    assert during.citations and during.citations[0].id == "deb:openssl:3.0.19-1~deb12u2"  # exact id match
    assert during.answer.endswith("Note: the search index is still being built; "
                                  "entries found only by meaning may be missing.")
    assert seen["cache"]["hit"] is True  # the partial answer is served while the index is partial ...
    after = kos.run("Which upload fixed CVE-2026-28387?", as_of="2026-11-22")
    assert after.manifest["cache"]["hit"] is False  # ... and not once it is complete
    assert after.index_complete is True and "Note:" not in after.answer
    ru = kos.run("Какая загрузка исправила CVE-2026-28387?", as_of="2026-11-22")
    assert ru.index_complete is True
    kos.close()


def test_a_crash_while_embedding_is_redone_by_the_next_ingest(tmp_path: Path, corpus_dir: Path) -> None:
    kos = make_kos(tmp_path, ["x"])
    embed = kos.services.embedder.embed_documents

    def fail(texts):
        raise RuntimeError("killed while embedding")

    kos.services.embedder.embed_documents = fail  # type: ignore[method-assign]
    try:
        kos.ingest([corpus_dir])
    except RuntimeError:
        pass
    store = kos.services.docstore
    assert store.count() == 5 and store.pending_count() == 5  # text in, vectors not
    kos.services.embedder.embed_documents = embed  # type: ignore[method-assign]
    again = kos.ingest([corpus_dir])
    assert (again.new, again.updated, again.unchanged, again.embedded) == (0, 5, 0, 5)
    assert store.pending_count() == 0 and kos.services.vector_store.count() == 5
    kos.close()


def test_a_russian_answer_gets_the_russian_notice(tmp_path: Path, corpus_dir: Path) -> None:
    kos = make_kos(tmp_path, ["x"] * 4, llm={"answer_mode": "structured"})
    answers = []
    kos.ingest([corpus_dir], on_stage=lambda stage, _r: stage == "text" and answers.append(
        kos.run("Какая загрузка исправила CVE-2026-28387?", as_of="2026-11-22")))
    assert answers[0].index_complete is False
    assert answers[0].answer.endswith("Примечание: поисковый индекс ещё строится; "
                                      "записи, которые находятся только по смыслу, могут отсутствовать.")
    kos.close()


def test_pending_count_reads_an_index_not_every_body(tmp_path):
    """KnowledgeOS.run asks pending_count() once per run: it must not scan the bodies
    (a scan cost ~4 ms per answer-cache hit at 9,600 entries)."""
    from knowledge_os.retrieval.docstore import SqliteDocumentStore

    store = SqliteDocumentStore(tmp_path / "kos.db")
    try:
        plan = store._db.execute("EXPLAIN QUERY PLAN SELECT count(*) FROM documents WHERE content_hash = ''")
        assert "USING INDEX documents_pending" in " ".join(str(row[3]) for row in plan)
    finally:
        store.close()


def test_the_next_batch_embeds_while_one_is_written_and_a_failure_keeps_the_batches_before(
        tmp_path: Path, corpus_dir: Path, monkeypatch) -> None:
    import threading

    from knowledge_os.retrieval import ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "BATCH_SIZE", 2)  # 5 documents: batches of 2, 2, 1
    kos = make_kos(tmp_path, ["x"])
    embed = kos.services.embedder.embed_documents
    upsert = kos.services.vector_store.upsert
    second_started = threading.Event()
    calls: list[str] = []

    def embedding(texts):
        n = sum(1 for c in calls if c == "embed")
        calls.append("embed")
        if n == 1:
            second_started.set()
        if n == 2:
            raise RuntimeError("third batch failed")
        return embed(texts)

    def writing(points):
        if not calls.count("write"):  # the first batch's write: the second is embedding by now
            assert second_started.wait(10), "the next batch was not embedding during a write"
        calls.append("write")
        return upsert(points)

    kos.services.embedder.embed_documents = embedding  # type: ignore[method-assign]
    kos.services.vector_store.upsert = writing  # type: ignore[method-assign]
    try:
        kos.ingest([corpus_dir])
        raise AssertionError("the embedder's error was swallowed")
    except RuntimeError as exc:
        assert "third batch failed" in str(exc)
    assert calls.count("write") == 2 and calls.count("embed") == 3
    store = kos.services.docstore
    assert store.count() == 5 and store.pending_count() == 1  # the first two batches are in
    kos.close()
