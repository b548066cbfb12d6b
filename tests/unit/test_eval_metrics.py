"""The eval metrics as pure functions, against hand-computed values and numpy/scikit-style definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from knowledge_os.evals.metrics import METRICS, compute, correct, resolve
from knowledge_os.evals.metrics.answers import (
    auroc,
    citation_precision,
    citation_recall,
    grounded_claim_rate,
    id_accuracy,
    language_of,
    lead_paragraph,
    names_id,
    token_f1,
)
from knowledge_os.evals.metrics.cache import false_hit_rate, paraphrase_hit_rate
from knowledge_os.evals.metrics.kpi import mean, percentile
from knowledge_os.evals.metrics.retrieval import mrr, ndcg_at_k, recall_at_k, reciprocal_rank
from knowledge_os.evals.metrics.routing import (
    accuracy,
    confusion_matrix,
    expected_calibration_error,
    llm_share,
    macro_f1,
    per_class_precision_recall,
    reliability_bins,
)
from knowledge_os.evals.metrics.trajectory import is_subsequence, path_matches, rule_violations

Y_TRUE = ["digest", "digest", "digest", "trend", "trend"]
Y_PRED = ["digest", "trend", "digest", "trend", "digest"]


def test_accuracy_and_per_class_figures():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(3 / 5)
    table = per_class_precision_recall(Y_TRUE, Y_PRED)
    assert table["digest"]["precision"] == pytest.approx(2 / 3)
    assert table["digest"]["recall"] == pytest.approx(2 / 3)
    assert table["trend"]["precision"] == pytest.approx(1 / 2)
    assert table["trend"]["recall"] == pytest.approx(1 / 2)
    assert table["trend"]["support"] == 2
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_a_label_never_predicted_has_zero_precision_and_counts_in_macro_f1():
    assert per_class_precision_recall(["a", "b"], ["a", "a"])["b"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert macro_f1(["a", "b"], ["a", "a"]) == pytest.approx((2 / 3 + 0) / 2)


def test_confusion_matrix_rows_are_expected_columns_predicted():
    m = confusion_matrix(Y_TRUE, Y_PRED)
    assert m == {"digest": {"digest": 2, "trend": 1}, "trend": {"digest": 1, "trend": 1}}


def test_empty_inputs_are_none_and_mismatched_lengths_raise():
    assert accuracy([], []) is None
    assert macro_f1([], []) is None
    assert expected_calibration_error([], []) is None
    with pytest.raises(ValueError, match="lengths differ"):
        accuracy(["a"], [])


def test_ece_matches_the_binned_definition():
    conf = [0.95, 0.95, 0.55, 0.55, 0.15]
    ok = [True, False, True, True, False]
    # bins: 0.9-1.0 (n=2, acc .5, conf .95), 0.5-0.6 (n=2, acc 1, conf .55), 0.1-0.2 (n=1, acc 0, conf .15)
    expected = 2 / 5 * 0.45 + 2 / 5 * 0.45 + 1 / 5 * 0.15
    assert expected_calibration_error(conf, ok) == pytest.approx(expected)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)


def test_reliability_bins_put_one_in_the_last_bin_and_clip():
    bins = reliability_bins([1.0, 1.7, -0.2], [True, True, False], n_bins=4)
    assert [b["count"] for b in bins] == [1, 0, 0, 2]
    assert bins[3]["confidence"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        reliability_bins([0.5], [True], n_bins=0)


def test_llm_share_counts_llm_and_fallback():
    assert llm_share(["heuristic", "llm", "fallback", "cache"]) == pytest.approx(0.5)
    assert llm_share([]) is None


def test_recall_mrr_and_ndcg():
    retrieved = ["x", "a", "y", "b", "a"]
    assert recall_at_k(retrieved, {"a", "b"}, 2) == pytest.approx(0.5)
    assert recall_at_k(retrieved, {"a", "b"}, 10) == pytest.approx(1.0)
    assert recall_at_k(retrieved, set(), 10) is None
    assert reciprocal_rank(retrieved, {"b"}) == pytest.approx(1 / 4)
    assert reciprocal_rank(retrieved, {"z"}) == 0.0
    assert mrr([(retrieved, {"a"}), (retrieved, {"z"}), (retrieved, set())]) == pytest.approx((1 / 2 + 0) / 2)
    # binary nDCG: hits at ranks 2 and 4; ideal at 1 and 2
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert ndcg_at_k(retrieved, {"a", "b"}, 10) == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["a", "b"], {"a": 3, "b": 1}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a"], {"a": 3, "b": 1}, 10) < 1.0
    with pytest.raises(ValueError):
        recall_at_k(retrieved, {"a"}, 0)


def test_names_id_matches_whole_tokens_only():
    assert names_id("Fixed in 1.2 (CVE-2024-6387).", "CVE-2024-6387")
    assert names_id("fixes cve-2024-6387", "CVE-2024-6387")
    assert not names_id("CVE-2024-63870 only", "CVE-2024-6387")
    assert names_id("closes bug 1055473", "#1055473")
    assert not names_id("bug 10554730", "#1055473")
    assert id_accuracy("CVE-1 and #2", ["CVE-1", "#2", "CVE-3"]) == pytest.approx(2 / 3)
    assert id_accuracy("anything", []) is None


def test_citation_precision_and_recall():
    assert citation_precision(["a", "b", "c"], {"a", "z"}) == pytest.approx(1 / 3)
    assert citation_recall(["a", "b", "c"], {"a", "z"}) == pytest.approx(1 / 2)
    assert citation_precision([], {"a"}) is None
    assert citation_recall(["a"], set()) is None


def test_language_of_ignores_ids_and_versions():
    assert language_of("Исправлено в openssl 3.0.19-1~deb12u2 [1] (CVE-2026-28387).") == "ru"
    assert language_of("Fixed in openssl 3.0.19-1~deb12u2 [1].") == "en"
    assert language_of("") == "en"
    ru = "Записи по вопросу: openssl 3.0.0-1 (2020-07-06): новая версия [1].\n\nopenssl:\n  - Import 3.0.0, fix the build"
    assert lead_paragraph(ru).startswith("Записи") and "Import" not in lead_paragraph(ru)
    assert language_of(lead_paragraph(ru)) == "ru"


def test_token_f1_is_the_best_over_references():
    assert token_f1("The cat sat.", ["a cat sat", "dog"]) == pytest.approx(1.0)
    # pred {he, went, home, early}, gold {went, home}: p = 2/4, r = 1
    assert token_f1("He went home early", ["went home"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("nothing", ["something else"]) == 0.0
    assert token_f1("x", []) is None


def test_grounded_claim_rate_pools_claims():
    assert grounded_claim_rate([4, 0, 6], [1, 0, 2]) == pytest.approx(1 - 3 / 10)
    assert grounded_claim_rate([0], [0]) is None


def test_auroc_is_the_mann_whitney_probability():
    assert auroc([0.9, 0.8, 0.3, 0.2], [True, True, False, False]) == pytest.approx(1.0)
    assert auroc([0.2, 0.3, 0.8, 0.9], [True, True, False, False]) == pytest.approx(0.0)
    assert auroc([0.5, 0.5], [True, False]) == pytest.approx(0.5)
    assert auroc([0.5], [True]) is None


def test_percentile_matches_numpy_linear():
    xs = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0]
    for q in (0, 50, 90, 95, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile([], 95) is None
    assert mean([1, 2, 6]) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        percentile(xs, 101)


def test_cache_rates_split_by_kind():
    kinds = ["trap", "trap", "paraphrase", "paraphrase", "paraphrase"]
    hits = [True, False, True, True, False]
    assert false_hit_rate(kinds, hits) == pytest.approx(1 / 2)
    assert paraphrase_hit_rate(kinds, hits) == pytest.approx(2 / 3)
    assert false_hit_rate(["paraphrase"], [True]) is None


def test_trajectory_matching_and_rules():
    full = ["cache_lookup", "route", "plan", "execute", "verify", "rank", "cache_store", "finalize"]
    assert is_subsequence(["route", "verify", "finalize"], full)
    assert not is_subsequence(["verify", "route"], full)
    assert path_matches(full, full)
    assert not path_matches(["cache_lookup", "finalize"], full)
    with pytest.raises(ValueError):
        path_matches([], [], mode="fuzzy")
    ok = [{"node": "cache_lookup", "hit": False}, {"node": "route"}, {"node": "plan"}, {"node": "execute"},
          {"node": "verify"}, {"node": "rank", "passed": False}, {"node": "correct"}, {"node": "verify"},
          {"node": "rank", "passed": True}, {"node": "cache_store"}, {"node": "finalize"}]
    assert rule_violations(ok) == []
    assert rule_violations([{"node": "cache_lookup", "hit": True}, {"node": "finalize"}]) == []
    bad = [{"node": "cache_lookup", "hit": True}, {"node": "route"}, {"node": "rank", "passed": False},
           {"node": "cache_store"}, {"node": "correct"}, {"node": "finalize"}]
    problems = rule_violations(bad)
    assert any("cache hit" in p for p in problems)
    assert any("failing rank" in p for p in problems)
    assert any("correct followed by" in p for p in problems)


def test_registry_resolves_at_k_names_and_rejects_unknown():
    metric, k = resolve("retrieval.ndcg@10")
    assert metric.name == "retrieval.ndcg@k" and k == 10
    with pytest.raises(KeyError, match="unknown metric"):
        resolve("retrieval.ndcg@k")
    with pytest.raises(KeyError, match="unknown metric"):
        resolve("routing.acuracy")
    assert all(m.better in ("higher", "lower", None) for m in METRICS.values())


def test_record_level_metrics_and_correctness():
    records = [
        {"id": "1", "expected": {"domain": "digest", "ids": ["CVE-1"], "doc_ids": ["d1"]}, "domain": "digest",
         "route_method": "heuristic", "route_confidence": 0.9, "answer": "CVE-1 fixed [1]", "cited": ["d1"],
         "retrieved": ["d1", "d2"], "retrieved_sources": [["exact", "vector"]], "path": "fast", "latency_s": 2.0,
         "quality_score": 0.9, "llm_calls": 1, "tokens": 300, "steps": 7, "lang": "en"},
        {"id": "2", "expected": {"domain": "trend", "ids": ["CVE-2"], "doc_ids": ["d3"]}, "domain": "digest",
         "route_method": "llm", "route_confidence": 0.4, "answer": "no idea", "cited": ["d2"],
         "retrieved": ["d2", "d3"], "retrieved_sources": [["vector"]], "path": "fast", "latency_s": 4.0,
         "quality_score": 0.3, "llm_calls": 2, "tokens": 500, "steps": 9, "lang": "ru"},
        {"id": "3", "expected": {"domain": "digest"}, "error": "BackendError: down"},
    ]
    assert compute("routing.accuracy", records) == pytest.approx(1 / 3)  # the error counts as wrong
    assert compute("routing.llm_share", records) == pytest.approx(1 / 2)  # errors have no route
    assert compute("retrieval.mrr", records) == pytest.approx((1 + 1 / 2) / 2)
    assert compute("retrieval.recall@1", records) == pytest.approx(1 / 2)
    assert compute("answers.citation_recall", records) == pytest.approx(1 / 2)
    assert compute("answers.lang_match", records) == pytest.approx(1 / 2)
    assert compute("trajectory.exact_id_rate", records) == pytest.approx(1 / 2)
    assert compute("answers.quality_auroc", records) == pytest.approx(1.0)
    assert compute("kpi.fast_latency_p50_s", records) == pytest.approx(3.0)
    assert compute("kpi.llm_calls_mean", records) == pytest.approx(1.5)
    assert compute("run.error_rate", records) == pytest.approx(1 / 3)
    assert [correct(r) for r in records] == [True, False, False]
    records[0]["tags"], records[1]["tags"] = ["cve"], ["digest"]
    by_kind = compute("retrieval.by_kind", records)
    assert by_kind["cve"] == {"n": 1, "recall@10": 1.0, "ndcg@10": 1.0, "mrr": 1.0}
    assert by_kind["digest"]["mrr"] == pytest.approx(1 / 2)
    assert correct({"expected": {}}) is None
