"""Entity extraction shared by ingest and query analysis.

Entity ids are ``"<kind>:<key>"``: ``package:openssl``, ``cve:CVE-2024-1234``,
``bug:1055473``, ``person:jdoe@debian.org``. CVE ids follow MITRE's format
(``CVE-YYYY-NNNN`` with 4 or more digits); Debian bug numbers are the ``#NNN`` items of
a ``Closes:`` field (Debian Policy 4.4) or written ``bug #NNN`` / ``баг #NNN``.
"""

from __future__ import annotations

import re

__all__ = ["CLOSES_RE", "CVE_RE", "bug_ids", "cve_ids", "person_id"]

CVE_RE = re.compile(r"\bCVE-(\d{4})-(\d{4,7})\b", re.IGNORECASE)
CLOSES_RE = re.compile(r"closes:\s*((?:(?:bug)?#?\s?\d+[,\s]*)+)", re.IGNORECASE)
_BUG_NUMBER_RE = re.compile(r"#?\s?(\d{3,7})")
_BUG_MENTION_RE = re.compile(r"(?:\bbug|\bбаг|\bошибк\w*)\s*(?:no\.?|№)?\s*#\s?(\d{3,7})|(?<![\w&])#(\d{4,7})\b", re.IGNORECASE)


def cve_ids(text: str) -> list[str]:
    """CVE ids in order of first appearance, upper-cased, without duplicates."""
    seen: dict[str, None] = {}
    for m in CVE_RE.finditer(text):
        seen.setdefault(f"CVE-{m.group(1)}-{m.group(2)}", None)
    return list(seen)


def bug_ids(text: str, *, closes_only: bool = True) -> list[str]:
    """Debian bug numbers as strings, in order, without duplicates.

    Args:
        text: Changelog body or a query.
        closes_only: Only numbers in ``Closes:`` fields (ingest); False also accepts
            ``bug #NNN``, ``баг #NNN`` and bare ``#NNNNN`` (queries).
    """
    seen: dict[str, None] = {}
    for m in CLOSES_RE.finditer(text):
        for n in _BUG_NUMBER_RE.findall(m.group(1)):
            seen.setdefault(n, None)
    if not closes_only:
        for m in _BUG_MENTION_RE.finditer(text):
            seen.setdefault(m.group(1) or m.group(2), None)
    return list(seen)


def person_id(author: str) -> str | None:
    """``person:<email>`` (lower-case) from ``"Name <email>"``; None without an email."""
    m = re.search(r"<([^<>@\s]+@[^<>\s]+)>", author or "")
    return f"person:{m.group(1).lower()}" if m else None
