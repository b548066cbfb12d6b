"""The answer cache: exact and near hits, what a near hit must match, and no answer
served after an ingest that changed the corpus (store alone and through the graph)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_os.cache.answers import AnswerCache
from tests.conftest import write_changelog

AS_OF = "2026-11-22"


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def cache(tmp_path: Path):
    c = AnswerCache(tmp_path / "answers.sqlite", ttl_s=3600)
    yield c
    c.close()


def put(cache: AnswerCache, key: str, emb: np.ndarray, *, scope: str = "s", signature: str = "g",
        domain: str = "digest") -> None:
    cache.put(key=key, scope=scope, signature=signature, domain=domain, query=key, embedding=emb,
              result={"answer": key})


def test_exact_hit_and_ttl(cache: AnswerCache) -> None:
    put(cache, "k1", unit(1, 0, 0))
    assert cache.get_exact("k1") == {"answer": "k1"}
    assert cache.get_exact("k2") is None
    cache.ttl_s = -1.0  # everything is now past its TTL
    assert cache.get_exact("k1") is None


def test_near_hit_needs_scope_signature_and_threshold(cache: AnswerCache) -> None:
    put(cache, "a", unit(1, 0, 0))
    put(cache, "b", unit(1, 0.2, 0))
    q = unit(1, 0.1, 0)
    hit = cache.get_near(scope="s", signature="g", embed=lambda: q, thresholds={"digest": 0.99})
    assert hit is not None
    result, sim = hit
    assert result == {"answer": "b"} and sim == pytest.approx(float(unit(1, 0.2, 0) @ q), abs=1e-6)
    assert cache.get_near(scope="s", signature="other", embed=lambda: q, thresholds={"digest": 0.0}) is None
    assert cache.get_near(scope="t", signature="g", embed=lambda: q, thresholds={"digest": 0.0}) is None
    assert cache.get_near(scope="s", signature="g", embed=lambda: q, thresholds={"digest": 0.9999}) is None
    # An entry of a domain without a threshold is never a near hit.
    assert cache.get_near(scope="s", signature="g", embed=lambda: q, thresholds={"trend": 0.0}) is None


def test_a_miss_without_candidates_embeds_nothing(cache: AnswerCache) -> None:
    put(cache, "a", unit(1, 0, 0))

    def embed() -> np.ndarray:
        raise AssertionError("embedded although no entry shares scope and signature")

    assert cache.get_near(scope="s", signature="nope", embed=embed, thresholds={"digest": 0.0}) is None


def test_entries_of_another_dimension_are_skipped(cache: AnswerCache) -> None:
    put(cache, "a", unit(1, 0, 0, 0))
    assert cache.get_near(scope="s", signature="g", embed=lambda: unit(1, 0, 0), thresholds={"digest": 0.0}) is None


def test_a_winner_purged_while_the_question_was_embedded_is_a_miss(cache: AnswerCache) -> None:
    put(cache, "a", unit(1, 0, 0))

    def embed_while_another_write_purges() -> np.ndarray:
        cache.max_entries = 1
        put(cache, "b", unit(0, 1, 0), signature="other")  # trims "a", the only candidate
        return unit(1, 0, 0)

    assert cache.get_near(scope="s", signature="g", embed=embed_while_another_write_purges,
                          thresholds={"digest": 0.5}) is None
    assert cache.counts["answer_near"] == [0, 1]


# ------------------------------------------------------------------ through the graph


def test_paraphrase_is_a_near_hit(kos_factory) -> None:
    kos = kos_factory()
    first = kos.run("What changed in openssl since March?", as_of=AS_OF)
    # Same words in another order: the fake embedder (bag of words) gives cosine 1.0, the
    # exact key differs, the signature is the same.
    again = kos.run("Since March, what changed in openssl?", as_of=AS_OF)
    assert again.manifest["cache"]["hit"] is True
    assert again.manifest["cache"]["kind"] == "near"
    assert again.usage.llm_calls == 0
    assert again.answer == first.answer


def test_a_paraphrase_asked_again_is_an_exact_hit_without_an_embedding(kos_factory, monkeypatch) -> None:
    kos = kos_factory()
    first = kos.run("What changed in openssl since March?", as_of=AS_OF)
    near = kos.run("Since March, what changed in openssl?", as_of=AS_OF)
    assert near.manifest["cache"]["kind"] == "near"
    kos.services.embedding_cache.clear()

    def refuse(text: str) -> np.ndarray:
        raise AssertionError(f"embedded {text!r} although it was served before")

    monkeypatch.setattr(kos.services.embedder, "embed_query", refuse)
    again = kos.run("Since March, what changed in openssl?", as_of=AS_OF)
    cache = again.manifest["cache"]
    assert cache["kind"] == "exact" and cache["similarity"] == near.manifest["cache"]["similarity"]
    assert cache["source_run_id"] == first.run_id and again.answer == first.answer
    assert again.usage.llm_calls == 0


@pytest.mark.parametrize(
    "second",
    [
        "Since March, what did not change in openssl?",  # negation
        "Since April, what changed in openssl?",  # period
        "Since March, what changed in curl?",  # package
        "Since March, what security fixes changed in openssl?",  # scope
        "Since March 2025, what changed in openssl?",  # number / period
        "С марта, что изменилось в openssl?",  # language
    ],
)
def test_a_different_question_is_never_a_near_hit(kos_factory, second: str) -> None:
    kos = kos_factory()
    for name in ("digest", "trend"):
        spec = kos.services.domains.get(name)
        # Threshold 0: only the signature stands between the two questions.
        kos.services.domains._specs[name] = spec.model_copy(
            update={"cache": spec.cache.model_copy(update={"near_hit_threshold": 0.0})}
        )
    kos.run("What changed in openssl since March?", as_of=AS_OF)
    r = kos.run(second, as_of=AS_OF)
    assert r.manifest["cache"]["hit"] is False, r.manifest["cache"]
    assert r.usage.llm_calls >= 1  # answered afresh


def test_no_answer_is_served_after_an_ingest_that_changed_the_corpus(kos_factory, tmp_path: Path) -> None:
    kos = kos_factory()
    q = "What changed in openssl since March?"
    first = kos.run(q, as_of=AS_OF)
    assert kos.run(q, as_of=AS_OF).manifest["cache"]["kind"] == "exact"
    generation = kos.services.docstore.generation()

    # An ingest that changes nothing keeps the corpus generation and the cached answer.
    report = kos.ingest([tmp_path / "doc"])
    assert report.new == 0 and report.updated == 0
    assert kos.services.docstore.generation() == generation
    assert kos.run(q, as_of=AS_OF).manifest["cache"]["hit"] is True

    # A new openssl upload since March: the old answer must not be served (neither as an
    # exact nor as a near hit), and the new answer cites the new upload.
    extra = tmp_path / "more"
    write_changelog(extra, "openssl", [
        ("3.0.19-1~deb12u3", "bookworm-security", "high", "Sebastian Andrzej Siewior <sebastian@breakpoint.cc>",
         "Mon, 02 Nov 2026 10:00:00 +0100", ["CVE-2026-31790 (\"Heap overflow in the PEM reader\")"]),
    ])
    report = kos.ingest([extra])
    assert report.new == 1
    # Bumped after the text stage and again once the vectors are in (retrieval/ingest.py).
    assert kos.services.docstore.generation() == generation + 2
    after = kos.run(q, as_of=AS_OF)
    assert after.manifest["cache"]["hit"] is False
    assert after.usage.llm_calls >= 1  # answered afresh
    assert "deb:openssl:3.0.19-1~deb12u3" in [c.id for c in after.citations]
    assert after.run_id != first.run_id
    paraphrase = kos.run("Since March, what changed in openssl?", as_of=AS_OF)
    assert paraphrase.manifest["cache"].get("source_run_id") == after.run_id  # the new answer only


async def test_an_answer_made_during_an_ingest_is_filed_under_the_corpus_it_read(kos_factory, tmp_path: Path) -> None:
    # The corpus changes between cache_lookup and cache_store of one run: that run's
    # answer belongs to the old corpus and must not be served after the ingest.
    kos = kos_factory()
    q = "What changed in openssl since March?"
    extra = tmp_path / "more"
    write_changelog(extra, "openssl", [
        ("3.0.19-1~deb12u3", "bookworm-security", "high", "Sebastian Andrzej Siewior <sebastian@breakpoint.cc>",
         "Mon, 02 Nov 2026 10:00:00 +0100", ["CVE-2026-31790 (\"Heap overflow in the PEM reader\")"]),
    ])
    nodes = []
    async for node, _update in kos.astream(q, as_of=AS_OF):
        nodes.append(node)
        if node == "cache_lookup":
            assert kos.ingest([extra]).new == 1
    assert "cache_store" in nodes
    after = await kos.arun(q, as_of=AS_OF)
    assert after.manifest["cache"]["hit"] is False
    assert "deb:openssl:3.0.19-1~deb12u3" in [c.id for c in after.citations]


def test_an_answer_of_one_answer_mode_is_not_served_in_another(kos_factory) -> None:
    structured = kos_factory(llm={"answer_mode": "structured"})
    first = structured.run("What changed in openssl since March?", as_of=AS_OF)
    assert structured.run("What changed in openssl since March?", as_of=AS_OF).manifest["cache"]["hit"] is True
    prose = kos_factory(llm={"answer_mode": "prose"})  # same KOS_HOME, same corpus generation
    other = prose.run("What changed in openssl since March?", as_of=AS_OF)
    assert other.manifest["cache"]["hit"] is False
    assert first.manifest["cache"]["hit"] is False


def test_an_answer_of_one_qos_level_is_not_served_to_another(kos_factory) -> None:
    kos = kos_factory()
    q = "What changed in openssl since March?"
    quick = kos.run(q, as_of=AS_OF, qos="interactive")
    assert quick.manifest["cache"]["hit"] is False and quick.manifest["route"]["qos"] == "interactive"
    assert kos.run(q, as_of=AS_OF, qos="interactive").manifest["cache"]["hit"] is True
    thorough = kos.run(q, as_of=AS_OF, qos="thorough")  # more budget asked: not the cheaper answer
    assert thorough.manifest["cache"]["hit"] is False and thorough.manifest["route"]["qos"] == "thorough"
    assert kos.run(q, as_of=AS_OF, qos="thorough").manifest["cache"]["hit"] is True
    assert kos.run(q, as_of=AS_OF).manifest["cache"]["hit"] is False  # the router's pick is its own entry
