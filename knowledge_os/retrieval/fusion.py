"""Weighted Reciprocal Rank Fusion of ranked id lists, as a pure function.

RRF (Cormack, Clarke and Buettcher, "Reciprocal Rank Fusion outperforms Condorcet and
individual Rank Learning Methods", SIGIR 2009) scores a document by the sum over lists of
``1 / (k + rank)``, rank counted from 1, with ``k = 60`` as in the paper. Each list here
carries a weight (:data:`WEIGHTS`): an exact id match (a named CVE or bug) weighs most,
so the upload that fixed it comes first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["RRF_K", "WEIGHTS", "Fused", "rrf_fuse"]

#: The RRF constant ``k`` (Cormack et al. 2009).
RRF_K = 60
#: Weight of each retriever's list in the fusion.
WEIGHTS: dict[str, float] = {"exact": 3.0, "vector": 1.0, "lexical": 1.0, "graph": 0.5}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fused:
    """One fused result: the id, its score and the lists that ranked it, in list order."""

    id: str
    score: float
    found_by: tuple[str, ...]


def rrf_fuse(
    lists: Mapping[str, Sequence[str]],
    *,
    weights: Mapping[str, float] = WEIGHTS,
    k: int = RRF_K,
    limit: int | None = None,
) -> list[Fused]:
    """Fuse ranked lists of ids by weighted RRF.

    Args:
        lists: List name -> ids, best first. An id repeated within one list counts once,
            at its first rank.
        weights: List name -> weight (> 0); every name in ``lists`` must have one.
        k: The RRF constant, >= 1.
        limit: Keep at most this many results; None keeps all.

    Returns:
        Results ordered by score descending, then id ascending (deterministic ties);
        ``score = sum(weights[name] / (k + rank))`` over the lists holding the id,
        rank from 1.

    Raises:
        KeyError: a list has no weight.
        ValueError: ``k`` < 1 or a weight <= 0.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores: dict[str, float] = {}
    found_by: dict[str, list[str]] = {}
    for name, ranked in lists.items():
        weight = weights[name]
        if weight <= 0:
            raise ValueError(f"weight of list {name!r} must be > 0, got {weight}")
        for rank, doc_id in enumerate(dict.fromkeys(ranked), start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
            found_by.setdefault(doc_id, []).append(name)
    order = sorted(scores, key=lambda i: (-scores[i], i))
    if limit is not None:
        order = order[:limit]
    return [Fused(id=i, score=scores[i], found_by=tuple(found_by[i])) for i in order]
