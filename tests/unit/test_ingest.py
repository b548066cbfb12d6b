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
