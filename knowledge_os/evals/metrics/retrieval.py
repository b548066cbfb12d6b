"""Retrieval metrics over ranked document ids: recall@k, nDCG@k, MRR.

Pure functions. nDCG uses the exponential gain ``2**rel - 1`` and a ``log2(rank + 1)``
discount (Järvelin & Kekäläinen 2002, the form used by TREC and BEIR); relevance
defaults to 1 for every relevant id.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

__all__ = ["mrr", "ndcg_at_k", "recall_at_k", "reciprocal_rank"]


def recall_at_k(retrieved: Sequence[str], relevant: Collection[str], k: int) -> float | None:
    """Share of the relevant ids found among the first ``k`` retrieved; None if none is relevant.

    Args:
        retrieved: Ranked ids, best first (duplicates count once).
        relevant: The ids that should be found.
        k: Cut-off, >= 1.
    """
    _check_k(k)
    rel = set(relevant)
    if not rel:
        return None
    top = set(list(dict.fromkeys(retrieved))[:k])
    return len(top & rel) / len(rel)


def reciprocal_rank(retrieved: Sequence[str], relevant: Collection[str]) -> float | None:
    """1 / rank of the first relevant id (1-based); 0.0 if none found; None if none is relevant."""
    rel = set(relevant)
    if not rel:
        return None
    for rank, doc_id in enumerate(dict.fromkeys(retrieved), start=1):
        if doc_id in rel:
            return 1.0 / rank
    return 0.0


def mrr(rankings: Sequence[tuple[Sequence[str], Collection[str]]]) -> float | None:
    """Mean reciprocal rank over ``(retrieved, relevant)`` pairs that have relevant ids."""
    values = [v for v in (reciprocal_rank(r, rel) for r, rel in rankings) if v is not None]
    return sum(values) / len(values) if values else None


def ndcg_at_k(retrieved: Sequence[str], relevance: Mapping[str, float] | Collection[str], k: int) -> float | None:
    """Normalised discounted cumulative gain of the first ``k`` ids; None if none is relevant.

    Args:
        retrieved: Ranked ids, best first (duplicates count once).
        relevance: ``{id: grade}`` (grade > 0 is relevant) or a collection of relevant ids (grade 1).
        k: Cut-off, >= 1.

    Returns:
        DCG / ideal DCG, in [0, 1].
    """
    _check_k(k)
    grades = dict(relevance) if isinstance(relevance, Mapping) else dict.fromkeys(relevance, 1.0)
    grades = {i: float(g) for i, g in grades.items() if g > 0}
    if not grades:
        return None
    dcg = sum((2 ** grades.get(doc_id, 0.0) - 1) / math.log2(rank + 1)
              for rank, doc_id in enumerate(list(dict.fromkeys(retrieved))[:k], start=1))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum((2 ** g - 1) / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
