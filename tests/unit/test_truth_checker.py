"""The independent answer checker: adversarial drafts against the conftest changelogs."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_os.evals.truth import TruthCorpus, check_answer, extract_claims, load_corpus

U2 = "deb:openssl:3.0.19-1~deb12u2"   # 2026-04-03, CVE-2026-28387, CVE-2026-28389
U1 = "deb:openssl:3.0.19-1~deb12u1"   # 2026-02-22, "Import 3.0.19"
CURL14 = "deb:curl:7.88.1-10+deb12u14"  # 2026-10-10, Closes: #1109876
Q = {"query": "What changed in openssl this year?",
     "expected": {"packages": ["openssl"], "period": {"from": "2026-01-01", "to": "2026-12-01"}}}


@pytest.fixture
def corpus(corpus_dir: Path) -> TruthCorpus:
    return load_corpus(corpus_dir)


def check(corpus: TruthCorpus, answer: str, cited: list[str], question: dict | None = None) -> dict:
    return check_answer(answer, cited_ids=cited, corpus=corpus, question=question or Q)


def test_a_faithful_answer_is_fully_grounded(corpus: TruthCorpus) -> None:
    answer = ("openssl 3.0.19-1~deb12u2 (2026-04-03) fixed CVE-2026-28387 and CVE-2026-28389 [1], "
              "uploaded by Sebastian Andrzej Siewior <sebastian@breakpoint.cc>; it followed "
              "openssl 3.0.19-1~deb12u1 in February 2026 [2]. 2 uploads, 2 CVE ids.")
    result = check(corpus, answer, [U2, U1])
    assert result["ungrounded"] == []
    assert result["claims"] >= 9
    assert result["grounded_rate"] == 1.0


def test_invented_version_beside_a_real_one(corpus: TruthCorpus) -> None:
    result = check(corpus, "openssl 3.0.19-1~deb12u2 and openssl 3.1.9-1 fixed CVE-2026-28387 [1].", [U2])
    assert result["ungrounded"] == ["version openssl 3.1.9-1"]
    assert result["grounded_rate"] == pytest.approx(2 / 3)


def test_version_matching_is_exact_but_accepts_the_upstream_part(corpus: TruthCorpus) -> None:
    assert check(corpus, "openssl 3.0.18 was imported.", [U1])["ungrounded"] == ["version openssl 3.0.18"]
    assert check(corpus, "openssl 3.0.19 was imported.", [U1])["ungrounded"] == []
    assert check(corpus, "Version 3.0.18 came next.", [U1])["ungrounded"] == ["version 3.0.18"]


def test_swapped_package(corpus: TruthCorpus) -> None:
    result = check(corpus, "curl 3.0.19-1~deb12u2 fixed CVE-2026-28387 [1].", [U2])
    assert result["ungrounded"] == ["version curl 3.0.19-1~deb12u2"]


def test_package_not_in_the_corpus(corpus: TruthCorpus) -> None:
    result = check(corpus, "nettle 3.4-2 and the package libfoo3 were updated.", [U2])
    assert result["ungrounded"] == ["version nettle 3.4-2", "package libfoo3"]
    prose = check(corpus, "The package description of openssl 3.0.19-1~deb12u2 changed [1].", [U2])
    assert prose["ungrounded"] == [] and prose["claims"] == 1  # "package description" is prose


def test_cve_the_cited_entry_does_not_name(corpus: TruthCorpus) -> None:
    assert check(corpus, "It fixed CVE-2022-56292 [1].", [U2])["ungrounded"] == ["cve CVE-2022-56292"]
    assert check(corpus, "It fixed CVE-2026-28387 [1].", [U1])["ungrounded"] == ["cve CVE-2026-28387"]
    asked = {"query": "Which upload fixed CVE-2026-28387?", "expected": {"ids": ["CVE-2026-28387"]}}
    assert check(corpus, "No entry names CVE-2026-28387.", [], asked)["ungrounded"] == []


def test_bug_numbers(corpus: TruthCorpus) -> None:
    assert check(corpus, "curl closed bug #1109876 [1].", [CURL14])["ungrounded"] == []
    assert check(corpus, "curl closed bug #1109877 [1].", [CURL14])["ungrounded"] == ["bug 1109877"]
    assert check(corpus, "curl закрыл баг #1109877 [1].", [CURL14])["ungrounded"] == ["bug 1109877"]


def test_made_up_people_and_addresses(corpus: TruthCorpus) -> None:
    assert check(corpus, "Uploaded by John Smith [1].", [U2])["ungrounded"] == ["person John Smith"]
    assert check(corpus, "Uploaded by Sebastian Siewior [1].", [U2])["ungrounded"] == []
    result = check(corpus, "Mail jdoe@example.org or sebastian@breakpoint.cc.", [U2])
    assert result["ungrounded"] == ["email jdoe@example.org"]
    assert check(corpus, "Автор: Иван Петров.", [U2])["ungrounded"] == ["person Иван Петров"]


def test_wrong_year_and_month(corpus: TruthCorpus) -> None:
    assert check(corpus, "In 2019 openssl fixed CVE-2026-28387 [1].", [U2])["ungrounded"] == ["year 2019"]
    assert check(corpus, "Since March 2024 openssl changed [1].", [U2])["ungrounded"] == ["month 2024-03"]
    assert check(corpus, "Since March 2026 openssl changed [1].", [U2])["ungrounded"] == []
    assert check(corpus, "On 2026-04-04 it was uploaded [1].", [U2],
                 {"query": "q", "expected": {}})["ungrounded"] == ["date 2026-04-04"]


def test_count_off_by_one(corpus: TruthCorpus) -> None:
    assert check(corpus, "There were 2 uploads [1][2].", [U2, U1])["ungrounded"] == []
    assert check(corpus, "There were 3 uploads [1][2].", [U2, U1])["ungrounded"] == ["count 3 uploads"]
    ru = check(corpus, "В 2026 году было 3 загрузки openssl.", [], Q)
    assert ru["ungrounded"] == ["count 3 загрузки"]  # openssl had 2 uploads in 2026, the corpus 4
    assert check(corpus, "В 2026 году было 2 загрузки openssl.", [], Q)["ungrounded"] == []


THIS_YEAR = {"query": "Which kinds of fixes are rising this year?",
             "expected": {"domain": "trend", "period": {"from": "2026-01-01", "to": "2026-11-22"}}}


def test_trend_figures_rows_are_checked_per_window(corpus: TruthCorpus) -> None:
    answer = ("Compared 2026-01-01..2026-11-22 with 2025-01-01..2025-11-22.\n"
              "- uploads: 4 vs 1\n- CVE ids: 3 vs 1\n- bugs closed: 1 vs 0\n"
              "- security: 2 vs 1, +100%\n- bugfix: 1 vs 0")
    result = check(corpus, answer, [], THIS_YEAR)
    assert result["ungrounded"] == []
    assert result["claims"] >= 9
    wrong = answer.replace("uploads: 4 vs 1", "uploads: 5 vs 1").replace("2025-01-01..", "2019-01-01..")
    assert check(corpus, wrong, [], THIS_YEAR)["ungrounded"] == ["date 2019-01-01", "count 5 uploads"]


def test_ranking_rows_are_checked_against_that_package(corpus: TruthCorpus) -> None:
    rows = "Top 2 packages by uploads, 2026-01-01..2026-11-22:\n1. openssl: 2 (1)\n2. curl: 2 (0)"
    assert check(corpus, rows, [], THIS_YEAR)["ungrounded"] == []
    bad = rows.replace("openssl: 2 (1)", "openssl: 4 (1)")  # 4 is the corpus total, not openssl's
    assert check(corpus, bad, [], THIS_YEAR)["ungrounded"] == ["count 4 openssl"]
    renamed = rows.replace("curl: 2 (0)", "libcurl4.0: 2 (0)")  # a package name the corpus lacks
    assert check(corpus, renamed, [], THIS_YEAR)["ungrounded"] == ["package libcurl4.0"]


def test_russian_rows_and_counts_that_do_not_span_lines(corpus: TruthCorpus) -> None:
    rows = "Итого (текущий и предыдущий период):\n- загрузок (записей журнала): 4 и 1\n- разных CVE: 3 и 1\n"
    assert check(corpus, rows, [], THIS_YEAR)["ungrounded"] == []
    assert check(corpus, rows.replace("4 и 1", "4 и 7"), [], THIS_YEAR)["ungrounded"] == [
        "count 7 загрузок (записей журнала)"]
    spanning = "- разных CVE: 3 и 1\nЗагрузок с изменениями каждого вида:"
    assert [c.kind for c in extract_claims(spanning)] == ["count", "count"]


def test_a_listed_version_is_one_claim(corpus: TruthCorpus) -> None:
    listing = "openssl 3.0.19-1~deb12u2 (2026-04-03) [1]\nopenssl:\n  - 3.0.19-1~deb12u2 (2026-04-03): CVE-2026-28387 [1]"
    result = check(corpus, listing, [U2])
    assert result["claims"] == 3 and result["ungrounded"] == []


def test_percent_from_the_figures(corpus: TruthCorpus) -> None:
    assert check(corpus, "CVE ids: 2 of 2 cited uploads, 100% of them.", [U2, U1])["ungrounded"] == []
    assert check(corpus, "Security share rose by 37%.", [U2, U1])["ungrounded"] == ["percent 37"]


def test_epochs_and_letter_versions_are_versions_and_times_are_not() -> None:
    claims = {(c.kind, c.token) for c in extract_claims("libxext 2:1.3.1-2+deb7u1 and tzdata 2022c-1 at 14:29:32")}
    assert claims == {("version", "2:1.3.1-2+deb7u1"), ("version", "2022c-1")}
    assert {c.kind for c in extract_claims("Drop 0003-Update-docs.patch and 50_04-crypto.patch")} == set()


def test_citation_markers_are_not_claims() -> None:
    assert extract_claims("See [1], [2] and [3-4].") == []


def test_extract_claims_kinds() -> None:
    claims = extract_claims("openssl 3.0.19-1~deb12u2 fixed CVE-2026-28387 (bug #1109876) on "
                            "2026-04-03, in April 2026: 2 uploads, 50%, by Jane Roe, jane@x.org.")
    kinds = {(c.kind, c.token) for c in claims}
    assert {("version", "3.0.19-1~deb12u2"), ("cve", "CVE-2026-28387"), ("bug", "1109876"),
            ("date", "2026-04-03"), ("month", "2026-04"), ("count", "2"), ("percent", "50"),
            ("person", "Jane Roe"), ("email", "jane@x.org")} <= kinds
    assert not any(c.kind == "year" for c in claims)  # the year inside a date or month is no extra claim
