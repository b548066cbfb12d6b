"""Answer-cache metrics over (first, second) query pairs.

A *trap* pair must not share an answer (negation, a swapped version, number, date or
package, a changed scope): serving ``second`` from the cache is a false hit. A
*paraphrase* pair asks the same thing in other words: serving it is the point.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["false_hit_rate", "paraphrase_hit_rate"]


def _rate(kinds: Sequence[str], hits: Sequence[bool], kind: str) -> float | None:
    if len(kinds) != len(hits):
        raise ValueError(f"lengths differ: {len(kinds)} vs {len(hits)}")
    chosen = [h for k, h in zip(kinds, hits, strict=True) if k == kind]
    return sum(chosen) / len(chosen) if chosen else None


def false_hit_rate(kinds: Sequence[str], second_hit: Sequence[bool]) -> float | None:
    """Share of ``"trap"`` pairs whose second query was served from the cache; None if no traps.

    Args:
        kinds: Per pair, ``"trap"`` or ``"paraphrase"``.
        second_hit: Per pair, whether the second query was a cache hit.
    """
    return _rate(kinds, second_hit, "trap")


def paraphrase_hit_rate(kinds: Sequence[str], second_hit: Sequence[bool]) -> float | None:
    """Share of ``"paraphrase"`` pairs whose second query was served from the cache."""
    return _rate(kinds, second_hit, "paraphrase")
