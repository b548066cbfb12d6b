"""Node ``rank``: self-ranking of at most two drafts by grounding, the checklist and a
pairwise judgement by the LLM.

The seed (``shared/seeds/002``, section 5, "Self-ranking: at most 2 candidates, only on
the Smart Path or for important channels") is followed like this:

1. Every draft is ordered by :func:`rank_key` (grounded, passed the checklist, score,
   fewer issues, written by the model, earlier). The first two compete; any other draft
   is out (the limit of 2). A replan keeps earlier drafts in ``candidates``, so the best
   earlier draft and the new one are among them.
2. An ungrounded draft never wins over a grounded one, and a draft that passes the
   checklist beats one that fails it: when the two differ there, that decides and the
   judge is not asked.
3. Otherwise, on the Smart Path or for a domain marked ``important``, the LLM judges the
   pair under a JSON schema ("which answer better answers the question from the cited
   entries"), twice with the order swapped. Both orders naming the same draft make it
   the winner; a disagreement, a tie or an unusable reply is a tie.
4. A tie goes to the better-grounded draft (fewer ungrounded claims, then more claims
   traced to the data: :func:`grounding_of`), then the higher score.

The judgement costs two LLM calls from the run's budget (``knowledge_os/qos.py`` caps
it); with no room for them (plus one for a correction that may follow) the pair is
ranked by the key alone and the judgement says so. ``rank.judge: false`` in the settings
turns the judge off (for measuring what it adds).

What the user reads never carries an ungrounded claim: when no draft is grounded (and
the run's loops are on), the answer is the summary written from the data alone, with the
one-line notice, while ``best`` still points at the best draft so that ``correct`` can
work on it. Each ranking appends a :class:`~knowledge_os.graph.state.Judgement` to
``judgements``; ``finalize`` writes the last one to the manifest as ``rank.judgement``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from knowledge_os.domains.checks import cited_numbers, claim_issues
from knowledge_os.domains.compose import compose_answer, fallback_summary
from knowledge_os.domains.steps import CHOOSE_DOC_CHARS, render_context
from knowledge_os.errors import BackendError, BackendUnavailableError, BudgetExceededError
from knowledge_os.graph.state import Context, Judgement, JudgeOrder, State
from knowledge_os.llm.budget import Budget, merge_usage
from knowledge_os.llm.calls import call_llm, parse_json_reply
from knowledge_os.nodes._common import as_of, budget_for, services_of, timed
from knowledge_os.nodes.execute import step_context
from knowledge_os.nodes.verify import check_input, quality_threshold, score_candidate

__all__ = ["JUDGE_SCHEMA", "citations_for", "grounding_of", "judge_pair", "rank", "rank_key", "verdict_of"]

logger = logging.getLogger(__name__)

JUDGE_CALLS = 2  # both orders
JUDGE_REASON_CHARS = 160

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["better", "reason"],
    "properties": {
        "better": {"type": "string", "enum": ["A", "B", "tie"]},
        "reason": {"type": "string", "maxLength": JUDGE_REASON_CHARS},
    },
}
"""The judge's reply: which answer is better (``A``, ``B`` or ``tie``) and one short reason."""

_JUDGE_SYSTEM = (
    "You compare two answers to a question about Debian changelog entries. Judge only by the "
    "numbered entries: the better answer answers the question, and every version, id, date and "
    "package it names is in the entries it cites. Reply in JSON."
)
_JUDGE_USER = (
    "Question: {query}\nEntries:\n{context}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\n"
    "Which answer better answers the question from the cited entries: A, B or tie?"
)


def citations_for(candidate: dict[str, Any], documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents a draft cites, in ``[n]`` order, as public citation dicts."""
    by_id = {d["id"]: d for d in documents}
    cited = sorted(set(cited_numbers(candidate["answer"])))
    out = []
    for n in cited:
        if 1 <= n <= len(candidate["citations"]) and candidate["citations"][n - 1] in by_id:
            d = by_id[candidate["citations"][n - 1]]
            out.append({"n": n, "id": d["id"], "title": d["title"], "score": d["score"],
                        "metadata": {"channel": d["channel"], "date": d["date"], **d["metadata"]}})
    return out


def rank_key(candidate: dict[str, Any], index: int) -> tuple[bool, bool, float, int, int, int]:
    """Sort key, larger is better: grounded, passed, score, fewer issues, written by
    the model rather than from the data, earlier."""
    q = candidate["quality"]
    return (q.get("grounded", True), q["passed"], q["score"], -len(q["issues"]),
            0 if candidate.get("data_only") else 1, -index)


def grounding_of(state: State, candidate: dict[str, Any], spec: Any, today: str | None) -> tuple[int, int]:
    """How well a draft is grounded: ``(traced, ungrounded)`` claim counts of its summary
    (:func:`knowledge_os.domains.checks.claim_issues` over the domain's claim kinds, the
    same evidence ``verify`` uses). A tie goes to fewer ungrounded, then more traced."""
    x = check_input(state, candidate, claim_kinds=tuple(spec.grounding.claims), today=today)
    n, issues = claim_issues(x)
    return n - len(issues), len(issues)


def verdict_of(text: str) -> tuple[str | None, str]:
    """The judge's verdict in a reply: ``("A" | "B" | "tie", reason)``, or ``(None, why)``
    when the reply is no JSON object of :data:`JUDGE_SCHEMA` (junk counts as a tie)."""
    reply = parse_json_reply(text)
    better = reply.get("better") if reply else None
    if not isinstance(better, str) or better.strip().upper() not in ("A", "B", "TIE"):
        return None, f"unusable reply: {text.strip()[:80]!r}"
    reason = reply.get("reason") if isinstance(reply.get("reason"), str) else ""  # type: ignore[union-attr]
    value = better.strip().upper()
    return ("tie" if value == "TIE" else value), reason[:JUDGE_REASON_CHARS]


def _judge_room(budget: Budget, usage: dict[str, int], reserve: int) -> str | None:
    """None when the budget pays for both judge calls plus ``reserve`` later calls, else why not."""
    try:
        budget.check(merge_usage(usage, {"llm_calls": JUDGE_CALLS - 1 + reserve}), next_call=True)
    except BudgetExceededError as exc:
        return f"budget: {exc.budget} (limit {exc.limit}) has no room for {JUDGE_CALLS} judge calls" + (
            f" and {reserve} more" if reserve else "")
    return None


def judge_pair(ctx: Any, query: str, listing: list[dict[str, Any]], first: dict[str, Any],
               second: dict[str, Any], *, max_tokens: int) -> tuple[list[JudgeOrder], list[dict[str, Any]]]:
    """Ask the judge twice, ``first`` as A then ``second`` as A.

    Args:
        ctx: The run's :class:`~knowledge_os.domains.steps.StepContext` (chat model,
            budget, usage: updated with each call's spend, timings).
        query: The question.
        listing: The entries the drafts cite, in ``[n]`` order.
        first, second: The two drafts (``summary`` is what the judge reads).
        max_tokens: Completion cap per call. Each call is also cut off at the run's
            QoS deadline (``Budget.deadline``): a timed-out call is no verdict.

    Returns:
        ``(orders, events)``: one :class:`JudgeOrder` per call (``preferred``: 0 for
        ``first``, 1 for ``second``, None for a tie or no verdict) and error events. A
        failed call or an unusable reply is no verdict (a tie).

    Raises:
        BackendUnavailableError: the model's server cannot be reached (an outage fails
            the run, as it does in ``summarise``).
    """
    context = render_context(listing, chars=CHOOSE_DOC_CHARS) or "(no entries)"
    orders: list[JudgeOrder] = []
    events: list[dict[str, Any]] = []
    for swap in (False, True):
        a, b = (second, first) if swap else (first, second)
        user = _JUDGE_USER.format(query=query, context=context, a=a["summary"], b=b["summary"])
        verdict: str | None = None
        try:
            deadline = ctx.budget.deadline  # the QoS level's wall time: the judge never runs past it
            reply = call_llm(ctx.chat_model, [SystemMessage(_JUDGE_SYSTEM), HumanMessage(user)],
                             usage=ctx.usage, budget=ctx.budget, json_schema=JUDGE_SCHEMA,
                             max_tokens=max_tokens,
                             timeout_s=max(0.001, deadline - time.time()) if deadline is not None else None)
            ctx.note_usage(reply.usage())
            ctx.timings_ms[f"llm.judge.{int(swap)}"] = reply.latency_ms
            verdict, reason = verdict_of(reply.text)
        except BudgetExceededError as exc:
            reason = f"budget: {exc.budget}"
            ctx.note_usage({"budget_exceeded": 1})
            events.append({"type": "budget_exceeded", "budget": exc.budget, "where": "rank"})
        except BackendUnavailableError:
            raise  # an outage fails the run (resumable from its checkpoint), as in summarise
        except BackendError as exc:
            logger.warning("judge LLM call failed: %s", exc)
            reason = f"error: {str(exc)[:120]}"
            events.append({"type": "error", "where": "rank", "error": str(exc)[:300]})
        preferred = None
        if verdict in ("A", "B"):
            preferred = (0 if verdict == "A" else 1) ^ int(swap)
        orders.append({"a": 1 if swap else 0, "verdict": verdict, "preferred": preferred, "reason": reason})
    return orders, events


def _listing_of(state: State, *cands: dict[str, Any]) -> list[dict[str, Any]]:
    by_id = {d["id"]: d for d in state.get("documents") or []}
    ids = list(dict.fromkeys(i for c in cands for i in c["citations"]))
    return [by_id[i] for i in ids if i in by_id]


def _data_only_answer(state: State, runtime: Runtime[Context], draft: dict[str, Any]) -> dict[str, Any]:
    """The data-written candidate for ``draft``'s listing (no LLM), scored by verify's rules."""
    ctx = step_context(state, runtime)
    by_id = {d["id"]: d for d in ctx.documents}
    listing = [by_id[i] for i in draft["citations"] if i in by_id]
    summary = fallback_summary(ctx, listing)
    cand = {"answer": compose_answer(ctx, summary, listing, notice="rejected"), "summary": summary,
            "citations": draft["citations"], "variant": draft.get("variant", 0), "data_only": True,
            "mode": "data"}
    return score_candidate(state, cand, ctx.spec, quality_threshold(services_of(runtime), ctx.spec),
                           today=ctx.as_of.isoformat())


def _skip_reason(state: State, runtime: Runtime[Context], spec: Any, a: dict[str, Any],
                 b: dict[str, Any]) -> str | None:
    """Why the judge is not asked about ``a`` and ``b`` (None: ask it)."""
    services = services_of(runtime)
    qa, qb = a["quality"], b["quality"]
    if not services.settings.rank.judge:
        return "judge off (rank.judge)"
    if state.get("path") != "smart" and not spec.important:
        return "Fast Path on a domain not marked important"
    if qa.get("grounded", True) != qb.get("grounded", True):
        return "grounding decides: an ungrounded draft never wins over a grounded one"
    if not qa.get("grounded", True):
        return "neither draft is grounded"
    if qa["passed"] != qb["passed"]:
        return "checklist decides: one draft passes, the other fails"
    if a.get("data_only") or b.get("data_only"):
        return "a draft written from the data alone"
    if a["summary"].strip() == b["summary"].strip():
        return "identical drafts"
    return None


@timed("rank")
async def rank(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Rank the drafts. Runs on the event loop; only the judge's LLM calls go to a worker
    thread."""
    cands = state["candidates"]
    order = sorted(range(len(cands)), key=lambda i: rank_key(cands[i], i), reverse=True)
    best = order[0]
    update: dict[str, Any] = {}
    judgement: Judgement | None = None
    if len(order) >= 2:
        i, j = order[0], order[1]
        services = services_of(runtime)
        spec = services.domains.get(state["domain"])
        judgement = {"pair": [i, j], "asked": False, "orders": [], "agree": None, "winner": i,
                     "decided_by": "key", "why": ""}
        skip = _skip_reason(state, runtime, spec, cands[i], cands[j])
        if skip is None:
            ctx = step_context(state, runtime)
            both_pass = cands[i]["quality"]["passed"]
            reserve = 0 if both_pass or state.get("corrected") else 1  # a correction may follow
            skip = _judge_room(budget_for(services, spec, state), ctx.usage, reserve)
        if skip is not None:
            judgement["why"] = skip
            judgement["decided_by"] = "grounding" if skip.startswith("grounding") else (
                "checklist" if skip.startswith("checklist") else "key")
        else:
            before = dict(ctx.usage)
            orders, events = await asyncio.to_thread(
                judge_pair, ctx, state.get("query") or state["analysis"]["text"],
                _listing_of(state, cands[i], cands[j]), cands[i], cands[j],
                max_tokens=services.settings.rank.judge_max_tokens)
            picks = [o["preferred"] for o in orders]
            agree = picks[0] is not None and picks[0] == picks[1]
            judgement.update(asked=True, orders=orders, agree=agree)
            if agree:
                best = (i, j)[picks[0]]  # type: ignore[index]
                judgement.update(winner=best, decided_by="judge",
                                 why=f"both orders prefer candidate {best}: {orders[0]['reason']}")
            else:
                today = as_of(runtime).isoformat()
                gi, gj = grounding_of(state, cands[i], spec, today), grounding_of(state, cands[j], spec, today)
                tie_i = (-gi[1], gi[0], *rank_key(cands[i], i)[2:])
                tie_j = (-gj[1], gj[0], *rank_key(cands[j], j)[2:])
                best = i if tie_i >= tie_j else j
                by = "grounding" if (gi[1], gi[0]) != (gj[1], gj[0]) else "score"
                judgement.update(winner=best, decided_by=f"tie: {by}",
                                 why=(f"the orders disagree or tie ({picks[0]}, {picks[1]}); traced/ungrounded "
                                      f"claims {gi} vs {gj}; the better-{'grounded' if by == 'grounding' else 'scored'} "
                                      f"draft wins"))
            delta = {k: v - before.get(k, 0) for k, v in ctx.usage.items() if v != before.get(k, 0)}
            judgement["usage"] = delta
            update.update(usage=delta, timings_ms=dict(ctx.timings_ms), events=events)
        update["judgements"] = [*(state.get("judgements") or []), judgement]
    chosen = cands[best]
    shown = chosen
    loops = runtime.context.loops if runtime is not None and runtime.context is not None else True
    if not chosen["quality"].get("grounded", True) and loops:
        shown = _data_only_answer(state, runtime, chosen)
    quality = {k: chosen["quality"][k] for k in ("score", "passed", "issues")}
    quality["grounded"] = shown["quality"].get("grounded", True)
    quality["data_only"] = bool(shown.get("data_only"))
    quality["mode"] = shown.get("mode", "prose")
    if shown is not chosen:
        quality["rejected"] = chosen["quality"].get("ungrounded", [])
    return {
        **update,
        "best": best,
        "answer": shown["answer"],
        "citations": citations_for(shown, state.get("documents", [])),
        "quality": quality,
    }
