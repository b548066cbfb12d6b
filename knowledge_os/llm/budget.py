"""Per-request budgets and usage accounting.

Every LLM call and every node step is counted in a :class:`Usage` dict (the graph keeps
one per node execution in its spend log, ``knowledge_os.graph.state.SpendEntry``), and :meth:`Budget.check` raises
:class:`~knowledge_os.errors.BudgetExceededError` before a call that would pass a limit.
Nodes catch it, fall back to work without the LLM, and record ``budget_exceeded``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing_extensions import TypedDict

from knowledge_os.errors import BudgetExceededError

__all__ = ["Budget", "Usage", "add_usage", "merge_usage"]


class Usage(TypedDict, total=False):
    """Counts for one run: LLM calls, prompt and completion tokens, node steps."""

    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    steps: int
    budget_exceeded: int


def merge_usage(left: Mapping[str, int] | None, right: Mapping[str, int] | None) -> dict[str, int]:
    """Add two usage dicts counter by counter (a missing counter counts 0)."""
    out = dict(left or {})
    for k, v in (right or {}).items():
        out[k] = out.get(k, 0) + v
    return out


def add_usage(*parts: Mapping[str, int]) -> dict[str, int]:
    """The counter-wise sum of any number of usage dicts."""
    out: dict[str, int] = {}
    for p in parts:
        out = merge_usage(out, p)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Limits for one request (settings, overridden per domain YAML, capped by the QoS level).

    Attributes:
        deadline: Unix time after which no LLM call or step starts (the QoS level's
            ``max_wall_s`` from the run's start); None: no wall-time limit.
        max_wall_s: That limit in seconds, for messages and manifests (0: none).
    """

    max_llm_calls: int
    max_tokens: int
    max_steps: int
    deadline: float | None = None
    max_wall_s: float = 0

    def check(self, usage: Mapping[str, int], *, next_call: bool = False, next_step: bool = False) -> None:
        """Raise BudgetExceededError if ``usage`` (plus the next call/step) passes a limit."""
        if next_call and usage.get("llm_calls", 0) + 1 > self.max_llm_calls:
            raise BudgetExceededError("llm_calls", self.max_llm_calls)
        tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
        if next_call and tokens >= self.max_tokens:
            raise BudgetExceededError("tokens", self.max_tokens)
        if next_step and usage.get("steps", 0) + 1 > self.max_steps:
            raise BudgetExceededError("steps", self.max_steps)
        if (next_call or next_step) and self.deadline is not None and time.time() > self.deadline:
            raise BudgetExceededError("wall_time", int(self.max_wall_s))
