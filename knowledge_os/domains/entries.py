"""One line about a retrieved entry, as answers list it (shared by every answer style)."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["entry_line", "signer"]

_ENTRY_CHARS = 170
_EMAIL = re.compile(r"\s*<[^>]*>\s*$")


def signer(doc: dict[str, Any]) -> str:
    """Who signed an entry: its changelog trailer's name (``metadata.author``) without the
    e-mail address ("Sebastian Andrzej Siewior"); empty when it names none."""
    return _EMAIL.sub("", str((doc.get("metadata") or {}).get("author") or "")).strip()


def entry_line(doc: dict[str, Any]) -> str:
    """One line about a document: version, date, distribution and its first changes."""
    md = doc.get("metadata", {})
    body_lines = doc["text"].split("\n")[1:] if doc.get("metadata", {}).get("version") else doc["text"].split("\n")
    changes = []
    for ln in body_lines:
        ln = ln.strip()
        if not ln or ln.startswith("[") and ln.endswith("]"):
            continue
        changes.append(re.sub(r"^[*+-]\s*", "", ln))
    text = " ".join(changes)
    if len(text) > _ENTRY_CHARS:
        text = text[: _ENTRY_CHARS - 1].rsplit(" ", 1)[0] + "…"
    head = md.get("version") or doc["title"]
    where = ", ".join(x for x in (doc.get("date"), md.get("distribution")) if x)
    return f"{head} ({where}): {text}" if where else f"{head}: {text}"
