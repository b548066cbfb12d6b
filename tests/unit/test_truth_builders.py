"""Case builders over small synthetic changelogs: expected answers computed by counting."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from knowledge_os.evals.truth import BUILDERS, build_cases, cached_corpus, load_corpus
from knowledge_os.evals.truth._common import is_yaml_example
from knowledge_os.evals.truth.trends import rank
from tests.conftest import CHANGELOGS, write_changelog

AS_OF = date(2026, 12, 1)
A = "Ann Example <ann@example.org>"
B = "Bob Example <bob@example.org>"


def _entry(version: str, when: str, changes: list[str], author: str = A) -> tuple:
    return (version, "unstable", "medium", author, when, changes)


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    """openssl/curl from conftest plus four packages with 4/3/2/1 uploads in 2024."""
    folder = tmp_path / "doc"
    for package, entries in CHANGELOGS.items():
        write_changelog(folder, package, entries)
    for k, (package, count) in enumerate((("alpha", 4), ("beta", 3), ("gamma", 2), ("delta", 1))):
        entries = [_entry(f"1.{i}-1", f"Mon, {10 + i:02d} Jun 2024 10:00:00 +0000",
                          [f"Fix {package} issue number {i}. Closes: #{700000 + 100 * k + i}",
                           f"Rework the {package} frobnicator for quux{i}{package} handling"],
                          author=A if i % 2 else B)
                   for i in range(count, 0, -1)]
        write_changelog(folder, package, entries)
    return folder


def test_cve_lookup_expects_every_entry_naming_the_cve(doc: Path) -> None:
    corpus = load_corpus(doc)
    cases = build_cases("cve_lookup", doc_dir=doc, as_of=AS_OF, n=10, seed=1)
    assert {c["expected"]["ids"][0] for c in cases} == {"CVE-2026-28387", "CVE-2026-28389",
                                                        "CVE-2025-9230", "CVE-2025-10148"}
    for c in cases:
        cve = c["expected"]["ids"][0]
        assert cve in c["query"]
        assert c["expected"]["doc_ids"] == [e.doc_id for e in corpus.entries if cve in e.text]
        assert c["expected"]["domain"] == "digest"
    assert [c["lang"] for c in cases] == ["en", "ru", "en", "ru"]


def test_bug_lookup_uses_closes_fields(doc: Path) -> None:
    cases = build_cases("bug_lookup", doc_dir=doc, as_of=AS_OF, n=50, seed=3)
    by_id = {c["expected"]["ids"][0]: c["expected"]["doc_ids"] for c in cases}
    assert by_id["#1109876"] == ["deb:curl:7.88.1-10+deb12u14"]
    assert len(by_id) == 1 + 4 + 3 + 2 + 1
    assert by_id["#700103"] == ["deb:beta:1.3-1"]


def test_builders_are_deterministic_for_a_seed(doc: Path) -> None:
    for name in BUILDERS:
        first = build_cases(name, doc_dir=doc, as_of=AS_OF, n=8, seed=5)
        again = build_cases(name, doc_dir=doc, as_of=AS_OF, n=8, seed=5)
        assert json.dumps(first) == json.dumps(again), name
        assert all(not is_yaml_example(c["query"]) for c in first), name
        assert len({c["id"] for c in first}) == len(first), name


def test_package_period_expects_the_entries_in_the_period(doc: Path) -> None:
    corpus = load_corpus(doc)
    cases = build_cases("package_period", doc_dir=doc, as_of=AS_OF, n=20, seed=2)
    assert {c["expected"]["packages"][0] for c in cases} == {"openssl", "curl", "alpha", "beta", "gamma", "delta"}
    for c in cases:
        pkg = c["expected"]["packages"][0]
        start = date.fromisoformat(c["expected"]["period"]["from"])
        end = date.fromisoformat(c["expected"]["period"]["to"])
        want = {e.doc_id for e in corpus.entries if e.package == pkg and start <= e.day <= end}
        assert set(c["expected"]["doc_ids"]) == want and want, c
        assert pkg in c["query"]


def test_package_latest_expects_the_three_newest_entries_and_names_no_period(doc: Path) -> None:
    cases = build_cases("package_latest", doc_dir=doc, as_of=AS_OF, n=20, seed=2)
    # only alpha has more than 3 uploads: openssl 3, beta 3, curl 2, gamma 2, delta 1
    assert [c["expected"]["packages"] for c in cases] == [["alpha"]]
    (case,) = cases
    assert case["expected"]["doc_ids"] == ["deb:alpha:1.4-1", "deb:alpha:1.3-1", "deb:alpha:1.2-1"]
    assert "period" not in case["expected"] and case["tags"] == ["digest", "latest"]
    assert "alpha" in case["query"] and case["lang"] == "en"
    early = build_cases("package_latest", doc_dir=doc, as_of=date(2024, 6, 12), n=20, seed=2)
    assert early == []  # by then alpha had 2 uploads: none of them is "the newest" by choice


def test_package_newest_expects_the_newest_entry_of_each_package_with_two(doc: Path) -> None:
    cases = build_cases("package_newest", doc_dir=doc, as_of=AS_OF, n=20, seed=2)
    # alpha, openssl, beta, curl and gamma have 2+ uploads; delta has 1
    by_package = {c["expected"]["packages"][0]: c for c in cases}
    assert sorted(by_package) == ["alpha", "beta", "curl", "gamma", "openssl"]
    assert by_package["alpha"]["expected"]["doc_ids"] == ["deb:alpha:1.4-1"]
    assert all(c["tags"] == ["digest", "newest"] and c["expected"]["packages"][0] in c["query"] for c in cases)
    assert {c["lang"] for c in cases} == {"en", "ru"}


def test_package_follow_up_asks_another_year_of_the_package_in_the_same_thread(doc: Path) -> None:
    cases = build_cases("package_follow_up", doc_dir=doc, as_of=AS_OF, n=20, seed=2)
    # only openssl has two years (2025, 2026) of entries; every other package has one
    (case,) = cases
    assert case["same_thread"] is True and case["expected"]["packages"] == ["openssl"]
    (first,) = case["before"]
    assert "openssl" in first and "openssl" not in case["query"]  # the follow-up names no package
    year = case["expected"]["period"]["from"][:4]
    (other,) = {"2025", "2026"} - {year}
    assert year in case["query"] and other in first and year not in first
    want = {"2025": ["deb:openssl:3.0.17-1~deb12u3"],
            "2026": ["deb:openssl:3.0.19-1~deb12u2", "deb:openssl:3.0.19-1~deb12u1"]}[year]
    assert case["expected"]["doc_ids"] == want


def test_rank_counts_and_breaks_ties_by_name(doc: Path) -> None:
    corpus = load_corpus(doc)
    in_2024 = corpus.in_period(date(2024, 1, 1), date(2024, 12, 31))
    assert rank(in_2024, "uploads") == [("alpha", 4), ("beta", 3), ("gamma", 2), ("delta", 1)]
    assert rank(in_2024, "bugs")[:2] == [("alpha", 4), ("beta", 3)]
    assert rank(in_2024, "uploaders") == [("Ann Example", 6), ("Bob Example", 4)]
    assert rank(corpus.entries, "cve") == [("openssl", 3), ("curl", 1)]
    with pytest.raises(ValueError, match="allowed: uploads"):
        rank(in_2024, "stars")


def test_trend_rankings_name_the_counted_top(doc: Path) -> None:
    cases = build_cases("trend_rankings", doc_dir=doc, as_of=AS_OF, n=50, seed=4)
    by_key = {(c["expected"]["ranking"], c["expected"]["period"]["from"], c["expected"]["period"]["to"]): c
              for c in cases}
    c = by_key[("uploads", "2024-01-01", "2024-12-31")]
    assert c["expected"]["top_entities"] == ["alpha", "beta", "gamma"]
    assert c["expected"]["counts"] == [4, 3, 2]
    assert ("three" in c["query"]) or ("три" in c["query"])
    for c in cases:  # never a tie across the cut, never fewer entities than asked
        assert len(c["expected"]["top_entities"]) in (3, 5, 10)
        assert c["expected"]["domain"] == "trend"


def test_trend_kinds_carry_period_and_label(doc: Path) -> None:
    cases = build_cases("trend_kinds", doc_dir=doc, as_of=AS_OF, n=9, seed=4)
    assert len(cases) == 9
    assert {c["expected"]["domain"] for c in cases} == {"trend"}
    quarter = [c for c in cases if c["expected"]["period"] == {"from": "2026-10-01", "to": "2026-12-01"}]
    assert all("this quarter" in c["query"] or "этом квартале" in c["query"] for c in quarter)


def test_free_text_quotes_a_line_of_the_expected_entry(doc: Path) -> None:
    corpus = load_corpus(doc)
    cases = build_cases("free_text", doc_dir=doc, as_of=AS_OF, n=10, seed=1)
    assert cases
    for c in cases:
        (doc_id,) = c["expected"]["doc_ids"]
        entry = corpus.by_id[doc_id]
        assert any(line.lstrip("* ").rstrip(".") in c["query"] for line in entry.lines), c["query"]
        assert c["expected"]["graded"][doc_id] == 3


def test_answers_mix_holds_every_kind(doc: Path) -> None:
    cases = build_cases("answers", doc_dir=doc, as_of=AS_OF, n=40, seed=7)
    prefixes = {c["id"].split("-")[0] for c in cases}
    assert prefixes == {"cve", "bug", "digest", "kinds", "rank", "text"}


def test_unknown_builder_and_bad_n(doc: Path) -> None:
    with pytest.raises(KeyError, match="allowed: answers"):
        build_cases("nope", doc_dir=doc, as_of=AS_OF, n=1, seed=1)
    with pytest.raises(ValueError, match="n must be"):
        build_cases("cve_lookup", doc_dir=doc, as_of=AS_OF, n=-1, seed=1)


def test_cached_corpus_is_reparsed_when_the_changelogs_change(doc: Path) -> None:
    before = cached_corpus(doc)
    assert cached_corpus(doc) is before
    write_changelog(doc, "newcomer", [_entry("0.1-1", "Mon, 01 Jan 2024 10:00:00 +0000", ["First upload"])])
    after = cached_corpus(doc)
    assert "newcomer" in after.by_package and "newcomer" not in before.by_package
