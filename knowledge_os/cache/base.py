"""The answer cache's protocol: what ``cache_lookup`` and ``cache_store`` call.

Implementations: :class:`~knowledge_os.cache.answers.AnswerCache` (SQLite, the embedded
default) and :class:`~knowledge_os.cache.answers_pg.PostgresAnswerCache` (shared by every
host); ``tests/integration/test_answer_cache_conformance.py`` runs both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import orjson

__all__ = ["AnswerStore", "alias_result", "best_near_match"]

T = TypeVar("T")


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
        self, *, scope: str, signature: str, embed: Callable[[], np.ndarray], thresholds: dict[str, float],
        alias: tuple[str, str] | None = None,
    ) -> tuple[dict[str, Any], float] | None:
        """The most similar entry of this scope and signature passing its domain's
        threshold, as ``(result, cosine similarity)``; ``embed`` is called only when an
        entry of this scope and signature exists.

        ``alias``: ``(key, question)`` of the new question. On a hit the winner is also
        filed under ``key`` (a copy: same scope, signature, domain, embedding and age;
        ``question`` as its query; its result with ``near_similarity`` added), so the same
        question asked again is an exact hit instead of another query embedding, and later
        near lookups compare with the same embeddings as before. The copy counts against
        ``max_entries`` from the next put on at the latest."""

    def put(
        self, *, key: str, scope: str, signature: str, domain: str, query: str,
        embedding: np.ndarray, result: dict[str, Any],
    ) -> None:
        """Store (or replace) an answer; purges entries past the TTL, keeps ``max_entries``."""

    def close(self) -> None:
        """Release the connection(s)."""


def best_near_match(
    rows: Sequence[tuple[str, bytes, T]], q: np.ndarray, thresholds: dict[str, float],
) -> tuple[T, float] | None:
    """The most similar cached entry that passes its domain's threshold: one rule for
    every :class:`AnswerStore`.

    The similarities are one matrix-vector product over the rows: 0.1 ms CPU for 1,000
    rows of 384 dims, where a Python loop over them took 1.6 ms (measured 2026-12-01; the
    whole near lookup on a large cache: ``benchmarks/bench_cache_hit.py --scan``).

    Args:
        rows: ``(domain, embedding as little-endian float32 bytes, payload)`` of the
            entries of one scope and signature; the payload (the result JSON, or the key to
            fetch it by) is returned as is.
        q: The new question's query embedding, float32 of shape (dim,), L2-normalised.
        thresholds: Domain name -> minimum cosine similarity (0..1); an entry of a
            domain not listed never matches.

    Returns:
        ``(payload, similarity)`` of the most similar passing entry (the first of equals),
        or None. An entry of another dimension (written by another embedder) is not
        comparable and is skipped.
    """
    width = q.shape[0] * 4  # bytes of one comparable embedding
    kept = [(domain, blob, payload) for domain, blob, payload in rows
            if len(blob) == width and domain in thresholds]
    if not kept or q.ndim != 1:
        return None
    matrix = np.frombuffer(b"".join(blob for _, blob, _ in kept), dtype="<f4").reshape(len(kept), -1)
    sims = matrix @ q.astype("<f4", copy=False)
    floor = np.fromiter((thresholds[domain] for domain, _, _ in kept), dtype=np.float64, count=len(kept))
    passing = np.flatnonzero(sims >= floor)
    if passing.size == 0:
        return None
    best = int(passing[np.argmax(sims[passing])])
    return kept[best][2], float(sims[best])


def alias_result(result: dict[str, Any], similarity: float) -> str:
    """The result JSON an alias entry stores: the winner's result with
    ``near_similarity`` (the cosine similarity of the near hit, 4 decimals) added, so an
    exact hit on the alias still says how close the question that was answered is."""
    return orjson.dumps({**result, "near_similarity": round(similarity, 4)}).decode()
