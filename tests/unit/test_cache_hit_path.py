"""The answer-cache hit path does only what a hit needs, and still all of that."""

from __future__ import annotations

import sqlite3

from knowledge_os.nodes import cache_lookup as cache_lookup_module

AS_OF = "2026-11-22"
QUESTION = "What changed in openssl since March?"


def test_an_exact_hit_skips_the_signature_and_still_checkpoints_and_counts(kos_factory, monkeypatch):
    kos = kos_factory()
    miss = kos.run(QUESTION, as_of=AS_OF)
    assert miss.manifest["cache"]["signature"]  # a miss computes it: cache_store files the answer under it
    original = cache_lookup_module.analysis_signature

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("an exact hit computed the question signature")

    monkeypatch.setattr(cache_lookup_module, "analysis_signature", refuse)
    hit = kos.run(QUESTION, as_of=AS_OF)
    assert hit.manifest["cache"]["kind"] == "exact" and "signature" not in hit.manifest["cache"]
    assert hit.answer == miss.answer and hit.manifest["run_id"] == hit.run_id
    with sqlite3.connect(kos.settings.checkpoint_path) as conn:  # committed before run() returned
        assert conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?",
                            (hit.thread_id,)).fetchone()[0] >= 3
    assert 'kos_cache_hits_total{cache="answer_exact"} 1.0' in kos.metrics_text()
    monkeypatch.setattr(cache_lookup_module, "analysis_signature", original)
    near = kos.run("Since March, what has changed in openssl?", as_of=AS_OF)  # not the same key
    assert near.manifest["cache"].get("signature")  # a lookup past the exact key computes it
