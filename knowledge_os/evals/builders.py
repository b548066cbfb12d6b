"""Case builders that ship with the runner (the old ``evals/changelog_suite.py`` cases).

Truth comes from parsing ``<doc_dir>/<package>/changelog.Debian.gz`` with python-debian,
never from Knowledge OS's own stores or retrieval, so a suite measures the pipeline and
not itself. The richer builders of the eval data live in ``knowledge_os.evals.truth``;
:func:`find_builder` looks there first.

Every builder has the signature of ``knowledge_os.evals.truth.build_cases`` without the
name: ``builder(*, doc_dir: Path, as_of: date, n: int, seed: int) -> list[dict]``,
deterministic for a seed and corpus.
"""

from __future__ import annotations

import functools
import gzip
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from debian.changelog import Changelog

from knowledge_os.errors import UnknownNameError
from knowledge_os.evals import truth

__all__ = ["BUILDERS", "ChangelogEntry", "find_builder", "read_entries"]

logger = logging.getLogger(__name__)

_CVE = re.compile(r"\bCVE-\d{4}-\d{4,}\b")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangelogEntry:
    """One upload as the changelog states it. ``doc_id`` is ``deb:<source>:<version>``."""

    package: str
    version: str
    day: date | None
    text: str

    @property
    def doc_id(self) -> str:
        return f"deb:{self.package}:{self.version}"


def read_entries(doc_dir: Path) -> list[ChangelogEntry]:
    """Every entry of every ``<doc_dir>/*/changelog.Debian.gz``; a version repeated in one
    changelog counts once (the newest entry, as ingest does). Unreadable files are logged
    and skipped. Sorted by (package, newest first)."""
    out: dict[str, ChangelogEntry] = {}
    for path in sorted(doc_dir.glob("*/changelog.Debian.gz")):
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
            blocks = list(Changelog(text, strict=False))
        except Exception as exc:  # noqa: BLE001 - a broken changelog must not end the suite
            logger.warning("skipping %s: %s", path, exc)
            continue
        for block in blocks:
            try:
                day = parsedate_to_datetime(block.date).date() if block.date else None
            except (TypeError, ValueError):
                day = None
            entry = ChangelogEntry(package=block.package, version=str(block.version), day=day,
                                   text="\n".join(block.changes()))
            out.setdefault(entry.doc_id, entry)
    return sorted(out.values(), key=lambda e: (e.package, -(e.day.toordinal() if e.day else 0)))


def cve_fixed_by(*, doc_dir: Path, as_of: date, n: int, seed: int) -> list[dict[str, Any]]:
    """"Which upload fixed CVE-…?" for n CVEs drawn at random; expected: the entries naming it."""
    entries = read_entries(doc_dir)
    by_cve: dict[str, list[str]] = {}
    for e in entries:
        if e.day is not None and e.day > as_of:
            continue
        for cve in sorted(set(_CVE.findall(e.text))):
            by_cve.setdefault(cve, []).append(e.doc_id)
    rng = random.Random(seed)
    chosen = rng.sample(sorted(by_cve), min(n, len(by_cve)))
    return [{"id": f"cve-{i:04d}", "query": f"Which upload fixed {cve}?", "lang": "en", "tags": ["cve", "digest"],
             "expected": {"domain": "digest", "ids": [cve], "doc_ids": by_cve[cve]}}
            for i, cve in enumerate(chosen, start=1)]


def package_since(*, doc_dir: Path, as_of: date, n: int, seed: int) -> list[dict[str, Any]]:
    """"What changed in P since <Month YYYY>?" for n packages with >= 4 dated uploads; the
    month is that of the third-newest upload; expected: P's uploads from the 1st of it."""
    entries = [e for e in read_entries(doc_dir) if e.day is not None and e.day <= as_of]
    by_pkg: dict[str, list[ChangelogEntry]] = {}
    for e in entries:
        by_pkg.setdefault(e.package, []).append(e)
    eligible = sorted(p for p, es in by_pkg.items() if len(es) >= 4)
    rng = random.Random(seed)
    cases = []
    for i, pkg in enumerate(rng.sample(eligible, min(n, len(eligible))), start=1):
        es = sorted(by_pkg[pkg], key=lambda e: e.day, reverse=True)
        pivot = es[2].day
        start = date(pivot.year, pivot.month, 1)
        cases.append({
            "id": f"since-{i:04d}", "query": f"What changed in {pkg} since {MONTHS[start.month - 1]} {start.year}?",
            "lang": "en", "tags": ["period", "digest"],
            "expected": {"domain": "digest", "packages": [pkg], "doc_ids": [e.doc_id for e in es if e.day >= start],
                         "period": {"from": start.isoformat(), "to": as_of.isoformat()}},
        })
    return cases


BUILDERS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "cve_fixed_by": cve_fixed_by,
    "package_since": package_since,
}
"""The runner's own builders by name."""


def find_builder(name: str) -> Callable[..., list[dict[str, Any]]]:
    """The builder ``name`` from ``knowledge_os.evals.truth.BUILDERS`` (the eval data's) or
    :data:`BUILDERS`.

    Raises:
        UnknownNameError: neither has it (the message lists both sets).
    """
    theirs = set(truth.BUILDERS)
    if name in theirs:
        return functools.partial(truth.build_cases, name)
    if name in BUILDERS:
        return BUILDERS[name]
    raise UnknownNameError("case builder", name, set(theirs) | set(BUILDERS))
