"""The semantic answer cache, checked before any retrieval or LLM call.

An exact hit is a stored entry with the same key (``answer`` namespace: prompt version,
models, domain override, persona, query, as-of day). A near hit is an entry of the same
scope whose query embedding has cosine similarity >= the answering domain's
``cache.near_hit_threshold`` AND whose query names the same ids, packages and dates
(``signature``): "openssl since March" never answers "curl since March".
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from knowledge_os._sqlite import open_sqlite

__all__ = ["AnswerCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answer_cache (
    key TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    signature TEXT NOT NULL,
    domain TEXT NOT NULL,
    query TEXT NOT NULL,
    embedding BLOB NOT NULL,
    result TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answer_cache_scope ON answer_cache(scope, signature);
"""


class AnswerCache:
    """Answers keyed exactly and by query embedding, in SQLite.

    Args:
        path: SQLite file.
        ttl_s: Entries older than this are ignored (and purged on write).
    """

    def __init__(self, path: Path | str, *, ttl_s: float) -> None:
        self._db = open_sqlite(path, schema=_SCHEMA, what="answer cache")
        self._lock = threading.Lock()
        self.ttl_s = ttl_s

    def get_exact(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT result FROM answer_cache WHERE key = ? AND created_at >= ?",
                (key, time.time() - self.ttl_s),
            ).fetchone()
        return orjson.loads(row[0]) if row else None

    def get_near(
        self, *, scope: str, signature: str, embedding: np.ndarray, thresholds: dict[str, float]
    ) -> tuple[dict[str, Any], float] | None:
        """Best entry of this scope and signature whose similarity passes its domain's
        threshold; returns (result, similarity) or None."""
        with self._lock:
            rows = self._db.execute(
                "SELECT domain, embedding, result FROM answer_cache "
                "WHERE scope = ? AND signature = ? AND created_at >= ?",
                (scope, signature, time.time() - self.ttl_s),
            ).fetchall()
        best: tuple[dict[str, Any], float] | None = None
        q = embedding.astype(np.float32)
        for domain, blob, result in rows:
            sim = float(np.frombuffer(blob, dtype=np.float32) @ q)
            if sim >= thresholds.get(domain, 1.01) and (best is None or sim > best[1]):
                best = (orjson.loads(result), sim)
        return best

    def put(
        self, *, key: str, scope: str, signature: str, domain: str, query: str,
        embedding: np.ndarray, result: dict[str, Any],
    ) -> None:
        now = time.time()
        with self._lock:
            self._db.execute("DELETE FROM answer_cache WHERE created_at < ?", (now - self.ttl_s,))
            self._db.execute(
                "INSERT OR REPLACE INTO answer_cache VALUES (?,?,?,?,?,?,?,?)",
                (key, scope, signature, domain, query,
                 embedding.astype(np.float32).tobytes(), orjson.dumps(result).decode(), now),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
