"""The independent changelog parser behind the eval ground truth."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from knowledge_os.evals.truth import load_corpus
from knowledge_os.evals.truth.corpus import closes_bugs, cve_ids
from tests.conftest import write_changelog

AUTHOR = "Jane Roe <Jane.Roe@Example.org>"


def test_every_entry_parsed_with_its_fields(corpus_dir: Path) -> None:
    corpus = load_corpus(corpus_dir)
    assert len(corpus.entries) == 5
    e = corpus.by_id["deb:openssl:3.0.19-1~deb12u2"]
    assert (e.package, e.version, e.distribution, e.urgency) == ("openssl", "3.0.19-1~deb12u2",
                                                                  "bookworm-security", "medium")
    assert e.author_name == "Sebastian Andrzej Siewior"
    assert e.author_email == "sebastian@breakpoint.cc"
    assert e.when == datetime(2026, 4, 3, 12, 29, 32, tzinfo=UTC)  # +0200 -> UTC
    assert e.cves == ("CVE-2026-28387", "CVE-2026-28389")
    assert corpus.by_cve["CVE-2025-10148"] == ("deb:curl:7.88.1-10+deb12u13",)
    assert corpus.by_bug["1109876"] == ("deb:curl:7.88.1-10+deb12u14",)
    assert [x.version for x in corpus.by_package["openssl"]] == [
        "3.0.19-1~deb12u2", "3.0.19-1~deb12u1", "3.0.17-1~deb12u3"]


def test_repeated_version_keeps_the_newest_entry(tmp_path: Path) -> None:
    write_changelog(tmp_path, "foo", [
        ("1.0-2", "unstable", "low", AUTHOR, "Tue, 02 Jan 2024 10:00:00 +0000", ["Second time"]),
        ("1.0-2", "unstable", "low", AUTHOR, "Mon, 01 Jan 2024 10:00:00 +0000", ["First time"]),
    ])
    corpus = load_corpus(tmp_path)
    assert len(corpus.all_entries) == 2
    assert [e.text for e in corpus.entries] == ["* Second time"]
    assert corpus.by_id["deb:foo:1.0-2"].author_email == "jane.roe@example.org"


def test_copies_and_links_yield_one_entry_per_id_and_aliases(tmp_path: Path) -> None:
    entries = [("2.1-1", "unstable", "low", AUTHOR, "Mon, 01 Jan 2024 10:00:00 -0000", ["x"])]
    write_changelog(tmp_path, "src", entries)
    copy = tmp_path / "libsrc1" / "changelog.Debian.gz"
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "src" / "changelog.Debian.gz").read_bytes())
    (tmp_path / "src-doc").symlink_to(tmp_path / "src")
    corpus = load_corpus(tmp_path)
    assert [e.doc_id for e in corpus.entries] == ["deb:src:2.1-1"]
    assert corpus.package_of("libsrc1") == "src"
    assert corpus.package_of("src-doc") == "src"
    assert corpus.package_of("nosuch") is None
    assert corpus.entries[0].day == date(2024, 1, 1)  # -0000: a date without a zone is UTC


def test_unreadable_changelog_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    write_changelog(tmp_path, "good", [("1-1", "unstable", "low", AUTHOR,
                                        "Mon, 01 Jan 2024 10:00:00 +0000", ["ok"])])
    bad = tmp_path / "bad" / "changelog.Debian.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"not gzip at all")
    corpus = load_corpus(tmp_path)
    assert [e.package for e in corpus.entries] == ["good"]
    assert len(corpus.problems) == 1 and "bad" in corpus.problems[0]


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        load_corpus(tmp_path / "nope")


def test_in_period_is_inclusive(corpus_dir: Path) -> None:
    corpus = load_corpus(corpus_dir)
    found = corpus.in_period(date(2026, 2, 22), date(2026, 4, 3), package="openssl")
    assert [e.version for e in found] == ["3.0.19-1~deb12u2", "3.0.19-1~deb12u1"]
    assert [e.package for e in corpus.in_period(date(2026, 5, 1), date(2026, 12, 31))] == ["curl", "curl"]


@pytest.mark.parametrize(("text", "bugs"), [
    ("Fix it. Closes: #123456, #234567", ("123456", "234567")),
    ("closes: bug#98765", ("98765",)),
    ("Closes: 4321", ("4321",)),
    ("mentions #555555 but closes nothing", ()),
    ("(Closes: #941082 #941306)", ("941082", "941306")),
    ("Closes: #1 and #22", ("1", "22")),
    ("closes: #28872\n  1998 brought nothing new", ("28872",)),
])
def test_closes_field_per_debian_policy(text: str, bugs: tuple[str, ...]) -> None:
    assert closes_bugs(text) == bugs


def test_cve_ids_upper_cased_once() -> None:
    assert cve_ids("cve-2024-6387, CVE-2024-6387 and CVE-2023-12345") == ("CVE-2024-6387", "CVE-2023-12345")


def test_raw_gzip_of_conftest_format_round_trips(tmp_path: Path) -> None:
    path = write_changelog(tmp_path, "bar", [("0.1-1", "unstable", "low", AUTHOR,
                                              "Mon, 01 Jan 2024 10:00:00 +0000", ["a", "b"])])
    assert gzip.decompress(path.read_bytes()).startswith(b"bar (0.1-1)")
    assert load_corpus(tmp_path).entries[0].lines == ("* a", "* b")


def test_fingerprint_moves_when_a_package_is_installed_and_paths_pin_the_truth(tmp_path: Path) -> None:
    entry = [("1-1", "unstable", "low", AUTHOR, "Mon, 01 Jan 2024 10:00:00 +0000", ["one"])]
    first = write_changelog(tmp_path, "first", entry)
    before = load_corpus(tmp_path)
    assert before.fingerprint == load_corpus(tmp_path).fingerprint
    write_changelog(tmp_path, "later", entry)  # installed after the home was ingested
    assert load_corpus(tmp_path).fingerprint != before.fingerprint
    pinned = load_corpus(tmp_path, paths=[first])
    assert [e.package for e in pinned.entries] == ["first"]
    assert pinned.fingerprint == before.fingerprint
