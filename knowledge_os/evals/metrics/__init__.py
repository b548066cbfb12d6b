"""Metrics by standard name, computed from a suite's :class:`~knowledge_os.evals.records.CaseRecord` list.

Names are ``<family>.<metric>``; ``@k`` metrics take the cut-off from the name
(``retrieval.recall@5``). A *scalar* metric is a number (or None when no case applies)
and may carry a threshold and a tolerance; a *table* metric is a plain dict shown in the
report (confusion matrix, per-domain precision/recall, reliability bins, latency per path).
The pure functions live in the family modules and have their own unit tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from knowledge_os.evals.metrics import answers, cache, kpi, retrieval, routing, trajectory
from knowledge_os.evals.records import CaseRecord

__all__ = ["METRICS", "MetricDef", "compute", "correct", "resolve"]

Value = float | dict[str, Any] | list[Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricDef:
    """One metric.

    Attributes:
        name: Standard name; ``@k`` in it is a placeholder for the cut-off.
        better: ``"higher"`` or ``"lower"`` for scalars (direction of a regression), None for tables.
        unit: Unit of a scalar (``"s"``, ``"tokens"``, ``""`` for a share).
        description: One line for the report.
        fn: ``fn(records, k)`` -> value.
    """

    name: str
    better: Literal["higher", "lower"] | None
    unit: str
    description: str
    fn: Callable[[Sequence[CaseRecord], int | None], Value]

    @property
    def is_table(self) -> bool:
        return self.better is None


def _routed(rs: Sequence[CaseRecord]) -> list[CaseRecord]:
    return [r for r in rs if (r.get("expected") or {}).get("domain")]


def _labels(rs: Sequence[CaseRecord]) -> tuple[list[str], list[str]]:
    routed = _routed(rs)
    return [r["expected"]["domain"] for r in routed], [r.get("domain") or "(error)" for r in routed]


def _reliability(rs: Sequence[CaseRecord]) -> tuple[list[float], list[bool]]:
    routed = [r for r in _routed(rs) if not r.get("error")]
    return ([float(r.get("route_confidence", 0.0)) for r in routed],
            [r.get("domain") == r["expected"]["domain"] for r in routed])


def _mean(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def _relevant(r: CaseRecord) -> dict[str, float]:
    exp = r.get("expected") or {}
    graded = exp.get("graded") or {}
    return {i: float(graded.get(i, 1.0)) for i in exp.get("doc_ids") or []} | {
        i: float(g) for i, g in graded.items()}


def correct(r: CaseRecord) -> bool | None:
    """Whether an answer is correct by the case's truth: every expected id named, at least
    one expected document cited, no ungrounded claim (each part only when the case or the
    checker has it). None when the case states nothing to check; False on an error."""
    if r.get("error"):
        return False
    exp = r.get("expected") or {}
    parts: list[bool] = []
    if exp.get("ids"):
        parts.append(answers.id_accuracy(r.get("answer", ""), exp["ids"]) == 1.0)
    if exp.get("doc_ids"):
        parts.append(bool(set(r.get("cited") or []) & set(exp["doc_ids"])))
    g = r.get("grounding")
    if g and g.get("claims"):
        parts.append(not g.get("ungrounded"))
    return all(parts) if parts else None


def _latencies(rs: Sequence[CaseRecord], path: str | None) -> list[float]:
    return [r["latency_s"] for r in rs if not r.get("error") and "latency_s" in r
            and (path is None or r.get("path") == path)]


def _ok(rs: Sequence[CaseRecord]) -> list[CaseRecord]:
    return [r for r in rs if not r.get("error")]


def _latency_table(rs: Sequence[CaseRecord]) -> dict[str, Any]:
    out = {}
    for path in sorted({r.get("path") for r in _ok(rs) if r.get("path")}):
        xs = _latencies(rs, path)
        out[path] = {"n": len(xs), "p50_s": kpi.percentile(xs, 50), "p95_s": kpi.percentile(xs, 95),
                     "max_s": max(xs) if xs else None}
    return out


def _cache_pairs(rs: Sequence[CaseRecord]) -> tuple[list[str], list[bool]]:
    pairs = [r for r in rs if r.get("pair_kind")]
    return [r["pair_kind"] for r in pairs], [bool(r.get("second_hit")) and not r.get("error") for r in pairs]


def _exact_id(rs: Sequence[CaseRecord]) -> float | None:
    named = [r for r in rs if any(str(i).upper().startswith(("CVE-", "#")) for i in
                                  (r.get("expected") or {}).get("ids") or [])]
    if not named:
        return None
    return sum(bool(r.get("retrieved_sources")) and "exact" in r["retrieved_sources"][0]
               for r in named) / len(named)


def _path_match(rs: Sequence[CaseRecord]) -> float | None:
    cases = [r for r in rs if (r.get("expected") or {}).get("path")]
    if not cases:
        return None
    return sum(trajectory.path_matches(r["expected"]["path"], [s["node"] for s in r.get("trace") or []],
                                       mode=r["expected"].get("path_match", "exact"))
               for r in cases) / len(cases)


def _retrieval_by_kind(rs: Sequence[CaseRecord]) -> dict[str, Any]:
    """recall@10, nDCG@10 and MRR per case kind (the first tag: cve, bug, digest, free_text, ...)."""
    groups: dict[str, list[CaseRecord]] = {}
    for r in rs:
        if _relevant(r):
            groups.setdefault((r.get("tags") or ["untagged"])[0], []).append(r)
    return {kind: {"n": len(g),
                   "recall@10": _mean([retrieval.recall_at_k(r.get("retrieved") or [], _relevant(r), 10) for r in g]),
                   "ndcg@10": _mean([retrieval.ndcg_at_k(r.get("retrieved") or [], _relevant(r), 10) for r in g]),
                   "mrr": retrieval.mrr([(r.get("retrieved") or [], _relevant(r)) for r in g])}
            for kind, g in sorted(groups.items())}


def _modes(rs: Sequence[CaseRecord]) -> dict[str, Any]:
    ok = [r for r in _ok(rs) if "answer_mode" in r]
    return {mode: {"n": sum(r["answer_mode"] == mode for r in ok),
                   "corrected": sum(r["answer_mode"] == mode and bool(r.get("corrected")) for r in ok),
                   "data_only": sum(r["answer_mode"] == mode and bool(r.get("data_only")) for r in ok)}
            for mode in sorted({r["answer_mode"] for r in ok})}


def _grounded(rs: Sequence[CaseRecord]) -> float | None:
    gs = [r["grounding"] for r in rs if r.get("grounding")]
    return answers.grounded_claim_rate([g["claims"] for g in gs], [len(g["ungrounded"]) for g in gs])


def _quality_pairs(rs: Sequence[CaseRecord]) -> tuple[list[float], list[bool]]:
    scored = [(float(r.get("quality_score", 0.0)), correct(r)) for r in rs if not r.get("error")]
    scored = [(s, c) for s, c in scored if c is not None]
    return [s for s, _ in scored], [c for _, c in scored]


_DEFS = [
    MetricDef(name="routing.accuracy", better="higher", unit="", description="share routed to the expected domain",
              fn=lambda rs, k: routing.accuracy(*_labels(rs))),
    MetricDef(name="routing.macro_f1", better="higher", unit="", description="unweighted mean F1 over expected domains",
              fn=lambda rs, k: routing.macro_f1(*_labels(rs))),
    MetricDef(name="routing.per_domain", better=None, unit="", description="precision, recall, F1, support per domain",
              fn=lambda rs, k: routing.per_class_precision_recall(*_labels(rs))),
    MetricDef(name="routing.confusion", better=None, unit="", description="rows: expected domain; columns: routed domain",
              fn=lambda rs, k: routing.confusion_matrix(*_labels(rs))),
    MetricDef(name="routing.ece", better="lower", unit="", description="expected calibration error of route confidence (10 bins)",
              fn=lambda rs, k: routing.expected_calibration_error(*_reliability(rs))),
    MetricDef(name="routing.reliability", better=None, unit="", description="reliability diagram bins of route confidence",
              fn=lambda rs, k: routing.reliability_bins(*_reliability(rs))),
    MetricDef(name="routing.llm_share", better="lower", unit="", description="share of queries the router asked the LLM about (llm/fallback)",
              fn=lambda rs, k: routing.llm_share([r.get("route_method", "") for r in _ok(rs)])),
    MetricDef(name="retrieval.recall@k", better="higher", unit="", description="share of relevant documents in the top k",
              fn=lambda rs, k: _mean([retrieval.recall_at_k(r.get("retrieved") or [], _relevant(r), k or 10) for r in rs])),
    MetricDef(name="retrieval.ndcg@k", better="higher", unit="", description="nDCG of the top k (graded relevance, default 1)",
              fn=lambda rs, k: _mean([retrieval.ndcg_at_k(r.get("retrieved") or [], _relevant(r), k or 10) for r in rs])),
    MetricDef(name="retrieval.mrr", better="higher", unit="", description="mean reciprocal rank of the first relevant document",
              fn=lambda rs, k: retrieval.mrr([(r.get("retrieved") or [], _relevant(r)) for r in rs])),
    MetricDef(name="retrieval.by_kind", better=None, unit="", description="recall@10, nDCG@10, MRR per case kind (first tag)",
              fn=lambda rs, k: _retrieval_by_kind(rs)),
    MetricDef(name="answers.grounded_rate", better="higher", unit="", description="pooled share of answer claims grounded in the changelogs (independent checker)",
              fn=lambda rs, k: _grounded(rs)),
    MetricDef(name="answers.id_accuracy", better="higher", unit="", description="share of expected ids (CVE, bug) the answer names",
              fn=lambda rs, k: _mean([answers.id_accuracy(r.get("answer", ""), (r.get("expected") or {}).get("ids") or []) for r in rs])),
    MetricDef(name="answers.citation_precision", better="higher", unit="", description="share of cited documents that are relevant",
              fn=lambda rs, k: _mean([answers.citation_precision(r.get("cited") or [], _relevant(r)) for r in rs])),
    MetricDef(name="answers.citation_recall", better="higher", unit="", description="share of relevant documents cited",
              fn=lambda rs, k: _mean([answers.citation_recall(r.get("cited") or [], _relevant(r)) for r in rs])),
    MetricDef(name="answers.lang_match", better="higher", unit="", description="share of answers whose lead paragraph is in the question's language",
              fn=lambda rs, k: _mean([float(answers.language_of(answers.lead_paragraph(r.get("answer", ""))) == r["lang"])
                                      for r in _ok(rs) if r.get("lang")])),
    MetricDef(name="answers.token_f1", better="higher", unit="", description="token F1 against the reference answers (SQuAD-style; QA data sets)",
              fn=lambda rs, k: _mean([answers.token_f1(r.get("answer", ""), (r.get("expected") or {}).get("answers") or [])
                                      for r in _ok(rs)])),
    MetricDef(name="answers.correct_rate", better="higher", unit="", description="share of answers correct by the case's truth",
              fn=lambda rs, k: _mean([None if (c := correct(r)) is None else float(c) for r in rs])),
    MetricDef(name="answers.quality_auroc", better="higher", unit="", description="AUROC of quality.score for correctness (0.5: uninformative)",
              fn=lambda rs, k: answers.auroc(*_quality_pairs(rs))),
    MetricDef(name="answers.quality_ece", better="lower", unit="", description="ECE of quality.score as a probability of correctness",
              fn=lambda rs, k: routing.expected_calibration_error(*_quality_pairs(rs))),
    MetricDef(name="answers.quality_reliability", better=None, unit="", description="reliability bins of quality.score",
              fn=lambda rs, k: routing.reliability_bins(*_quality_pairs(rs))),
    MetricDef(name="answers.modes", better=None, unit="", description="answers per answer mode, and how many were corrected or data-only",
              fn=lambda rs, k: _modes(rs)),
    MetricDef(name="cache.false_hit_rate", better="lower", unit="", description="share of trap pairs answered from the cache",
              fn=lambda rs, k: cache.false_hit_rate(*_cache_pairs(rs))),
    MetricDef(name="cache.paraphrase_hit_rate", better="higher", unit="", description="share of paraphrase pairs answered from the cache",
              fn=lambda rs, k: cache.paraphrase_hit_rate(*_cache_pairs(rs))),
    MetricDef(name="kpi.fast_latency_p50_s", better="lower", unit="s", description="Fast Path p50 latency",
              fn=lambda rs, k: kpi.percentile(_latencies(rs, "fast"), 50)),
    MetricDef(name="kpi.fast_latency_p95_s", better="lower", unit="s", description="Fast Path p95 latency (seed target < 5 s)",
              fn=lambda rs, k: kpi.percentile(_latencies(rs, "fast"), 95)),
    MetricDef(name="kpi.smart_latency_p50_s", better="lower", unit="s", description="Smart Path p50 latency",
              fn=lambda rs, k: kpi.percentile(_latencies(rs, "smart"), 50)),
    MetricDef(name="kpi.smart_latency_p95_s", better="lower", unit="s", description="Smart Path p95 latency",
              fn=lambda rs, k: kpi.percentile(_latencies(rs, "smart"), 95)),
    MetricDef(name="kpi.latency_by_path", better=None, unit="s", description="latency per path: n, p50, p95, max",
              fn=lambda rs, k: _latency_table(rs)),
    MetricDef(name="kpi.llm_calls_mean", better="lower", unit="calls", description="mean LLM calls per request (seed target < 3)",
              fn=lambda rs, k: kpi.mean([r.get("llm_calls", 0) for r in _ok(rs)])),
    MetricDef(name="kpi.tokens_p95", better="lower", unit="tokens", description="p95 tokens per request (seed target < 8,000)",
              fn=lambda rs, k: kpi.percentile([r.get("tokens", 0) for r in _ok(rs)], 95)),
    MetricDef(name="kpi.steps_p95", better="lower", unit="steps", description="p95 agent steps (plan steps executed) per request (seed target <= 4)",
              fn=lambda rs, k: kpi.percentile([r["agent_steps"] for r in _ok(rs) if "agent_steps" in r], 95)),
    MetricDef(name="kpi.node_steps_p95", better="lower", unit="steps", description="p95 graph nodes run per request (the step budget's count)",
              fn=lambda rs, k: kpi.percentile([r.get("steps", 0) for r in _ok(rs)], 95)),
    MetricDef(name="trajectory.path_match", better="higher", unit="", description="share of runs whose node path matches the expected one",
              fn=lambda rs, k: _path_match(rs)),
    MetricDef(name="trajectory.exact_id_rate", better="higher", unit="", description="share of CVE/bug questions whose top document came from the exact-id retriever",
              fn=lambda rs, k: _exact_id(rs)),
    MetricDef(name="trajectory.rule_violation_rate", better="lower", unit="", description="share of runs breaking a graph rule (cache hit -> finalize, correct -> verify -> rank, ...)",
              fn=lambda rs, k: _mean([float(bool(trajectory.rule_violations(r["trace"]))) for r in _ok(rs) if r.get("trace")])),
    MetricDef(name="run.error_rate", better="lower", unit="", description="share of cases whose run raised",
              fn=lambda rs, k: _mean([float(bool(r.get("error"))) for r in rs])),
]

METRICS: dict[str, MetricDef] = {m.name: m for m in _DEFS}
"""Every metric by standard name (``@k`` names with the literal ``k``)."""

_AT_K = re.compile(r"^(?P<base>[a-z_]+\.[a-z_0-9]+)@(?P<k>\d+)$")


def resolve(name: str) -> tuple[MetricDef, int | None]:
    """The metric for a standard name and its cut-off (``retrieval.ndcg@10`` -> (ndcg@k, 10)).

    Raises:
        KeyError: unknown name (the message lists the known ones), or ``@k`` missing/given wrongly.
    """
    m = _AT_K.match(name)
    if m and f"{m['base']}@k" in METRICS and int(m["k"]) >= 1:
        return METRICS[f"{m['base']}@k"], int(m["k"])
    if name in METRICS and not name.endswith("@k"):
        return METRICS[name], None
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))} (@k: a cut-off such as @10)")


def compute(name: str, records: Sequence[CaseRecord]) -> Value:
    """The value of metric ``name`` over ``records`` (None when no case applies)."""
    metric, k = resolve(name)
    return metric.fn(records, k)
