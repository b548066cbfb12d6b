"""Helpers shared by the case builders: the case dict, language alternation, and the
guard that keeps the domain YAMLs' own examples out of every case set."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["BUILTIN_DOMAINS_DIR", "is_yaml_example", "lang_for", "make_case", "yaml_examples"]

# The built-in domain YAMLs, read as data files (not through knowledge_os.domains).
BUILTIN_DOMAINS_DIR = Path(__file__).resolve().parents[2] / "domains" / "builtin"


def _norm(text: str) -> str:
    return re.sub(r"[\s?!.,;:«»\"']+", " ", text.casefold()).strip()


@functools.cache
def yaml_examples() -> frozenset[str]:
    """Every ``routing.examples`` item of the built-in domain YAMLs, normalised
    (case-folded, punctuation and repeated spaces removed)."""
    found: set[str] = set()
    for path in sorted(BUILTIN_DOMAINS_DIR.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for example in (spec.get("routing") or {}).get("examples") or ():
            found.add(_norm(str(example)))
    return frozenset(found)


def is_yaml_example(query: str) -> bool:
    """True when ``query`` is, up to case and punctuation, a domain YAML example."""
    return _norm(query) in yaml_examples()


def lang_for(i: int) -> str:
    """Alternate languages: even positions English, odd positions Russian."""
    return "ru" if i % 2 else "en"


def make_case(case_id: str, query: str, lang: str, tags: list[str],
              expected: dict[str, Any]) -> dict[str, Any]:
    """A case in the eval contract's schema: ``{id, query, lang, tags, expected}``."""
    return {"id": case_id, "query": query, "lang": lang, "tags": tags, "expected": expected}
