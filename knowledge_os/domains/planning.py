"""Plans made for a query: the schema the LLM's plan is constrained by, its validation
against the domain YAML, the Fast Path heuristic, the check of an execution against its
plan, and the replan a failed check yields.

A plan is a list of steps from the domain's allowed steps (``plans.steps``, in running
order) plus retrieval arguments (``top_k``, ``graph_depth``) within the domain's ranges
(``plans.args``). The packages and the period come from the query analysis
(``knowledge_os.retrieval.query``), not from the LLM: the parser reads them exactly, and a
plan that dropped a named package or the asked period would answer another question. The
plan records them (``Plan.scope``), and a replan may widen them as a last resort.

Pure functions of the spec, the analysis and the execution's output; the node
``knowledge_os.nodes.plan`` makes the LLM call and ``knowledge_os.nodes.check`` runs the
check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from knowledge_os.domains.spec import DomainSpec
from knowledge_os.retrieval.query import QueryAnalysis

__all__ = [
    "STEP_MEANINGS",
    "ExecutionOutcome",
    "MadePlan",
    "arg_ranges",
    "check_execution",
    "fast_plan",
    "plan_messages",
    "plan_schema",
    "repair_plan",
    "required_steps",
    "validate_plan",
    "yaml_plan",
]

STEP_MEANINGS: Mapping[str, str] = {
    "retrieve": "search the entries (exact ids, vectors, full text, graph)",
    "expand": "add entries linked in the graph (shared CVEs, bugs, authors)",
    "group": "order the entries by package, newest first",
    "stats": "compute counts per kind of change from the data",
    "summarise": "write the answer",
}
"""One line per step of the shared library, for the plan prompt."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MadePlan:
    """A plan for one execution (before ``execute`` runs it).

    Attributes:
        steps: Step names, a subsequence of the domain's allowed steps.
        top_k: Candidates per ranked list.
        graph_depth: Hops of graph expansion.
        source: ``llm`` (the LLM's, validated), ``heuristic`` or ``yaml``.
        why: One sentence: why this plan (or why the LLM's was replaced).
    """

    steps: tuple[str, ...]
    top_k: int
    graph_depth: int
    source: str
    why: str

    def args(self) -> dict[str, int]:
        """The ``Plan.args`` of this plan."""
        return {"top_k": self.top_k, "graph_depth": self.graph_depth}


def arg_ranges(spec: DomainSpec) -> dict[str, tuple[int, int]]:
    """Inclusive ranges of the plan arguments: the YAML's ``plans.args``, else derived
    from ``retrieval``: ``top_k`` from half to three times the domain's (within 1..500),
    ``graph_depth`` from 0 to one more than the domain's (within 0..3: deeper expansion
    reached unrelated packages on the real corpus, see ``steps.expand``)."""
    r = spec.retrieval
    a = spec.plans.args
    top_k = a.top_k or (max(1, r.top_k // 2), min(500, r.top_k * 3))
    depth = a.graph_depth or (0, min(3, max(r.graph_depth, r.graph_depth + 1)))
    return {"top_k": top_k, "graph_depth": depth}


def required_steps(spec: DomainSpec) -> tuple[str, ...]:
    """Steps every plan of the domain keeps: those that make what an answer needs
    (``retrieve``: the entries, ``stats``: the figures, ``summarise``: the draft), where
    the domain's Smart plan has them."""
    return tuple(s for s in ("retrieve", "stats", "summarise") if s in spec.plans.smart)


def yaml_plan(spec: DomainSpec, path: str, why: str) -> MadePlan:
    """The domain YAML's plan for ``path`` with the retrieval defaults."""
    steps = spec.plans.smart if path == "smart" else spec.plans.fast
    return MadePlan(steps=tuple(steps), top_k=spec.retrieval.top_k, graph_depth=spec.retrieval.graph_depth,
                    source="yaml", why=why)


def _choices(lo: int, hi: int, default: int) -> list[int]:
    """A few integers in ``[lo, hi]`` for a schema enum (a grammar cannot enforce a
    numeric range, llama.cpp's JSON-schema converter ignores ``minimum``/``maximum``)."""
    return sorted({lo, hi, min(max(default, lo), hi), *(v for v in (default // 2, default * 2) if lo <= v <= hi)})


def plan_schema(spec: DomainSpec) -> dict[str, Any]:
    """The JSON schema of a Smart Path plan for ``spec``.

    Returns:
        ``{"steps": [allowed step, ...] (len(required)..len(smart) items), "top_k": int,
        "graph_depth": int}``, integers as enums of a few values in the domain's ranges.
    """
    ranges = arg_ranges(spec)
    r = spec.retrieval
    return {
        "type": "object", "additionalProperties": False, "required": ["steps", "top_k", "graph_depth"],
        "properties": {
            "steps": {"type": "array", "items": {"type": "string", "enum": list(spec.plans.allowed)},
                      "minItems": len(required_steps(spec)), "maxItems": len(spec.plans.smart)},
            "top_k": {"type": "integer", "enum": _choices(*ranges["top_k"], r.top_k)},
            "graph_depth": {"type": "integer", "enum": list(range(ranges["graph_depth"][0],
                                                                  ranges["graph_depth"][1] + 1))},
        },
    }


def plan_messages(spec: DomainSpec, analysis: QueryAnalysis, persona: str | None = None) -> tuple[str, str]:
    """The (system, user) prompt of the plan call: the allowed steps with one line each,
    who asks (``persona``, default "a developer"), what the question names, and the
    domain's own plan as the example."""
    steps = "; ".join(f"{s} = {STEP_MEANINGS.get(s, s)}" for s in spec.plans.allowed)
    default = {"steps": list(spec.plans.smart), "top_k": spec.retrieval.top_k,
               "graph_depth": spec.retrieval.graph_depth}
    named = [*analysis.packages, *analysis.cves, *(f"#{b}" for b in analysis.bugs)]
    if analysis.dates is not None:
        named.append(analysis.dates.label)
    system = (f"You plan the steps that answer a question about {spec.description.rstrip('.').lower()}. "
              f"Steps, in order: {steps}. top_k = entries searched per list; graph_depth = hops of "
              f"expansion. Reply in JSON.")
    user = (f"Asked by: {persona or 'a developer'}\nQuestion: {analysis.text}\nNamed: {', '.join(named) or 'nothing'}\n"
            f"Usual plan: {orjson.dumps(default).decode()}\nPlan:")
    return system, user


def validate_plan(raw: Mapping[str, Any] | None, spec: DomainSpec, *, source: str = "llm",
                  why: str = "made for the question") -> tuple[MadePlan, str | None]:
    """A made plan checked against the domain YAML.

    Rules: ``steps`` a non-empty list of allowed step names, none repeated, in the allowed
    order, keeping :func:`required_steps`, no longer than the Smart plan (the step
    budget reserves that many; ``knowledge_os.graph.edges``); ``top_k`` and
    ``graph_depth`` integers within :func:`arg_ranges`.

    Args:
        raw: The parsed reply (``{"steps", "top_k", "graph_depth"}``) or None (no JSON).
        spec: The domain.
        source: Recorded as the plan's source when valid.
        why: Recorded when valid.

    Returns:
        ``(plan, None)`` when valid, else ``(the YAML's Smart plan, the first broken rule)``.
    """
    problem = _problem(raw, spec)
    if problem is not None:
        return yaml_plan(spec, "smart", f"the {source} plan was rejected: {problem}"), problem
    assert raw is not None
    return MadePlan(steps=tuple(raw["steps"]), top_k=raw["top_k"], graph_depth=raw["graph_depth"],
                    source=source, why=why), None


def _problem(raw: Mapping[str, Any] | None, spec: DomainSpec) -> str | None:
    if not isinstance(raw, Mapping):
        return "the reply held no JSON object"
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        return f"steps must be a non-empty list of step names, got {steps!r}"
    allowed = spec.plans.allowed
    unknown = [s for s in steps if s not in allowed]
    if unknown:
        return f"unknown step {unknown[0]!r}; allowed: {', '.join(allowed)}"
    if len(set(steps)) != len(steps):
        return f"steps repeat: {steps}"
    if [allowed.index(s) for s in steps] != sorted(allowed.index(s) for s in steps):
        return f"steps out of order: {steps}; the order is {', '.join(allowed)}"
    missing = [s for s in required_steps(spec) if s not in steps]
    if missing:
        return f"missing required step {missing[0]!r}"
    if len(steps) > len(spec.plans.smart):
        return f"{len(steps)} steps, more than the Smart plan's {len(spec.plans.smart)}"
    for arg, (lo, hi) in arg_ranges(spec).items():
        value = raw.get(arg)
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{arg} must be an integer, got {value!r}"
        if not lo <= value <= hi:
            return f"{arg} {value} out of range [{lo}, {hi}]"
    extra = sorted(set(raw) - {"steps", "top_k", "graph_depth"})
    if extra:
        return f"unknown argument {extra[0]!r}"
    return None


def fast_plan(spec: DomainSpec, analysis: QueryAnalysis) -> MadePlan:
    """The Fast Path micro-plan (at most 3 steps, no LLM call), from what the question names.

    - A question naming CVE ids or bug numbers: the exact-id list answers it (it ignores
      the filters and comes first in fusion), so ``top_k`` drops to the range's low end.
    - A question naming several packages: ``top_k`` grows with their number (they share
      each list's candidates), up to the range's high end.
    - Otherwise the domain's micro-plan as written, with its defaults.
    """
    ranges = arg_ranges(spec)
    base = yaml_plan(spec, "fast", "the domain's micro-plan")
    if analysis.cves or analysis.bugs:
        return MadePlan(steps=base.steps, top_k=ranges["top_k"][0], graph_depth=base.graph_depth,
                        source="heuristic", why="named ids are matched exactly: fewer candidates suffice")
    if len(analysis.packages) >= 2:
        top_k = min(ranges["top_k"][1], spec.retrieval.top_k * len(analysis.packages))
        return MadePlan(steps=base.steps, top_k=top_k, graph_depth=base.graph_depth, source="heuristic",
                        why=f"{len(analysis.packages)} packages share the candidates: top_k {top_k}")
    return MadePlan(steps=base.steps, top_k=base.top_k, graph_depth=base.graph_depth, source="heuristic",
                    why="the domain's micro-plan: the question names no ids and at most one package")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionOutcome:
    """What one execution produced, as the check sees it.

    Attributes:
        steps_done: Steps ``execute`` ran.
        documents: The retrieved documents (state dicts: ``id``, ``ts``, ``text``, ``sources``).
        stats: Trend statistics, or None.
        missing_in_corpus: Named ids (``CVE-...``, ``#bug``) no document of the corpus
            holds: no plan can find them, so they do not fail the check.
    """

    steps_done: tuple[str, ...]
    documents: Sequence[Mapping[str, Any]]
    stats: Mapping[str, Any] | None
    missing_in_corpus: tuple[str, ...] = ()


def _holds(doc: Mapping[str, Any], name: str) -> bool:
    if name.startswith("#"):
        return name[1:] in doc.get("text", "")
    return name.upper() in doc.get("text", "").upper()


def check_execution(spec: DomainSpec, analysis: QueryAnalysis, steps: Sequence[str],
                    outcome: ExecutionOutcome, *, use_dates: bool) -> list[str]:
    """What the plan expected and the execution did not produce.

    Expectations: every planned step ran (``steps: ...``); at least
    ``plans.min_documents`` documents (``too_few: ...``); with the asked period in use,
    that many inside it (``out_of_period: ...``; exact id matches ignore the date filter);
    each named CVE or bug found in some document unless no entry holds it
    (``missing_id: ...``); figures computed when the plan has ``stats``: a statistics
    table whose current window is not empty (``no_figures: ...``).

    Returns:
        One line per failed expectation, each starting with its kind; empty: passed.
    """
    out: list[str] = []
    skipped = [s for s in steps if s not in outcome.steps_done]
    if skipped:
        out.append(f"steps: {', '.join(skipped)} did not run")
    docs = outcome.documents
    need = spec.plans.min_documents
    if len(docs) < need:
        out.append(f"too_few: {len(docs)} documents, expected >= {need}")
    dates = analysis.dates
    if use_dates and dates is not None and docs:
        inside = [d for d in docs if d.get("ts") and (dates.ts_from is None or d["ts"] >= dates.ts_from)
                  and (dates.ts_to is None or d["ts"] < dates.ts_to)]
        if len(inside) < min(need, len(docs)):
            out.append(f"out_of_period: {len(inside)} of {len(docs)} documents in {dates.label}")
    for name in [*analysis.cves, *(f"#{b}" for b in analysis.bugs)]:
        if name in outcome.missing_in_corpus:
            continue
        if not any(_holds(d, name) for d in docs):
            out.append(f"missing_id: {name} in none of {len(docs)} documents")
    if "stats" in steps:
        s = outcome.stats
        if not s:
            out.append("no_figures: no statistics were computed")
        elif (s.get("empty") or {}).get("current"):
            out.append(f"no_figures: the window {s['window']['from']}..{s['window']['to']} has no entries")
    return out


def repair_plan(spec: DomainSpec, steps: Sequence[str], args: Mapping[str, int], failures: Sequence[str], *,
                use_dates: bool, use_packages: bool, has_dates: bool,
                ) -> tuple[MadePlan, dict[str, bool]] | None:
    """The next plan after a failed check: it differs from the failed one in its steps or
    its arguments, or (only when those are at their limits) in its filters.

    In order, the first that applies:

    0. ``no_figures`` alone: None (the statistics step reads the document store by window;
       nothing retrieval does fills an empty window, and the answer names the newest
       entry before it);
    1. ``too_few`` / ``out_of_period`` while a filter is in use: the
       filter is exhausted (every retriever applies it, so more candidates cannot add
       entries): the date range is dropped, then the package filter;
    2. any failure with ``top_k`` below its range's high end: twice ``top_k`` (capped),
       and ``expand`` added where allowed and absent (``missing_id``: the exact-id list
       is cut at ``top_k``; ``quality``: the gate's replan after a failed checklist gives
       the drafts other entries);
    3. the same with ``graph_depth`` below its high end and ``expand`` in the plan: one
       hop deeper;
    4. otherwise the remaining filters widen as in 1.

    Args:
        spec: The domain.
        steps: The failed plan's steps.
        args: Its ``{"top_k", "graph_depth"}``.
        failures: :func:`check_execution`'s lines.
        use_dates / use_packages: Its filters.
        has_dates: The question names a period.

    Returns:
        ``(plan, {"use_dates", "use_packages"})``, or None when nothing is left to change.
    """
    kinds = {f.split(":", 1)[0] for f in failures}
    ranges = arg_ranges(spec)
    scope = {"use_dates": use_dates, "use_packages": use_packages}
    what = "; ".join(failures)[:200]
    top_k, depth = int(args["top_k"]), int(args["graph_depth"])

    def widen() -> tuple[MadePlan, dict[str, bool]] | None:
        if use_dates and has_dates:
            return MadePlan(steps=tuple(steps), top_k=top_k, graph_depth=depth, source="heuristic",
                            why=f"check failed ({what}): the date range is dropped"), {**scope, "use_dates": False}
        if use_packages:
            return MadePlan(steps=tuple(steps), top_k=top_k, graph_depth=depth, source="heuristic",
                            why=f"check failed ({what}): the package filter is dropped"), \
                {"use_dates": False, "use_packages": False}
        return None

    if kinds == {"no_figures"}:  # the statistics read the store by window, not the retrieved entries:
        return None  # no argument or filter of retrieval fills an empty window (the answer says so)
    if kinds & {"too_few", "out_of_period"} and (widened := widen()) is not None:
        return widened
    new_steps = list(steps)
    if "expand" in spec.plans.allowed and "expand" not in steps and len(steps) < len(spec.plans.smart):
        new_steps = sorted([*steps, "expand"], key=spec.plans.allowed.index)
    if top_k < ranges["top_k"][1]:
        wider = min(ranges["top_k"][1], top_k * 2)
        return MadePlan(steps=tuple(new_steps), top_k=wider, graph_depth=depth, source="heuristic",
                        why=f"check failed ({what}): top_k {top_k} -> {wider}"
                            + (", expand added" if new_steps != list(steps) else "")), scope
    if "expand" in new_steps and depth < ranges["graph_depth"][1]:
        return MadePlan(steps=tuple(new_steps), top_k=top_k, graph_depth=depth + 1, source="heuristic",
                        why=f"check failed ({what}): graph_depth {depth} -> {depth + 1}"), scope
    return widen()
