"""Rankings on this machine's Debian changelogs against an independent parse.

The reference counts are made here with python-debian directly (not through the
project's reader): one upload per (source package, version) as in the changelog's own
header lines, the date from its trailer line, CVE ids in MITRE's format. compute_trend
reads the same files through the project's ingest reader and document store. Skipped
on a machine without ``/usr/share/doc/*/changelog.Debian.gz``.
"""

from __future__ import annotations

import email.utils
import gzip
import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest
from debian.changelog import Changelog

import knowledge_os.domains
from knowledge_os.domains.registry import load_domain_file
from knowledge_os.domains.trend import compute_trend
from knowledge_os.retrieval.docstore import DocumentStore
from knowledge_os.retrieval.query import analyze_query
from knowledge_os.retrieval.sources import DEFAULT_DEBIAN_DOC_DIR, default_corpus, discover, read_file

pytestmark = pytest.mark.integration

AS_OF = date(2026, 12, 1)
CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE)
EMAIL = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")


def _reference_entries() -> dict[tuple[str, str], dict]:
    """(package, version) -> {"year", "email", "cves"} parsed with python-debian."""
    entries: dict[tuple[str, str], dict] = {}
    for path in sorted(DEFAULT_DEBIAN_DOC_DIR.glob("*/changelog.Debian.gz")):
        try:
            changelog = Changelog(gzip.decompress(path.read_bytes()), strict=False, encoding="utf-8")
        except (OSError, EOFError, ValueError, UnicodeDecodeError):
            continue
        for block in changelog:
            package, version = (block.package or "").strip(), str(block.version or "").strip()
            if not package or not version:
                continue
            try:
                year = email.utils.parsedate_to_datetime(block.date).year
            except (TypeError, ValueError, IndexError):
                year = None
            m = EMAIL.search(block.author or "")
            entries[(package, version)] = {
                "year": year,
                "email": m.group(1).lower() if m else None,
                "name": (block.author or "")[: m.start()].strip() if m else None,
                "cves": {c.upper() for c in CVE.findall("\n".join(block.changes()))},
            }
    return entries


@pytest.fixture(scope="module")
def reference() -> dict[tuple[str, str], dict]:
    if not default_corpus():
        pytest.skip("no /usr/share/doc/*/changelog.Debian.gz on this machine")
    return _reference_entries()


@pytest.fixture(scope="module")
def store(tmp_path_factory, reference) -> DocumentStore:
    files, _ = discover(default_corpus())
    store = DocumentStore(tmp_path_factory.mktemp("real") / "docs.db")
    for src in files:
        docs, _, _ = read_file(src)
        store.upsert(docs)
    yield store
    store.close()


def _top(counts: Counter[str], n: int) -> dict[str, int]:
    """The top n and everything tied with the n-th."""
    ordered = counts.most_common()
    cut = ordered[min(n, len(ordered)) - 1][1]
    return {k: v for k, v in ordered if v >= cut}


def _reported(store: DocumentStore, question: str) -> tuple[dict[str, int], dict]:
    spec = load_domain_file(Path(knowledge_os.domains.__file__).parent / "builtin" / "trend.yaml")
    analysis = analyze_query(question, channels=store.channels(), as_of=AS_OF)
    stats = compute_trend(store, spec, analysis, as_of=AS_OF)
    return {row["key"]: row["current"] for row in stats["ranking"]["rows"]}, stats


@pytest.mark.parametrize("year", [2023, 2024])
def test_top_five_packages_by_uploads(store, reference, year):
    truth = _top(Counter(p for (p, _), e in reference.items() if e["year"] == year), 5)
    got, stats = _reported(store, f"Which five packages had the most uploads in {year}?")
    assert got == truth
    for name in truth:
        assert name in stats["summary"] and name in stats["table"]


def test_top_five_maintainers_by_uploads_in_2022(store, reference):
    # A person is the name an address is most often signed with (ties: alphabetical);
    # the addresses of one name count together.
    names: dict[str, Counter[str]] = defaultdict(Counter)
    for e in reference.values():
        if e["year"] == 2022 and e["email"]:
            names[e["email"]][e["name"] or e["email"]] += 1
    per_person: Counter[str] = Counter()
    for by_name in names.values():
        person = sorted(by_name.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        per_person[person] += sum(by_name.values())
    truth = _top(per_person, 5)
    got, stats = _reported(store, "top 5 maintainers by uploads in 2022")
    assert got == truth
    for name in truth:
        assert name in stats["summary"]


def test_top_packages_by_cve_fixes_in_2024(store, reference):
    per: dict[str, set[str]] = defaultdict(set)
    for (package, _), e in reference.items():
        if e["year"] == 2024:
            per[package] |= e["cves"]
    truth = _top(Counter({p: len(c) for p, c in per.items() if c}), 5)
    got, _ = _reported(store, "which packages got the most CVE fixes in 2024?")
    assert got == truth
