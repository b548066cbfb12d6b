"""KPI figures: percentiles and means of latency, LLM calls, tokens and agent steps.

The targets are the project seed's, as quoted in the eval issue (#9): Fast Path p95 < 5 s,
mean LLM calls per request < 3, p95 tokens per request < 8,000, p95 agent steps <= 4.
Agent steps are the plan steps a run executed (seed 002: a Fast Path micro-plan has up to
3 of them; the metric ``kos_agent_steps_per_request`` counts the same), not the graph nodes
the step budget counts (``kpi.node_steps_p95``, reported without a target).
Suites state them as thresholds; :data:`SEED_TARGETS` records them for the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["SEED_TARGETS", "mean", "percentile"]

SEED_TARGETS = {
    "kpi.fast_latency_p95_s": ("<", 5.0),
    "kpi.llm_calls_mean": ("<", 3.0),
    "kpi.tokens_p95": ("<", 8000.0),
    "kpi.steps_p95": ("<=", 4.0),
}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile with linear interpolation between closest ranks (numpy's
    default ``method="linear"``); None for no values.

    Args:
        values: Samples in any order.
        q: Percentile in [0, 100].
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    if not values:
        return None
    xs = sorted(float(v) for v in values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None for no values."""
    return sum(values) / len(values) if values else None
