"""Versioned cache-key schema. Every cache in Knowledge OS builds its keys here.

A key is ``"<namespace>:v<schema>:<md5>"`` where the MD5 comes from
:func:`knowledge_os.cache.normalizer.normalize_and_hash` over the key's parts, each
tagged with its field name so that ``("a b", "c")`` and ``("a", "b c")`` never collide.
Bump :data:`KEY_SCHEMA_VERSION` when the layout changes; bump a namespace's version
(model, prompt) to invalidate that cache alone.

Namespaces and their parts:

==============  ================================================================
``router``      prompt version, query, domain override
``answer``      prompt version, llm model, embedder, domain, persona, query, as-of day
``embedding``   embedder name and dimension, text (passage/query role)
``retrieval``   embedder, domain, query, filters, limits
``node``        LangGraph node name, its input (``CachePolicy(key_func=...)``)
``ingest``      document id, text and metadata (content hash for de-duplication)
==============  ================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
import uuid
from typing import Any

import orjson

from knowledge_os.cache.normalizer import normalize_and_hash

__all__ = ["KEY_SCHEMA_VERSION", "NAMESPACES", "cache_key", "content_hash", "execute_node_key", "stable_json"]

KEY_SCHEMA_VERSION = 1
NAMESPACES = frozenset({"router", "answer", "embedding", "retrieval", "node", "ingest"})


def stable_json(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) for hashing structured parts."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def cache_key(namespace: str, parts: Mapping[str, Any]) -> str:
    """Build a cache key.

    Args:
        namespace: One of :data:`NAMESPACES`.
        parts: Named key parts; strings are used as they are (the normaliser folds case
            and whitespace), anything else as canonical JSON.

    Returns:
        ``"<namespace>:v<KEY_SCHEMA_VERSION>:<32 hex chars>"``.

    Raises:
        ValueError: ``namespace`` is not a known namespace.
    """
    if namespace not in NAMESPACES:
        raise ValueError(f"unknown cache namespace {namespace!r}; allowed: {sorted(NAMESPACES)}")
    text = "\x1f".join(
        f"{name}={value if isinstance(value, str) else stable_json(value)}"
        for name, value in sorted(parts.items())
    )
    return f"{namespace}:v{KEY_SCHEMA_VERSION}:{normalize_and_hash(text)}"


def content_hash(text: str, metadata: Mapping[str, Any]) -> str:
    """Ingest de-duplication hash of a document's text and metadata (32 hex chars).

    Case and whitespace are folded (the normaliser's rule), so re-wrapped text counts as
    unchanged.
    """
    return normalize_and_hash(text + "\x1f" + stable_json(dict(metadata)))


def execute_node_key(state: Mapping[str, Any]) -> str:
    """LangGraph ``CachePolicy.key_func`` of the ``execute`` node: everything its output
    depends on (query, domain, path, plan, query analysis, the answer scope of prompt,
    models, persona and day, and the corpus generation). With the cache off every call
    gets a fresh key, so nothing is ever replayed (not even within one run's replans)."""
    if not state.get("use_cache", True):
        return f"node:v{KEY_SCHEMA_VERSION}:nocache:{uuid.uuid4()}"  # never equal, so never a hit
    plan = state.get("plan") or {}
    return cache_key(
        "node",
        {
            "node": "execute",
            "query": state.get("query", ""),
            "domain": state.get("domain"),
            "path": state.get("path"),
            "plan": [plan.get("steps"), plan.get("scope"), plan.get("args")],
            # a replan's execute carries the earlier best draft (nodes/execute.py: carried_draft)
            "earlier": [c.get("answer") for c in state.get("candidates") or []] if plan.get("attempt") else None,
            "analysis": state.get("analysis"),
            "scope": state.get("scope"),
            "corpus": state.get("corpus"),
        },
    )
