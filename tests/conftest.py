"""Shared fixtures. Unit fixtures use fakes for the models and the vector store; the
stores they write to (documents, graph, checkpoints, memory) are the real SQLite ones
in a temporary folder."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

CHANGELOGS = {
    "openssl": [
        ("3.0.19-1~deb12u2", "bookworm-security", "medium", "Sebastian Andrzej Siewior <sebastian@breakpoint.cc>",
         "Fri, 03 Apr 2026 14:29:32 +0200",
         ["CVE-2026-28387 (\"Potential use-after-free in DANE client code\")",
          "CVE-2026-28389 (\"Possible NULL dereference when processing CMS\")"]),
        ("3.0.19-1~deb12u1", "bookworm", "medium", "Sebastian Andrzej Siewior <sebastian@breakpoint.cc>",
         "Sun, 22 Feb 2026 18:36:50 +0100", ["Import 3.0.19"]),
        ("3.0.17-1~deb12u3", "bookworm-security", "high", "Sebastian Andrzej Siewior <sebastian@breakpoint.cc>",
         "Mon, 29 Sep 2025 10:00:00 +0200", ["CVE-2025-9230 (\"Out-of-bounds read in CMS decryption\")"]),
    ],
    "curl": [
        ("7.88.1-10+deb12u14", "bookworm", "medium", "Samuel Henrique <samueloph@debian.org>",
         "Sat, 10 Oct 2026 12:00:00 +0000",
         ["Fix crash when following redirects with netrc. Closes: #1109876",
          "debian/control: bump Standards-Version"]),
        ("7.88.1-10+deb12u13", "bookworm-security", "high", "Samuel Henrique <samueloph@debian.org>",
         "Tue, 12 May 2026 09:00:00 +0000", ["CVE-2025-10148: predictable WebSocket mask"]),
    ],
}


def write_changelog(folder: Path, package: str, entries: list) -> Path:
    """Write a real changelog.Debian.gz in Debian's format."""
    lines = []
    for version, dist, urgency, author, date, changes in entries:
        lines.append(f"{package} ({version}) {dist}; urgency={urgency}\n\n")
        lines += [f"  * {c}\n" for c in changes]
        lines.append(f"\n -- {author}  {date}\n\n")
    target = folder / package / "changelog.Debian.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress("".join(lines).encode()))
    return target


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    doc = tmp_path / "doc"
    for package, entries in CHANGELOGS.items():
        write_changelog(doc, package, entries)
    return doc


def require_binary(name: str, how: str) -> str:
    """The path of program ``name``; skip the test when it is missing, fail instead while
    ``CI`` is set (so a missing install step cannot pass as a skip). ``how`` says where it
    comes from."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found ({how})"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path
