"""Trend statistics: compared windows, like-for-like quarters, empty windows, rankings.

Small changelog corpora in Debian's format are read by the real ingest reader into a
real SQLite document store; no model is involved except in the last tests (fakes).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from knowledge_os.domains.ranking import RankingQuery, parse_ranking
from knowledge_os.domains.registry import load_domain_file
from knowledge_os.domains.trend import Window, compare_windows, compute_trend, series_measure, series_unit
from knowledge_os.retrieval.docstore import DocumentStore
from knowledge_os.retrieval.query import analyze_query, parse_date_range
from knowledge_os.retrieval.sources import discover, read_file
from tests.conftest import write_changelog

ANN = "Ann Author <ann@example.org>"
BOB = "Bob Builder <bob@example.org>"

WINDOW_CORPUS = {
    "alpha": [
        ("2.0-1", "unstable", "high", ANN, "Fri, 20 Nov 2026 10:00:00 +0000",
         ["CVE-2026-1111 and CVE-2026-2222: fix buffer overflow"]),
        ("1.9-2", "unstable", "medium", ANN, "Mon, 05 Oct 2026 10:00:00 +0000",
         ["Fix crash on start. Closes: #1000001"]),
        # In the third quarter, but after its first 62 days: not like for like.
        ("1.9-1", "unstable", "medium", ANN, "Tue, 15 Sep 2026 10:00:00 +0000", ["New upstream release"]),
        ("1.8-1", "unstable", "medium", BOB, "Fri, 10 Jul 2026 10:00:00 +0000",
         ["Fix typo in the documentation"]),
        ("0.1-1", "unstable", "low", BOB, "Sat, 01 Mar 1997 10:00:00 +0000",
         ["Initial release, security fix for CVE-1999-0001"]),
    ],
    "beta": [
        ("3.1-1", "unstable", "high", BOB, "Tue, 20 Oct 2026 10:00:00 +0000",
         ["Security fix for CVE-2026-1111"]),
        ("3.0-1", "unstable", "medium", BOB, "Mon, 31 Aug 2026 23:00:00 +0000",
         ["debian/control: bump Standards-Version"]),
        ("2.9-1", "unstable", "medium", BOB, "Tue, 01 Sep 2026 00:30:00 +0000", ["New upstream release"]),
    ],
}


def _entry(version: str, when: str, author: str = ANN, changes: list[str] | None = None) -> tuple:
    return (version, "unstable", "medium", author, when, changes or ["Rebuild"])


# 2024: gamma 4 uploads, delta 3 (6 distinct CVEs), eps 3, zeta 2, eta 1; 2023: delta 5.
RANKING_CORPUS = {
    "gamma": [_entry(f"1.{i}", f"Mon, 0{i} Jan 2024 10:00:00 +0000", ANN,
                     ["Security fix for CVE-2024-0001"] if i == 1 else None) for i in range(1, 5)],
    "delta": [_entry(f"2.{i}", f"Tue, 0{i} Apr 2024 10:00:00 +0000", BOB,
                     [f"CVE-2024-10{i}1 and CVE-2024-10{i}2. Closes: #20000{i}"]) for i in range(1, 4)]
    + [_entry(f"1.{i}", f"Wed, 0{i} Mar 2023 10:00:00 +0000", BOB) for i in range(1, 6)],
    "eps": [_entry(f"3.{i}", f"Thu, 0{i} Aug 2024 10:00:00 +0000", BOB) for i in range(1, 4)],
    "zeta": [_entry(f"4.{i}", f"Fri, 0{i} Nov 2024 10:00:00 +0000", ANN) for i in range(1, 3)],
    "eta": [_entry("5.1", "Sat, 07 Dec 2024 10:00:00 +0000", ANN)],
}


def _store(tmp_path: Path, corpus: dict[str, list]) -> DocumentStore:
    folder = tmp_path / "doc"
    for package, entries in corpus.items():
        write_changelog(folder, package, entries)
    files, problems = discover([folder])
    assert problems == []
    store = DocumentStore(tmp_path / "docs.db")
    for src in files:
        docs, aliases, bad = read_file(src)
        assert bad == []
        store.upsert(docs)
    return store


@pytest.fixture
def trend_spec():
    import knowledge_os.domains

    return load_domain_file(Path(knowledge_os.domains.__file__).parent / "builtin" / "trend.yaml")


def _trend(store: DocumentStore, spec, question: str, as_of: date) -> dict:
    """compute_trend as the ``stats`` step calls it (with the kinds the question names)."""
    from knowledge_os.domains.complete import asked_kinds

    analysis = analyze_query(question, channels=store.channels(), as_of=as_of)
    return compute_trend(store, spec, analysis, as_of=as_of,
                         asked_kinds=asked_kinds(question, [k.name for k in spec.change_kinds]))


# -- windows --------------------------------------------------------------------------


def _windows(question: str, as_of: date, default_days: int = 180) -> tuple[str, str | None, str]:
    cur, prev, basis = compare_windows(parse_date_range(question, as_of), as_of=as_of, default_days=default_days)
    return cur.span(), prev.span() if prev else None, basis


@pytest.mark.parametrize(
    ("question", "as_of", "expected"),
    [
        # quarter to date against the same 62 days of the previous quarter
        ("this quarter", date(2026, 12, 1), ("2026-10-01..2026-12-01", "2026-07-01..2026-08-31", "qtd")),
        # in the first quarter "this quarter" is still a quarter, not the year
        ("в этом квартале", date(2027, 1, 15), ("2027-01-01..2027-01-15", "2026-10-01..2026-10-15", "qtd")),
        ("last quarter", date(2026, 12, 1), ("2026-07-01..2026-09-30", "2026-04-01..2026-06-30", "quarter")),
        ("in 2024", date(2026, 12, 1), ("2024-01-01..2024-12-31", "2023-01-01..2023-12-31", "year")),
        ("this year", date(2026, 3, 10), ("2026-01-01..2026-03-10", "2025-01-01..2025-03-10", "ytd")),
        # a year still running is cut at today, and compared like for like
        ("in 2026", date(2026, 3, 10), ("2026-01-01..2026-03-10", "2025-01-01..2025-03-10", "ytd")),
        ("in march 2025", date(2026, 12, 1), ("2025-03-01..2025-03-31", "2025-02-01..2025-02-28", "month")),
        # month to date: 30 days of March against February, which has 28
        ("since 2026-03-01", date(2026, 3, 30), ("2026-03-01..2026-03-30", "2026-02-01..2026-02-28", "mtd")),
        ("last 30 days", date(2026, 12, 1), ("2026-11-02..2026-12-01", "2026-10-03..2026-11-01", "preceding")),
        # "since October" names no quarter: the days just before it
        ("since october", date(2026, 12, 1), ("2026-10-01..2026-12-01", "2026-07-31..2026-09-30", "preceding")),
        ("what is rising?", date(2026, 12, 1), ("2026-06-05..2026-12-01", "2025-12-07..2026-06-04", "preceding")),
    ],
)
def test_windows_compare_like_with_like(question, as_of, expected):
    assert _windows(question, as_of) == expected


def test_window_lengths_are_whole_days():
    cur, prev, _ = compare_windows(parse_date_range("in 2024", date(2026, 1, 1)), as_of=date(2026, 1, 1),
                                   default_days=180)
    assert (cur.days, prev.days) == (366, 365)
    assert Window(start=None, end=None).span() == "…..…"


# -- kinds of change over two windows -------------------------------------------------


def test_this_quarter_counts_only_the_compared_windows(tmp_path, trend_spec):
    store = _store(tmp_path, WINDOW_CORPUS)
    s = _trend(store, trend_spec, "Which kinds of fixes are rising this quarter?", date(2026, 12, 1))
    assert (s["window"], s["previous"]) == (
        {"from": "2026-10-01", "to": "2026-12-01", "days": 62},
        {"from": "2026-07-01", "to": "2026-08-31", "days": 62},
    )
    # current: alpha 2.0-1, alpha 1.9-2, beta 3.1-1; previous: alpha 1.8-1, beta 3.0-1 (31 Aug 23:00 UTC).
    assert s["totals"] == {
        "current": {"uploads": 3, "cve_ids": 2, "cve_mentions": 3, "bugs_closed": 1},
        "previous": {"uploads": 2, "cve_ids": 0, "cve_mentions": 0, "bugs_closed": 0},
    }
    security = next(k for k in s["kinds"] if k["kind"] == "security")
    assert (security["current"], security["previous"], security["delta"]) == (2, 0, 2)
    # rising first: bugfix 3 vs 1 (+2, more uploads), then security 2 vs 0 (+2)
    assert [k["kind"] for k in s["kinds"][:2]] == ["bugfix", "security"]
    in_windows = {"deb:alpha:2.0-1", "deb:alpha:1.9-2", "deb:beta:3.1-1", "deb:alpha:1.8-1", "deb:beta:3.0-1"}
    assert s["examples"] and set(s["examples"]) <= in_windows
    assert s["examples"][0] == "deb:alpha:2.0-1"  # newest upload of the kind that rose most
    assert "- bugfix: 3 vs 1 (+2, +200%)" in s["table"]
    table = s["table"]
    assert "Compared: 2026-10-01..2026-12-01 (62 days, quarter to date) against 2026-07-01..2026-08-31 " \
           "(62 days, the same 62 days of the previous quarter)." in table
    assert "- distinct CVE ids named: 2 vs 0" in table
    assert "- CVE mentions (an id counted once per upload): 3 vs 0" in table
    assert "- security: 2 vs 0 (+2)" in table
    assert s["summary"].startswith("In 2026-10-01..2026-12-01, compared with 2026-07-01..2026-08-31 (the same "
                                   "62 days of the previous quarter), the kinds of change that rose were bugfix (1 -> 3), "
                                   "security (0 -> 2)")
    assert {3, 2, 62, 2026} <= set(s["numbers"])
    assert "2026-08-31" in s["dates"]


def test_an_empty_window_says_so_instead_of_a_fall_to_zero(tmp_path, trend_spec):
    store = _store(tmp_path, WINDOW_CORPUS)
    s = _trend(store, trend_spec, "Which kinds of fixes are rising this quarter?", date(2027, 1, 15))
    assert s["empty"] == {"current": True, "previous": False}
    assert s["newest"] == "2026-11-20"
    assert all(k["delta"] is None and k["change_pct"] is None for k in s["kinds"])
    assert "No data in 2027-01-01..2027-01-15: no changelog entry in scope is dated in this window " \
           "(the newest is from 2026-11-20)." in s["table"]
    assert "Uploads with each kind of change in 2026-10-01..2026-10-15:" in s["table"]
    assert "(-" not in s["table"]  # no fall is reported
    assert s["summary"].startswith("There are no changelog entries dated 2027-01-01..2027-01-15 (the newest is "
                                   "from 2026-11-20), so no trend can be computed")
    assert "2026-10-01..2026-10-15 had 1 upload, most often with bugfix (1) changes." in s["summary"]
    assert s["examples"] == ["deb:alpha:1.9-2"]  # the previous window's only entry


def test_no_data_in_either_window(tmp_path, trend_spec):
    store = _store(tmp_path, WINDOW_CORPUS)
    s = _trend(store, trend_spec, "Which kinds of fixes are rising in 2010?", date(2026, 12, 1))
    assert s["empty"] == {"current": True, "previous": True}
    assert s["examples"] == []
    assert s["summary"] == ("There are no changelog entries dated 2010-01-01..2010-12-31 nor "
                            "2009-01-01..2009-12-31 (the newest is from 1997-03-01).")


def test_an_empty_previous_window_is_not_a_rise_from_zero(tmp_path, trend_spec):
    store = _store(tmp_path, WINDOW_CORPUS)
    s = _trend(store, trend_spec, "Which kinds of fixes are rising in 1997?", date(2026, 12, 1))
    assert s["empty"] == {"current": False, "previous": True}
    assert all(k["delta"] is None for k in s["kinds"])
    assert "No data in the previous window 1996-01-01..1996-12-31: nothing to compare with." in s["table"]
    assert s["summary"].startswith("There are no entries in 1996-01-01..1996-12-31 to compare with; "
                                   "1997-01-01..1997-12-31 had 1 upload")


def test_a_named_package_limits_the_counts(tmp_path, trend_spec):
    store = _store(tmp_path, WINDOW_CORPUS)
    s = _trend(store, trend_spec, "Are beta fixes rising this quarter?", date(2026, 12, 1))
    assert s["packages"] == ["beta"]
    assert s["uploads"] == {"current": 1, "previous": 1}
    assert "Packages: beta." in s["table"]


def test_russian_question_gets_russian_figures(tmp_path, trend_spec):
    store = _store(tmp_path, WINDOW_CORPUS)
    s = _trend(store, trend_spec, "Какие виды исправлений растут в этом квартале?", date(2026, 12, 1))
    assert s["lang"] == "ru"
    assert s["table"].startswith("Сравниваются 2026-10-01..2026-12-01 (62 дн., квартал на сегодня) и "
                                 "2026-07-01..2026-08-31 (62 дн., те же 62 дн. предыдущего квартала).")
    assert "- разных CVE: 2 и 0" in s["table"]
    assert "- безопасность: 2 и 0 (+2)" in s["table"]
    assert s["summary"].startswith("За 2026-10-01..2026-12-01 по сравнению с 2026-07-01..2026-08-31")
    for english in ("uploads", "Compared", "previous", "vs"):
        assert english not in s["table"] + s["summary"]


@pytest.mark.parametrize(("n", "text"), [(1, "1 загрузка"), (3, "3 загрузки"), (5, "5 загрузок"),
                                         (11, "11 загрузок"), (21, "21 загрузка"), (112, "112 загрузок")])
def test_russian_upload_counts_agree(n, text):
    from knowledge_os.domains._trend_text import _uploads

    assert _uploads(n, "ru") == text


# -- rankings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Which five packages had the most uploads in 2024?", RankingQuery(entity="package", measure="uploads", n=5)),
        ("which packages got the most CVE fixes this year?", RankingQuery(entity="package", measure="cves", n=5)),
        ("Какие пакеты чаще всего обновлялись в 2025 году?", RankingQuery(entity="package", measure="uploads", n=5)),
        ("top maintainers by uploads", RankingQuery(entity="maintainer", measure="uploads", n=5)),
        ("Top 10 packages by bugs closed in the last 6 months", RankingQuery(entity="package", measure="bugs", n=10)),
        ("top-3 maintainers by security fixes", RankingQuery(entity="maintainer", measure="cves", n=3)),
        ("Who uploaded the most in 2023?", RankingQuery(entity="maintainer", measure="uploads", n=5)),
        ("Which CVEs were fixed in the most packages?", RankingQuery(entity="cve", measure="packages", n=5)),
        ("Назови три пакета с наибольшим числом исправленных уязвимостей за 2024 год",
         RankingQuery(entity="package", measure="cves", n=3)),
        ("Какие десять сопровождающих закрыли больше всего ошибок?",
         RankingQuery(entity="maintainer", measure="bugs", n=10)),
        ("Самые активные пакеты за последние 3 месяца", RankingQuery(entity="package", measure="uploads", n=5)),
    ],
)
def test_parse_ranking(question, expected):
    assert parse_ranking(question) == expected


@pytest.mark.parametrize(
    "question",
    ["Which kinds of fixes are rising this quarter?", "How many security fixes were uploaded per month?",
     "Какие виды исправлений растут в этом квартале?", "Which kinds of change were most common?"],
)
def test_questions_that_rank_nothing(question):
    assert parse_ranking(question) is None


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("Which ten maintainers signed the most uploads in Q3 2020?", "2020-07-01..2020-09-30"),
        ("top packages in the fourth quarter of 2021", "2021-10-01..2021-12-31"),
        ("Назови три пакета с наибольшим числом закрытых ошибок в 1-м квартале 2022 года.",
         "2022-01-01..2022-03-31"),
        ("за 2-й квартал 2021 года", "2021-04-01..2021-06-30"),
        ("в первом квартале 2021 года", "2021-01-01..2021-03-31"),
        # calendar months: the same day twelve months back
        ("in the last 12 months", "2025-12-01..2026-12-01"),
    ],
)
def test_named_quarters_and_months_are_periods(text, span):
    assert _windows(text, date(2026, 12, 1))[0] == span


def test_a_named_quarter_is_compared_with_the_quarter_before():
    assert _windows("in Q1 2022", date(2026, 12, 1)) == (
        "2022-01-01..2022-03-31", "2021-10-01..2021-12-31", "quarter")


def test_top_packages_by_uploads_with_ties(tmp_path, trend_spec):
    store = _store(tmp_path, RANKING_CORPUS)
    s = _trend(store, trend_spec, "Which two packages had the most uploads in 2024?", date(2026, 12, 1))
    r = s["ranking"]
    assert (r["entity"], r["measure"], r["n"]) == ("package", "uploads", 2)
    # delta and eps tie for second place: both are named, with competition ranks.
    assert [(x["rank"], x["name"], x["current"], x["previous"]) for x in r["rows"]] == [
        (1, "gamma", 4, 0), (2, "delta", 3, 5), (2, "eps", 3, 0)]
    assert "Top 2 packages by uploads, 2024-01-01..2024-12-31 (beside each: the count in " \
           "2023-01-01..2023-12-31):\n1. gamma: 4 (0)\n2. delta: 3 (5)\n2. eps: 3 (0)" in s["table"]
    assert s["summary"] == ("Top 2 packages by uploads, 2024-01-01..2024-12-31: gamma (4); "
                            "and, tied at 3, delta, eps.")
    assert {"gamma", "delta", "eps"} <= set(s["names"])
    assert {4, 3, 5, 2} <= set(s["numbers"])
    assert s["examples"] == ["deb:gamma:1.4", "deb:delta:2.3", "deb:eps:3.3"]
    assert s["kinds"] == []  # a ranking counts no kinds of change (it shows none)


def test_top_packages_by_cve_fixes_counts_distinct_ids(tmp_path, trend_spec):
    store = _store(tmp_path, RANKING_CORPUS)
    s = _trend(store, trend_spec, "which packages got the most CVE fixes in 2024?", date(2026, 12, 1))
    assert [(x["name"], x["current"]) for x in s["ranking"]["rows"]] == [("delta", 6), ("gamma", 1)]
    # gamma's newest upload (1.4) fixes no CVE: its example is the one that does (1.1).
    assert s["examples"] == ["deb:delta:2.3", "deb:gamma:1.1"]
    assert "Top 5 packages by distinct CVE ids fixed" in s["table"]


def test_top_maintainers_over_all_dates(tmp_path, trend_spec):
    store = _store(tmp_path, RANKING_CORPUS)
    s = _trend(store, trend_spec, "top maintainers by uploads", date(2026, 12, 1))
    assert s["previous"] is None and s["basis"] == "all"
    assert s["window"]["from"] == "2023-03-01" and s["window"]["to"] == "2024-12-07"
    # Bob: delta 8 + eps 3; Ann: gamma 4 + zeta 2 + eta 1.
    assert [(x["name"], x["current"], x["previous"]) for x in s["ranking"]["rows"]] == [
        ("Bob Builder", 11, None), ("Ann Author", 7, None)]
    assert {"Bob Builder", "bob@example.org"} <= set(s["names"])
    assert "Period: all dates (2023-03-01..2024-12-07)." in s["table"]
    assert "1. Bob Builder (bob@example.org): 11" in s["table"]


def test_a_maintainer_with_two_addresses_is_one_person(tmp_path, trend_spec):
    corpus = {
        "one": [_entry("1.1", "Mon, 01 Jan 2024 10:00:00 +0000", "Cat Coder <cat@debian.org>"),
                _entry("1.2", "Tue, 02 Jan 2024 10:00:00 +0000", "Cat Coder <cat@debian.org>")],
        "two": [_entry("2.1", "Wed, 03 Jan 2024 10:00:00 +0000", "Cat Coder <cat@ubuntu.com>")],
        "three": [_entry(f"3.{i}", f"Thu, 0{i} Feb 2024 10:00:00 +0000", ANN) for i in range(1, 3)],
    }
    store = _store(tmp_path, corpus)
    s = _trend(store, trend_spec, "Who uploaded the most in 2024?", date(2026, 12, 1))
    rows = s["ranking"]["rows"]
    assert [(x["name"], x["members"], x["current"]) for x in rows] == [
        ("Cat Coder", ["cat@debian.org", "cat@ubuntu.com"], 3), ("Ann Author", ["ann@example.org"], 2)]
    assert "1. Cat Coder (cat@debian.org, cat@ubuntu.com): 3 (0)" in s["table"]
    assert s["examples"] == ["deb:two:2.1", "deb:three:3.2"]


def test_russian_ranking(tmp_path, trend_spec):
    store = _store(tmp_path, RANKING_CORPUS)
    s = _trend(store, trend_spec, "Какие пакеты чаще всего обновлялись в 2024 году?", date(2026, 12, 1))
    assert "Топ-5 пакетов по числу загрузок, 2024-01-01..2024-12-31" in s["table"]
    assert s["summary"] == ("Топ-5 пакетов по числу загрузок, 2024-01-01..2024-12-31: gamma (4); delta (3); "
                            "eps (3); zeta (2); eta (1).")


def test_ranking_of_an_empty_window(tmp_path, trend_spec):
    store = _store(tmp_path, RANKING_CORPUS)
    s = _trend(store, trend_spec, "Which packages had the most uploads in 2025?", date(2026, 12, 1))
    assert s["ranking"]["rows"] == []
    assert s["summary"] == ("There are no changelog entries dated 2025-01-01..2025-12-31 (the newest is "
                            "from 2024-12-07), so nothing can be ranked.")


# -- through the graph (fake chat model) ----------------------------------------------


def test_ranking_answer_names_the_packages_and_cites_window_entries(kos_factory):
    kos = kos_factory(responses=["openssl and curl were updated most [1]."])
    r = kos.run("Which five packages had the most uploads in 2026?", domain="trend", as_of="2026-11-22",
                use_cache=False)
    assert r.domain == "trend"
    assert "1. curl: 2 (0)\n1. openssl: 2 (1)" in r.answer
    assert "Examples (the newest entry of each named):" in r.answer
    assert all(c.metadata["date"].startswith("2026") for c in r.citations)


def test_trend_answer_never_shows_entries_outside_the_windows(kos_factory):
    kos = kos_factory(responses=["Nothing much changed [1]."])
    r = kos.run("Which kinds of fixes are rising this quarter?", as_of="2026-11-22", use_cache=False)
    # Q4 to date (2026-10-01..2026-11-22) against 2026-07-01..2026-08-22: curl in October only.
    assert "Compared: 2026-10-01..2026-11-22 (53 days, quarter to date)" in r.answer
    assert [c.id for c in r.citations] == ["deb:curl:7.88.1-10+deb12u14"]


def test_data_written_summary_is_in_the_questions_language(kos_factory):
    kos = kos_factory(responses=[""])  # an empty reply: the summary is written from the data
    r = kos.run("Какие виды исправлений растут в этом году?", as_of="2026-11-22", use_cache=False)
    assert r.answer.startswith("За 2026-01-01..2026-11-22 по сравнению с 2025-01-01..2025-11-22")
    assert "Цифры (подсчитаны по журналам изменений):" in r.answer
    assert "Примеры из сравниваемых периодов:" in r.answer


def test_numbers_are_the_figures_not_digits_of_names(tmp_path, trend_spec):
    corpus = {**RANKING_CORPUS, "openjdk-17": [_entry("17.0.9-1", "Mon, 05 Feb 2024 10:00:00 +0000", BOB)]}
    store = _store(tmp_path, corpus)
    s = _trend(store, trend_spec, "Which ten packages had the most uploads in 2024?", date(2026, 12, 1))
    assert "openjdk-17" in s["names"]
    assert 17 not in s["numbers"]
    # Every other integer written is a figure listed in the stats.
    text = s["table"] + "\n" + s["summary"]
    for token in [*s["names"], *s["dates"]]:
        text = text.replace(token, " ")
    assert {int(n) for n in re.findall(r"\d+", text)} <= set(s["numbers"])


def test_structured_reply_to_a_ranking_gives_the_ranked_entities(kos_factory):
    # The structured reply picks kinds of change; a ranking question is answered with the
    # ranking written from the data instead.
    kos = kos_factory(responses=['{"kinds": ["security"]}'], llm={"answer_mode": "structured"})
    r = kos.run("Which five packages had the most uploads in 2026?", domain="trend", as_of="2026-11-22",
                use_cache=False)
    assert r.answer.startswith("Top 5 packages by uploads, 2026-01-01..2026-11-22: curl (2); openssl (2).")
    assert r.quality.grounded and r.data_only is False


def test_a_patch_for_a_cve_fix_regression_counts_as_a_bug_fix_not_a_security_fix(tmp_path, trend_spec):
    # curl 7.88.1-10+deb12u13 (Debian bookworm, 2025): the CVE id names the fix whose
    # regression the upload repairs; the upload itself fixes no vulnerability.
    regression = ("debian/patches/fix-CVE-2023-27534-regression-{1,2}.patch: add patches from upstream "
                  "to restore sftp://host/~ behaviour.")
    store = _store(tmp_path, {"curl": [
        _entry("7.88.1-10+deb12u13", "Mon, 16 Jun 2025 10:00:00 +0000", ANN, [regression]),
        _entry("7.88.1-10+deb12u11", "Mon, 10 Feb 2025 10:00:00 +0000", ANN, ["Import patch for CVE-2025-0167."]),
    ]})
    s = _trend(store, trend_spec, "How many curl security fixes were there in 2025?", date(2026, 12, 1))
    kinds = {k["kind"]: k["current"] for k in s["kinds"]}
    assert kinds["security"] == 1  # CVE-2025-0167 only
    assert kinds["bugfix"] == 1


def test_digest_kinds_read_a_cve_regression_patch_as_a_bug_fix():
    import re as _re

    from knowledge_os.domains.compose import DEFAULT_CHANGE_KINDS

    def first_kind(line: str) -> str:
        return next((n for n, pats in DEFAULT_CHANGE_KINDS if any(_re.search(p, line, _re.I) for p in pats)), "other")

    assert first_kind("debian/patches/fix-CVE-2023-27534-regression-1.patch: restore sftp://host/~") == "bugfix"
    assert first_kind("Fix CVE-2023-27534: path traversal in SFTP") == "security"


# -- a count per month, quarter or year -----------------------------------------------


@pytest.mark.parametrize(("question", "unit"), [
    ("How many uploads did linux get per quarter in 2025?", "quarter"),
    ("Monthly totals of bug closures for 2024.", "month"),
    ("Show upload activity month by month", "month"),
    ("Uploads by year since 2020", "year"),
    ("Сколько загрузок было у linux по кварталам в 2025 году?", "quarter"),
    ("Помесячная статистика закрытых багов за 2024 год.", "month"),
    ("Количество исправлений документации по месяцам.", "month"),
    ("Загрузки по годам", "year"),
    ("Which kinds of fixes are rising this quarter?", None),  # a window, not a breakdown
    ("What changed in curl last month?", None),
    ("Какие виды исправлений растут в этом квартале?", None),
    ("Сколько загрузок было в прошлом году?", None),
])
def test_series_unit_reads_the_breakdown_a_question_asks_for(question, unit):
    assert series_unit(question) == unit


@pytest.mark.parametrize(("question", "kinds", "measure"), [
    ("Count the CVE fixes per quarter.", ["security"], ("cve_ids", None)),
    ("Monthly totals of bug closures for 2024.", [], ("bugs_closed", None)),
    ("Помесячная статистика закрытых багов за 2024 год.", [], ("bugs_closed", None)),
    ("How many bug-fix uploads per month did we get in 2025?", ["bugfix"], ("kind", "bugfix")),
    ("Uploads per quarter in 2025", [], ("uploads", None)),
    ("Security and packaging uploads per month", ["security", "packaging"], ("uploads", None)),
])
def test_series_measure(question, kinds, measure):
    assert series_measure(question, kinds) == measure


def test_a_count_per_month_lists_every_month_of_the_window(tmp_path, trend_spec):
    store = _store(tmp_path, WINDOW_CORPUS)
    s = _trend(store, trend_spec, "How many uploads per month since July 2026?", date(2026, 12, 1))
    assert s["window"] == {"from": "2026-07-01", "to": "2026-12-01", "days": 154}
    rows = s["series"]["rows"]
    # alpha 1.8-1 (Jul), beta 3.0-1 (31 Aug 23:00 UTC), alpha 1.9-1 and beta 2.9-1 (Sep),
    # alpha 1.9-2 and beta 3.1-1 (Oct), alpha 2.0-1 (Nov), none in December so far
    assert [(r["period"], r["value"]) for r in rows] == [
        ("2026-07", 1), ("2026-08", 1), ("2026-09", 2), ("2026-10", 2), ("2026-11", 1), ("2026-12", 0)]
    assert (rows[-1]["from"], rows[-1]["to"]) == ("2026-12-01", "2026-12-01")  # cut at as_of
    assert s["summary"] == ("Uploads per month, 2026-07-01..2026-12-01: 2026-07: 1, 2026-08: 1, 2026-09: 2, "
                            "2026-10: 2, 2026-11: 1, 2026-12: 0.")
    assert "- 2026-09 (2026-09-01..2026-09-30): 2" in s["table"]
    assert sum(r["value"] for r in rows) == s["totals"]["current"]["uploads"]


def test_a_count_per_quarter_of_one_kind_in_russian(tmp_path, trend_spec):
    store = _store(tmp_path, WINDOW_CORPUS)
    s = _trend(store, trend_spec, "Сколько исправлений безопасности было по кварталам в 2026 году?",
               date(2026, 12, 1))
    assert s["series"]["measure"] == "kind" and s["series"]["kind"] == "security"
    # security: alpha 2.0-1 (Q4), beta 3.1-1 (Q4)
    assert [(r["period"], r["value"]) for r in s["series"]["rows"]] == [
        ("2026-Q1", 0), ("2026-Q2", 0), ("2026-Q3", 0), ("2026-Q4", 2)]
    assert s["summary"].startswith("Загрузки с изменениями вида «безопасность» по кварталам, 2026-01-01..2026-12-01: "
                                   "2026-Q1: 0,")


def test_a_long_series_is_summed_up_by_its_extremes_and_coarsened(tmp_path, trend_spec):
    store = _store(tmp_path, RANKING_CORPUS)
    s = _trend(store, trend_spec, "How many uploads per month from 2023 to 2024?", date(2026, 12, 1))
    assert s["series"]["unit"] == "month" and len(s["series"]["rows"]) == 24
    # 2023: delta's five uploads in March; 2024: gamma 4 in January, ..., eta 1 in December
    assert s["summary"] == ("Uploads per month, 2023-01-01..2024-12-31: most in 2023-03 (5), fewest in 2023-01 (0); "
                            "every month is in the table.")
    s = _trend(store, trend_spec, "How many uploads per month since 2000?", date(2026, 12, 1))
    assert s["series"]["unit"] == "year" and len(s["series"]["rows"]) == 27  # 323 months, 108 quarters: years
    assert [r["value"] for r in s["series"]["rows"] if r["period"] in ("2023", "2024")] == [5, 13]


def test_a_series_question_is_answered_from_the_figures_without_the_model(kos_factory):
    kos = kos_factory(responses=['{"kinds": ["security"]}'], llm={"answer_mode": "structured"})
    r = kos.run("How many uploads did openssl get per quarter in 2025?", as_of="2026-11-22", use_cache=False)
    assert r.answer.startswith("Uploads per quarter, 2025-01-01..2025-12-31: 2025-Q1: ")
    assert r.usage.llm_calls == 0 and r.quality.passed and r.quality.grounded


def test_the_total_a_question_asks_for_in_both_windows(tmp_path, trend_spec):
    from knowledge_os.domains._trend_text import render_total

    store = _store(tmp_path, WINDOW_CORPUS)
    s = _trend(store, trend_spec, "How many CVEs were fixed this quarter?", date(2026, 12, 1))
    assert render_total(s, "cve_ids") == ("Distinct CVE ids named: 2 in 2026-10-01..2026-12-01, against 0 in "
                                          "2026-07-01..2026-08-31 (the same 62 days of the previous quarter).")
    s = _trend(store, trend_spec, "Сколько загрузок было у alpha в этом квартале?", date(2026, 12, 1))
    assert render_total(s, "uploads") == ("Загрузки (alpha): 2 за 2026-10-01..2026-12-01, против 1 за "
                                          "2026-07-01..2026-08-31 (те же 62 дн. предыдущего квартала).")
