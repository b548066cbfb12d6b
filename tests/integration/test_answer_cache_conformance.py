"""One conformance suite for every answer cache (the AnswerStore protocol).

Parametrized over SQLite (a temp file) and PostgreSQL (``KOS_TEST_POSTGRES_DSN``,
database ``<name>_docs`` of its own, the table emptied before each test; skipped when
unset, failing under ``CI``): exact and near hits, what a near hit must match, the TTL
and the row bound.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from knowledge_os.cache.base import AnswerStore
from knowledge_os.cache.factory import make_answer_cache
from knowledge_os.errors import UnknownNameError
from knowledge_os.settings import Settings
from tests.integration.pgdb import empty_tables, own_database

pytestmark = pytest.mark.integration


def cache_settings(backend: str, home: Path, **cache: object) -> Settings:
    if backend == "sqlite":
        return Settings(home=home, cache=cache)
    dsn = own_database("docs")
    empty_tables(dsn)
    return Settings(home=home, storage={"answer_cache": "postgres"}, postgres={"dsn": dsn}, cache=cache)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def cache(backend: str, tmp_path: Path) -> Iterator[AnswerStore]:
    c = make_answer_cache(cache_settings(backend, tmp_path / "kos", answer_ttl_s=3600))
    yield c
    c.close()


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def put(cache: AnswerStore, key: str, emb: np.ndarray, *, scope: str = "s", signature: str = "g",
        domain: str = "digest", result: dict | None = None) -> None:
    cache.put(key=key, scope=scope, signature=signature, domain=domain, query=key, embedding=emb,
              result=result or {"answer": key})


def test_implements_protocol_and_counts_lookups(cache: AnswerStore) -> None:
    assert isinstance(cache, AnswerStore)
    put(cache, "k", unit(1, 0))
    cache.get_exact("k"), cache.get_exact("nope")
    cache.get_near(scope="s", signature="none", embed=lambda: unit(1, 0), thresholds={"digest": 0.0})
    assert cache.counts == {"answer_exact": [1, 1], "answer_near": [0, 1]}


def test_exact_hit_replays_the_result_and_respects_the_ttl(cache: AnswerStore) -> None:
    result = {"answer": "é ✓", "citations": [{"id": "deb:x:1", "score": 0.5}], "quality": {"score": 1.0}}
    put(cache, "k1", unit(1, 0, 0), result=result)
    assert cache.get_exact("k1") == result and cache.get_exact("k2") is None
    put(cache, "k1", unit(1, 0, 0), result={"answer": "replaced"})
    assert cache.get_exact("k1") == {"answer": "replaced"}
    cache.ttl_s = -1.0  # everything is now past its TTL
    assert cache.get_exact("k1") is None


def test_near_hit_needs_scope_signature_and_threshold(cache: AnswerStore) -> None:
    put(cache, "a", unit(1, 0, 0))
    put(cache, "b", unit(1, 0.2, 0))
    q = unit(1, 0.1, 0)
    result, sim = cache.get_near(scope="s", signature="g", embed=lambda: q, thresholds={"digest": 0.99})
    assert result == {"answer": "b"} and sim == pytest.approx(float(unit(1, 0.2, 0) @ q), abs=1e-6)
    assert cache.get_near(scope="s", signature="other", embed=lambda: q, thresholds={"digest": 0.0}) is None
    assert cache.get_near(scope="t", signature="g", embed=lambda: q, thresholds={"digest": 0.0}) is None
    assert cache.get_near(scope="s", signature="g", embed=lambda: q, thresholds={"digest": 0.9999}) is None
    assert cache.get_near(scope="s", signature="g", embed=lambda: q, thresholds={"trend": 0.0}) is None
    cache.ttl_s = -1.0
    assert cache.get_near(scope="s", signature="g", embed=lambda: q, thresholds={"digest": 0.0}) is None


def test_a_near_miss_without_candidates_embeds_nothing(cache: AnswerStore) -> None:
    put(cache, "a", unit(1, 0, 0))

    def embed() -> np.ndarray:
        raise AssertionError("embedded although no entry shares scope and signature")

    assert cache.get_near(scope="s", signature="nope", embed=embed, thresholds={"digest": 0.0}) is None


def test_entries_of_another_dimension_are_skipped(cache: AnswerStore) -> None:
    put(cache, "a", unit(1, 0, 0, 0))
    assert cache.get_near(scope="s", signature="g", embed=lambda: unit(1, 0, 0), thresholds={"digest": 0.0}) is None


def test_a_near_hit_files_the_winner_under_the_new_questions_key(cache: AnswerStore) -> None:
    put(cache, "a", unit(1, 0, 0), result={"answer": "a", "run_id": "r1"})
    q = unit(1, 0.1, 0)
    result, sim = cache.get_near(scope="s", signature="g", embed=lambda: q, thresholds={"digest": 0.99},
                                 alias=("b", "the paraphrase"))
    assert result == {"answer": "a", "run_id": "r1"}
    # asked again, the paraphrase is an exact hit, and says how close the answered question was
    assert cache.get_exact("b") == {"answer": "a", "run_id": "r1", "near_similarity": round(sim, 4)}
    # the copy has the winner's embedding: a question the winner is too far from is still a miss
    far = unit(1, 0.18, 0)
    assert float(far @ unit(1, 0, 0)) < 0.99 <= float(far @ q)
    assert cache.get_near(scope="s", signature="g", embed=lambda: far, thresholds={"digest": 0.99},
                          alias=("c", "further away")) is None
    assert cache.get_exact("c") is None
    # without an alias nothing is written
    cache.get_near(scope="s", signature="g", embed=lambda: q, thresholds={"digest": 0.99})
    assert cache.counts == {"answer_exact": [1, 1], "answer_near": [2, 1]}


def test_an_alias_expires_with_the_entry_it_copies(cache: AnswerStore) -> None:
    put(cache, "a", unit(1, 0, 0))
    time.sleep(0.3)
    assert cache.get_near(scope="s", signature="g", embed=lambda: unit(1, 0, 0), thresholds={"digest": 0.9},
                          alias=("b", "b"))
    assert cache.get_exact("b") is not None
    cache.ttl_s = 0.2  # "a" is now past its TTL; the alias was made from it, so it is too
    assert cache.get_exact("a") is None and cache.get_exact("b") is None


def test_an_alias_counts_against_max_entries_from_the_next_put_on(backend: str, tmp_path: Path) -> None:
    cache = make_answer_cache(cache_settings(backend, tmp_path / "kos", answer_ttl_s=3600, answer_max_entries=2))
    try:
        put(cache, "a", unit(1, 0))
        assert cache.get_near(scope="s", signature="g", embed=lambda: unit(1, 0), thresholds={"digest": 0.9},
                              alias=("b", "b"))
        put(cache, "c", unit(0, 1), signature="other")
        # the newest two stay: "c", and "b" (a copy of "a" with its age, written after it)
        assert [k for k in "abc" if cache.get_exact(k) is not None] == ["b", "c"]
    finally:
        cache.close()


def test_keeps_at_most_max_entries_rows_the_oldest_out_first(backend: str, tmp_path: Path) -> None:
    cache = make_answer_cache(cache_settings(backend, tmp_path / "kos", answer_ttl_s=3600, answer_max_entries=2))
    try:
        for i in range(3):
            put(cache, f"k{i}", unit(1, 0), result={"answer": str(i)})
        assert cache.get_exact("k0") is None
        assert [cache.get_exact(k)["answer"] for k in ("k1", "k2")] == ["1", "2"]
        put(cache, "k1", unit(1, 0), result={"answer": "1b"})  # a replaced entry counts as new
        put(cache, "k3", unit(1, 0))
        assert cache.get_exact("k2") is None and cache.get_exact("k1") == {"answer": "1b"}
    finally:
        cache.close()


def test_writes_purge_rows_past_the_ttl(backend: str, tmp_path: Path) -> None:
    cache = make_answer_cache(cache_settings(backend, tmp_path / "kos", answer_ttl_s=3600))
    try:
        put(cache, "old", unit(1, 0))
        cache.ttl_s = -1.0
        put(cache, "new", unit(1, 0))  # purges 'old' (and, with ttl -1, itself is expired on read)
        cache.ttl_s = 3600
        assert cache.get_exact("old") is None
    finally:
        cache.close()


def test_an_unknown_backend_is_named() -> None:
    with pytest.raises(Exception) as info:
        make_answer_cache(Settings(storage={"answer_cache": "redis"}))
    assert "redis" in str(info.value) and isinstance(info.value, (UnknownNameError, ValueError))
