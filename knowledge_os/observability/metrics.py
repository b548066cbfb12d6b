"""Prometheus metrics: latency, LLM calls, tokens and steps against budgets.

One :class:`Metrics` per process with its own ``CollectorRegistry`` (so tests and
embedders of the library do not collide with the global one). ``GET /metrics`` of
``kos serve`` and :meth:`Metrics.exposition` give the text format a Prometheus server scrapes.

The seed's metrics (``shared/seeds/002``, section 10 "Performance Metrics") carry the
prefix ``kos_``; every label has a fixed, small set of values:

=================================  ==============================================  ==========================
seed name                          here                                            labels
=================================  ==============================================  ==========================
fast_path_latency_seconds          kos_fast_path_latency_seconds (histogram)       --
smart_path_latency_seconds         kos_smart_path_latency_seconds (histogram)      --
llm_calls_per_request              kos_llm_calls_per_request (histogram)           path
tokens_per_request                 kos_tokens_per_request (histogram)              path
agent_steps_per_request            kos_agent_steps_per_request (histogram)         path
request_budget_exceeded_total      kos_request_budget_exceeded_total (counter)     budget: llm_calls|tokens|steps|wall_time
qos_level_requests_total           kos_qos_level_requests_total (counter)          qos: interactive|standard|thorough|none
performance_cache_hits_total       kos_cache_hits_total (counter)                  cache (below)
performance_cache_misses_total     kos_cache_misses_total (counter)                cache (below)
(DLQ monitoring, seed section 7)   kos_dead_letters_enqueued_total (counter)       --
                                   kos_dead_letters_reprocessed_total (counter)    --
                                   kos_dead_letters_permanent_failures_total       --
                                   kos_dead_letters (gauge, read at scrape)        status: pending|reprocessed|permanent_failure
(episodic memory, seed section 1)  kos_episodic_events_written_total (counter)     --
=================================  ==============================================  ==========================

``cache`` is one of router, retrieval, embedding, node, answer_exact, answer_near; the
counts are the caches' own (``KeyedCache.hits``, ``AnswerCache.counts``,
``BoundedMemoryCache.hits``), read at scrape time. Latency is a run's wall time from its
first node to ``finalize``, seconds (a resumed run's without the time it stood still); tokens
are prompt + completion tokens; an agent step
is one step of the run's plan that ``execute`` ran (the seed's Fast Path micro-plan has at
most 3; node executions, which the ``steps`` budget counts, are ``kos_run_steps``). The dead-letter counters move in the process where the letter's event
happens: ``enqueued`` where a run failed (``KnowledgeOS.arun``/``astream`` without a queue;
a job's first failed attempt in ``kos worker`` with ``queue.backend: procrastinate``),
``reprocessed`` / ``permanent_failures`` in the process working the letters (``kos dlq
work``; the ``kos worker`` whose attempt finished or gave up a failed job). The
``kos_dead_letters`` gauge reads the shared queue at scrape time (the dead-letter table, or
the failed jobs of runs with a queue), so ``kos serve`` shows every process's letters (at
most 1,000 per status counted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["BUDGETS", "CACHES", "DEAD_LETTER_STATUSES", "QOS_LEVELS", "Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.5)
# KPI thresholds of the seed sit on bucket edges: 5 s, 3 LLM calls, 8k tokens, 4 steps.
_PATH_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 60, 120)
_CALL_BUCKETS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 16)
_TOKEN_BUCKETS = (250, 500, 1000, 2000, 4000, 6000, 8000, 12000, 16000, 32000)
_STEP_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32)

BUDGETS = ("llm_calls", "tokens", "steps", "wall_time")
QOS_LEVELS = ("interactive", "standard", "thorough")
CACHES = ("router", "retrieval", "embedding", "node", "answer_exact", "answer_near")
DEAD_LETTER_STATUSES = ("pending", "reprocessed", "permanent_failure")


class _CacheCollector(Collector):
    """Hits and misses per cache, read from the caches at scrape time."""

    def __init__(self, stats: Callable[[], Mapping[str, tuple[int, int]]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[CounterMetricFamily]:
        hits = CounterMetricFamily("kos_cache_hits", "Cache lookups that found an entry.", labels=["cache"])
        misses = CounterMetricFamily("kos_cache_misses", "Cache lookups that found none.", labels=["cache"])
        stats = self._stats()
        for name in CACHES:
            h, m = stats.get(name, (0, 0))
            hits.add_metric([name], h)
            misses.add_metric([name], m)
        yield hits
        yield misses


class Metrics:
    """The framework's metrics, registered in ``self.registry`` (names: module docstring).

    Args:
        cache_stats: Returns cache name -> (hits, misses); read at every scrape
            (``Services.cache_stats``). None: the cache counters stay at 0.
    """

    def __init__(self, *, cache_stats: Callable[[], Mapping[str, tuple[int, int]]] | None = None) -> None:
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
        # the seed's metrics (module docstring)
        self.fast_path_latency = Histogram("kos_fast_path_latency_seconds", "Fast Path run wall time, seconds.",
                                           buckets=_PATH_LATENCY_BUCKETS, registry=r)
        self.smart_path_latency = Histogram("kos_smart_path_latency_seconds", "Smart Path run wall time, seconds.",
                                            buckets=_PATH_LATENCY_BUCKETS, registry=r)
        self.llm_calls_per_request = Histogram("kos_llm_calls_per_request", "LLM calls of one run.", ["path"],
                                               buckets=_CALL_BUCKETS, registry=r)
        self.tokens_per_request = Histogram("kos_tokens_per_request", "Prompt + completion tokens of one run.",
                                            ["path"], buckets=_TOKEN_BUCKETS, registry=r)
        self.agent_steps_per_request = Histogram("kos_agent_steps_per_request", "Plan steps one run executed.",
                                                 ["path"], buckets=_STEP_BUCKETS, registry=r)
        self.request_budget_exceeded = Counter("kos_request_budget_exceeded_total",
                                               "Runs that hit a budget, by budget.", ["budget"], registry=r)
        self.qos_level_requests = Counter("kos_qos_level_requests_total", "Finished runs by QoS level.", ["qos"],
                                          registry=r)
        self.dead_letters_enqueued = Counter("kos_dead_letters_enqueued_total", "Failed runs put on the queue.",
                                             registry=r)
        self.dead_letters_reprocessed = Counter("kos_dead_letters_reprocessed_total",
                                                "Dead letters resumed successfully.", registry=r)
        self.dead_letters_permanent_failures = Counter("kos_dead_letters_permanent_failures_total",
                                                       "Dead letters given up after their last attempt.", registry=r)
        self.dead_letters = Gauge("kos_dead_letters", "Letters on the queue by status (at most 1,000 counted).",
                                  ["status"], registry=r)
        self.episodic_events_written = Counter("kos_episodic_events_written_total",
                                               "Events written to episodic memory.", registry=r)
        for budget in BUDGETS:  # every label value exists from the start, so rate() sees its first increase
            self.request_budget_exceeded.labels(budget)
        for qos in (*QOS_LEVELS, "none"):
            self.qos_level_requests.labels(qos)
        for status in DEAD_LETTER_STATUSES:
            self.dead_letters.labels(status)
        if cache_stats is not None:
            r.register(_CacheCollector(cache_stats))

    def observe_run(self, *, domain: str, path: str, route_method: str, status: str, latency_s: float,
                    usage: Mapping[str, int], limits: Mapping[str, int], quality: float | None,
                    timings_ms: Mapping[str, float], cache_outcome: str, qos: str | None = None,
                    budgets_exceeded: Sequence[str] = (), agent_steps: int | None = None) -> None:
        """Record one finished run.

        Args:
            qos: The run's QoS level; an unknown or missing one counts as ``none``.
            budgets_exceeded: The budget of each ``budget_exceeded`` event of the run
                (``llm_calls``, ``tokens``, ``steps``, ``wall_time``); each counts once per run.
            agent_steps: Plan steps executed; None: ``usage["steps"]`` (node executions).
        """
        tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
        (self.smart_path_latency if path == "smart" else self.fast_path_latency).observe(latency_s)
        label = "smart" if path == "smart" else "fast"
        self.llm_calls_per_request.labels(label).observe(usage.get("llm_calls", 0))
        self.tokens_per_request.labels(label).observe(tokens)
        self.agent_steps_per_request.labels(label).observe(usage.get("steps", 0) if agent_steps is None
                                                           else agent_steps)
        for budget in sorted(set(budgets_exceeded)):
            if budget in BUDGETS:
                self.request_budget_exceeded.labels(budget).inc()
        self.qos_level_requests.labels(qos if qos in QOS_LEVELS else "none").inc()
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

    def observe_events_written(self, n: int) -> None:
        """Count ``n`` events written to episodic memory."""
        self.episodic_events_written.inc(n)

    def observe_dead_letter(self, outcome: str) -> None:
        """Count one dead letter: ``enqueued``, ``reprocessed`` or ``permanent_failure``."""
        {"enqueued": self.dead_letters_enqueued, "reprocessed": self.dead_letters_reprocessed,
         "permanent_failure": self.dead_letters_permanent_failures}[outcome].inc()

    def set_dead_letters(self, counts: Mapping[str, int]) -> None:
        """Set the ``kos_dead_letters`` gauge: status -> letters on the queue."""
        for status in DEAD_LETTER_STATUSES:
            self.dead_letters.labels(status).set(counts.get(status, 0))

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
