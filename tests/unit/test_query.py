from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from knowledge_os.retrieval.query import analyze_query, parse_date_range

AS_OF = date(2026, 11, 22)
CHANNELS = {"openssl": "openssl", "libc6": "glibc", "glibc": "glibc", "less": "less", "tar": "tar"}


def d(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).date().isoformat()


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("what changed since March?", "2026-03-01", "2026-11-23"),
        ("since december", "2025-12-01", "2026-11-23"),  # a month after as_of: last year
        ("since March 2024", "2024-03-01", "2026-11-23"),
        ("since 2025-07-15", "2025-07-15", "2026-11-23"),
        ("uploads per quarter since 2021", "2021-01-01", "2026-11-23"),
        ("after 2023", "2024-01-01", "2026-11-23"),
        ("from 2021 to 2023", "2021-01-01", "2024-01-01"),
        ("between 2025 and 2026", "2025-01-01", "2026-11-23"),  # cut at as_of
        ("с 2022 года", "2022-01-01", "2026-11-23"),
        ("после 2024 года", "2025-01-01", "2026-11-23"),
        ("с 2021 по 2023 год", "2021-01-01", "2024-01-01"),
        ("in May 2025", "2025-05-01", "2025-06-01"),
        ("this quarter", "2026-10-01", "2026-11-23"),
        ("last quarter", "2026-07-01", "2026-10-01"),
        ("this year", "2026-01-01", "2026-11-23"),
        ("last year", "2025-01-01", "2026-01-01"),
        ("in 2024", "2024-01-01", "2025-01-01"),
        ("past 3 months", "2026-08-22", "2026-11-23"),  # calendar months
        ("last week", "2026-11-16", "2026-11-23"),
        ("с марта", "2026-03-01", "2026-11-23"),
        ("с марта 2025", "2025-03-01", "2026-11-23"),
        ("в мае 2025", "2025-05-01", "2025-06-01"),
        ("в этом квартале", "2026-10-01", "2026-11-23"),
        ("в прошлом квартале", "2026-07-01", "2026-10-01"),
        ("в этом году", "2026-01-01", "2026-11-23"),
        ("за 2024 год", "2024-01-01", "2025-01-01"),
        ("за последние 2 недели", "2026-11-09", "2026-11-23"),
        ("за последний месяц", "2026-10-24", "2026-11-23"),
    ],
)
def test_date_ranges(text: str, start: str, end: str) -> None:
    r = parse_date_range(text, AS_OF)
    assert r is not None, text
    assert (d(r.ts_from), d(r.ts_to)) == (start, end)


def test_no_date_named() -> None:
    assert parse_date_range("what changed in openssl?", AS_OF) is None


def test_ids_packages_and_aliases() -> None:
    a = analyze_query("Did libc6 fix CVE-2023-4911 or bug #1055473?", channels=CHANNELS, as_of=AS_OF)
    assert a.cves == ("CVE-2023-4911",)
    assert a.bugs == ("1055473",)
    assert a.packages == ("glibc",)
    assert a.entity_ids == ("cve:CVE-2023-4911", "bug:1055473", "package:glibc")


def test_common_words_are_not_packages() -> None:
    a = analyze_query("more or less what changed", channels=CHANNELS, as_of=AS_OF)
    assert a.packages == ()


def test_filter_respects_flags() -> None:
    a = analyze_query("openssl since March", channels=CHANNELS, as_of=AS_OF)
    assert a.to_filter().channels == ("openssl",)
    assert a.to_filter(with_dates=False).ts_from is None
    assert a.to_filter(with_packages=False).channels is None


def test_describe_shows_both_days_inclusive() -> None:
    from datetime import date

    from knowledge_os.retrieval.query import parse_date_range

    this_year = parse_date_range("What changed this year?", date(2026, 12, 1))
    assert this_year is not None and this_year.describe() == "2026-01-01 .. 2026-12-01"
    in_2020 = parse_date_range("in 2020", date(2026, 12, 1))
    assert in_2020 is not None and in_2020.describe() == "2020-01-01 .. 2020-12-31"


@pytest.mark.parametrize(
    ("question", "unknown"),
    [
        ("What changed in nginx in 2023?", ("nginx",)),
        ("Which fixes for the package foo-bar2 since March?", ("foo-bar2",)),
        ("Что изменилось в nginx в этом году?", ("nginx",)),
        ("What changed in openssl in 2023?", ()),        # a known package
        ("What changed in March?", ()),                  # a month, not a name
        ("What got fixed in libopenssl lately?", ()),    # the library of a known package
        ("What changed in the last month?", ()),         # stop words
        ("Which kinds of fixes are rising this quarter?", ()),
        ("Что изменилось в марте?", ()),                 # Cyrillic: never a package name
        ("Was CVE-2024-13176 fixed in bookworm?", ()),   # a Debian release, not a package
        ("What changed in bookworm-security in 2025?", ()),
    ],
)
def test_unknown_package_in_a_package_slot(question: str, unknown: tuple[str, ...]) -> None:
    a = analyze_query(question, channels={"openssl": "openssl"}, as_of=date(2026, 12, 1))
    assert a.unknown_packages == unknown


@pytest.mark.parametrize("question", [
    "Which Debian upload contains the fix for CVE-2023-38633?",   # an id, not a name
    "Which ten maintainers signed the most uploads in Q3 2020?",  # a quarter
    "Is bug #1052001 fixed in the current apt?",                  # an adjective
])
def test_ids_quarters_and_adjectives_are_not_package_names(question: str) -> None:
    assert analyze_query(question, channels={}, as_of=date(2026, 12, 1)).unknown_packages == ()


def test_a_common_name_in_cyrillic_names_its_package() -> None:
    # "Что нового в ядре в 2025 году?" listed a gdk-pixbuf entry: "ядре" named nothing
    channels = {"linux": "linux", "ядре": "linux", "kernel": "linux"}
    a = analyze_query("Что нового в ядре в 2025 году?", channels=channels, as_of=AS_OF)
    assert a.packages == ("linux",) and a.package_names == ("ядре",)
    assert analyze_query("What changed in the kernel?", channels=channels, as_of=AS_OF).packages == ("linux",)
    assert analyze_query("Что нового в ядре?", channels={"linux": "linux"}, as_of=AS_OF).packages == ()
