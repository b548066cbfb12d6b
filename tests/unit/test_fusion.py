"""Weighted RRF as a pure function: table tests against hand-computed scores."""

from __future__ import annotations

import pytest

from knowledge_os.retrieval.fusion import RRF_K, WEIGHTS, Fused, rrf_fuse


def test_scores_are_weighted_reciprocal_ranks() -> None:
    fused = rrf_fuse({"vector": ["a", "b"], "lexical": ["b", "c"]})
    assert fused == [
        Fused(id="b", score=pytest.approx(1 / 62 + 1 / 61), found_by=("vector", "lexical")),
        Fused(id="a", score=pytest.approx(1 / 61), found_by=("vector",)),
        Fused(id="c", score=pytest.approx(1 / 62), found_by=("lexical",)),
    ]


@pytest.mark.parametrize(
    ("lists", "expected_order"),
    [
        # an exact match at rank 1 (3/61) beats top vector + lexical ranks (2/61)
        ({"exact": ["x"], "vector": ["y"], "lexical": ["y"]}, ["x", "y"]),
        # the graph list weighs half: its rank 1 (0.5/61) loses to vector rank 2 (1/62)
        ({"graph": ["g"], "vector": ["v1", "v2"]}, ["v1", "v2", "g"]),
        # equal scores: by id
        ({"vector": ["b"], "lexical": ["a"]}, ["a", "b"]),
        # a repeat inside one list counts once, at its first rank
        ({"vector": ["a", "b", "a", "a"]}, ["a", "b"]),
        ({}, []),
    ],
)
def test_order_table(lists: dict, expected_order: list[str]) -> None:
    assert [f.id for f in rrf_fuse(lists)] == expected_order


def test_repeat_in_one_list_adds_nothing() -> None:
    (once,) = rrf_fuse({"vector": ["a"]})
    (again, _) = rrf_fuse({"vector": ["a", "b", "a"]})
    assert again.score == once.score == pytest.approx(1 / (RRF_K + 1))
    assert again.found_by == ("vector",)


def test_limit_weights_and_k() -> None:
    assert [f.id for f in rrf_fuse({"vector": list("abcdef")}, limit=3)] == ["a", "b", "c"]
    (top,) = rrf_fuse({"mine": ["z"]}, weights={"mine": 2.0}, k=1)
    assert top.score == pytest.approx(2.0 / 2)
    assert WEIGHTS["exact"] > WEIGHTS["vector"] == WEIGHTS["lexical"] > WEIGHTS["graph"]


def test_bad_arguments() -> None:
    with pytest.raises(KeyError):
        rrf_fuse({"nameless": ["a"]})
    with pytest.raises(ValueError, match="k must be"):
        rrf_fuse({"vector": ["a"]}, k=0)
    with pytest.raises(ValueError, match="weight"):
        rrf_fuse({"vector": ["a"]}, weights={"vector": 0.0})
