"""The answer cache's protocol: what ``cache_lookup`` and ``cache_store`` call.

Implementations: :class:`~knowledge_os.cache.answers.AnswerCache` (SQLite, the embedded
default) and :class:`~knowledge_os.cache.answers_pg.PostgresAnswerCache` (shared by every
host); ``tests/integration/test_answer_cache_conformance.py`` runs both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["AnswerStore", "best_near_match"]


@runtime_checkable
class AnswerStore(Protocol):
    """Answers keyed exactly and by query embedding, bounded by a TTL and a row count.

    Attributes:
        ttl_s: Entries older than this many seconds are ignored (and purged on write).
        max_entries: Most rows kept; each write beyond it deletes the oldest. None: no bound.
        counts: Lookups by outcome, ``{"answer_exact": [hits, misses], "answer_near": [...]}``.
    """

    ttl_s: float
    max_entries: int | None
    counts: dict[str, list[int]]

    def get_exact(self, key: str) -> dict[str, Any] | None:
        """The result stored under ``key`` within the TTL, or None."""

    def get_near(
        self, *, scope: str, signature: str, embed: Callable[[], np.ndarray], thresholds: dict[str, float]
    ) -> tuple[dict[str, Any], float] | None:
        """The most similar entry of this scope and signature passing its domain's
        threshold, as ``(result, cosine similarity)``; ``embed`` is called only when an
        entry of this scope and signature exists."""

    def put(
        self, *, key: str, scope: str, signature: str, domain: str, query: str,
        embedding: np.ndarray, result: dict[str, Any],
    ) -> None:
        """Store (or replace) an answer; purges entries past the TTL, keeps ``max_entries``."""

    def close(self) -> None:
        """Release the connection(s)."""


def best_near_match(
    rows: list[tuple[str, bytes, str]], q: np.ndarray, thresholds: dict[str, float],
) -> tuple[str, float] | None:
    """The most similar cached entry that passes its domain's threshold: one rule for
    every :class:`AnswerStore`.

    Args:
        rows: ``(domain, embedding as little-endian float32 bytes, result JSON)`` of the
            entries of one scope and signature.
        q: The new question's query embedding, float32 of shape (dim,), L2-normalised.
        thresholds: Domain name -> minimum cosine similarity (0..1); an entry of a
            domain not listed never matches.

    Returns:
        ``(result JSON, similarity)`` or None. An entry of another dimension (written by
        another embedder) is not comparable and is skipped.
    """
    best: tuple[str, float] | None = None
    for domain, blob, result in rows:
        vec = np.frombuffer(blob, dtype="<f4")
        if vec.shape != q.shape:
            continue
        sim = float(vec @ q)
        if sim >= thresholds.get(domain, 1.01) and (best is None or sim > best[1]):
            best = (result, sim)
    return best
