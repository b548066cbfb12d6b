"""The near-hit rule every answer cache shares (``cache.base.best_near_match``): the best
passing entry, per-domain thresholds, other dimensions skipped; checked against the plain
loop it replaced on random rows."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_os.cache.base import best_near_match


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def row(domain: str, vec: np.ndarray, payload: object) -> tuple[str, bytes, object]:
    return domain, vec.astype("<f4").tobytes(), payload


def reference(rows, q, thresholds):  # noqa: ANN001, ANN201 - the per-row loop, the rule's definition
    best = None
    for domain, blob, payload in rows:
        vec = np.frombuffer(blob, dtype="<f4")
        if vec.shape != q.shape:
            continue
        sim = float(vec @ q)
        if sim >= thresholds.get(domain, 1.01) and (best is None or sim > best[1]):
            best = (payload, sim)
    return best


def test_the_most_similar_passing_entry_wins_and_its_payload_comes_back() -> None:
    q = unit(1, 0.1, 0)
    rows = [row("digest", unit(1, 0.5, 0), "far"), row("digest", unit(1, 0.12, 0), "close"),
            row("trend", unit(1, 0.1, 0), "same but no threshold")]
    payload, sim = best_near_match(rows, q, {"digest": 0.9})
    assert payload == "close" and sim == pytest.approx(float(unit(1, 0.12, 0) @ q), abs=1e-6)
    # the trend entry is identical to q, but a domain without a threshold never matches
    assert best_near_match(rows, q, {"trend": 0.999})[0] == "same but no threshold"
    assert best_near_match(rows, q, {"digest": 0.99999}) is None


def test_each_entry_is_held_to_its_own_domains_threshold() -> None:
    q = unit(1, 0, 0)
    rows = [row("strict", unit(1, 0.05, 0), "strict"), row("loose", unit(1, 0.3, 0), "loose")]
    # strict is more similar but fails its own (higher) threshold; loose passes its lower one
    assert best_near_match(rows, q, {"strict": 0.9999, "loose": 0.9})[0] == "loose"
    assert best_near_match(rows, q, {"strict": 0.99, "loose": 0.9})[0] == "strict"


def test_equal_similarities_give_the_first_row_and_other_dimensions_are_skipped() -> None:
    q = unit(1, 0, 0)
    rows = [row("digest", unit(1, 0, 0, 0), "4 dims"), row("digest", unit(0, 1, 0), "orthogonal"),
            row("digest", unit(1, 0, 0), "first"), row("digest", unit(1, 0, 0), "second"),
            ("digest", b"\x00\x00\x80", "torn blob")]
    assert best_near_match(rows, q, {"digest": 0.5})[0] == "first"
    assert best_near_match([rows[0], rows[4]], q, {"digest": 0.0}) is None
    assert best_near_match([], q, {"digest": 0.0}) is None


@pytest.mark.parametrize("seed", range(20))
def test_same_choice_as_the_per_row_loop_on_random_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = unit(*rng.standard_normal(16))
    rows = []
    for i in range(int(rng.integers(1, 60))):
        v = q + rng.normal(scale=rng.uniform(0.05, 1.0), size=16).astype(np.float32)
        rows.append(row(str(rng.choice(["digest", "trend", "other"])), unit(*v), i))
    thresholds = {"digest": float(rng.uniform(0.5, 1.0)), "trend": float(rng.uniform(0.5, 1.0))}
    got, want = best_near_match(rows, q, thresholds), reference(rows, q, thresholds)
    assert (got is None) == (want is None)
    if got is not None:
        assert got[0] == want[0] and got[1] == pytest.approx(want[1], abs=1e-6)
