"""Prometheus metrics: latency, LLM calls, tokens and steps against budgets.

One :class:`Metrics` per process with its own ``CollectorRegistry`` (so tests and
embedders of the library do not collide with the global one). ``kos metrics`` and
:meth:`Metrics.exposition` print the text format a Prometheus server scrapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.5)


class Metrics:
    """The framework's metrics, registered in ``self.registry``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.runs = Counter("kos_runs_total", "Finished runs.", ["domain", "path", "route_method", "status"], registry=r)
        self.run_latency = Histogram("kos_run_latency_seconds", "Run wall time.", ["domain", "path"],
                                     buckets=_LATENCY_BUCKETS, registry=r)
        self.node_latency = Histogram("kos_node_latency_seconds", "Node wall time.", ["node"],
                                      buckets=_LATENCY_BUCKETS, registry=r)
        self.llm_calls = Counter("kos_llm_calls_total", "LLM calls.", ["domain"], registry=r)
        self.tokens = Counter("kos_llm_tokens_total", "LLM tokens.", ["domain", "kind"], registry=r)
        self.steps = Histogram("kos_run_steps", "Agent steps per run.", ["domain"],
                               buckets=(1, 2, 4, 6, 8, 10, 12, 16, 24, 32), registry=r)
        self.budget_used = Histogram("kos_budget_used_ratio", "Usage / limit per run and budget.",
                                     ["budget"], buckets=_RATIO_BUCKETS, registry=r)
        self.budget_exceeded = Counter("kos_budget_exceeded_total", "Budget exhaustions.", registry=r)
        self.quality = Histogram("kos_quality_score", "Verified quality of answers.", ["domain"],
                                 buckets=(0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), registry=r)
        self.cache_hits = Counter("kos_answer_cache_total", "Answer-cache lookups.", ["outcome"], registry=r)

    def observe_run(self, *, domain: str, path: str, route_method: str, status: str, latency_s: float,
                    usage: Mapping[str, int], limits: Mapping[str, int], quality: float | None,
                    timings_ms: Mapping[str, float], cache_outcome: str) -> None:
        """Record one finished run."""
        self.runs.labels(domain, path, route_method, status).inc()
        self.run_latency.labels(domain, path).observe(latency_s)
        for node, ms in timings_ms.items():
            if "." not in node:
                self.node_latency.labels(node).observe(ms / 1000)
        self.llm_calls.labels(domain).inc(usage.get("llm_calls", 0))
        self.tokens.labels(domain, "prompt").inc(usage.get("prompt_tokens", 0))
        self.tokens.labels(domain, "completion").inc(usage.get("completion_tokens", 0))
        self.steps.labels(domain).observe(usage.get("steps", 0))
        used = {"llm_calls": usage.get("llm_calls", 0), "steps": usage.get("steps", 0),
                "tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)}
        for name, limit in limits.items():
            if limit:
                self.budget_used.labels(name).observe(used.get(name, 0) / limit)
        if usage.get("budget_exceeded"):
            self.budget_exceeded.inc(usage["budget_exceeded"])
        if quality is not None:
            self.quality.labels(domain).observe(quality)
        self.cache_hits.labels(cache_outcome).inc()

    def exposition(self) -> str:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry).decode()

    def snapshot(self) -> dict[str, Any]:
        """Sample values by metric name (for tests and `kos metrics --json`)."""
        out: dict[str, Any] = {}
        for family in self.registry.collect():
            for s in family.samples:
                key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else "")
                out[key] = s.value
        return out
