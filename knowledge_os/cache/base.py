"""The answer cache's protocol: what ``cache_lookup`` and ``cache_store`` call.

Implementations: :class:`~knowledge_os.cache.answers.AnswerCache` (SQLite, the embedded
default) and :class:`~knowledge_os.cache.answers_pg.PostgresAnswerCache` (shared by every
host); ``tests/integration/test_answer_cache_conformance.py`` runs both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["AnswerStore"]


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
