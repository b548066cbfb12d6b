"""Node ``route``: the context router.

Heuristics first, from each domain's YAML: keyword hits (+1 each, at most 4), pattern
hits (+1.5 each, at most 3) and similarity to the YAML's example queries (a softmax over
domains of the best cosine similarity, temperature 0.02, times 2). Confidence is
``(top - second) / top``; for an LLM decision, the chosen domain's share of the
heuristic scores (the small model's own confidence is not meaningful). Below ``router.confidence_threshold`` the LLM is asked for a
JSON decision under a hard timeout (800 ms by default); if it fails or times out, the
best heuristic guess is used (method ``fallback``). Decisions are cached (TTL 1 h).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from knowledge_os.cache.keys import cache_key
from knowledge_os.errors import BackendError, BudgetExceededError
from knowledge_os.graph.state import Context, State
from knowledge_os.llm.calls import call_llm, parse_json_reply
from knowledge_os.nodes._common import analysis_from_state, budget_for, services_of, timed
from knowledge_os.services import Services

__all__ = ["heuristic_scores", "route"]

logger = logging.getLogger(__name__)

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_SMART_CUES = re.compile(
    r"\b(compare|comparison|versus|vs\.?|why|explain|difference|relationship|related)\b|"
    r"(сравни|сравнение|почему|объясни|разница|связ)", re.IGNORECASE
)
SIM_TEMPERATURE = 0.02


def heuristic_scores(services: Services, query: str) -> dict[str, float]:
    """Heuristic score per domain (>= 0), from keywords, patterns and example similarity."""
    lowered = query.lower()
    words = _WORD_RE.findall(lowered)
    scores: dict[str, float] = {}
    for spec in services.domains:
        kw = 0
        for k in spec.routing.keywords:
            k = k.lower()
            if (" " in k and k in lowered) or any(w.startswith(k) for w in words):
                kw += 1
        pat = sum(1 for p in spec.routing.patterns if re.search(p, query, re.IGNORECASE))
        scores[spec.name] = min(kw, 4) * 1.0 + min(pat, 2) * 1.5
    sims = _example_similarity(services, query)
    if sims:
        names = list(sims)
        v = np.array([sims[n] for n in names]) / SIM_TEMPERATURE
        p = np.exp(v - v.max())
        p /= p.sum()
        for n, pn in zip(names, p, strict=True):
            scores[n] = scores.get(n, 0.0) + 2.0 * float(pn)
    return {k: round(v, 4) for k, v in scores.items()}


def _example_similarity(services: Services, query: str) -> dict[str, float]:
    examples = services.example_embeddings()
    if not examples:
        return {}
    q = services.retrieval.embed_query(query)
    return {name: float(np.max(mat @ q)) for name, mat in examples.items() if len(mat)}


def _confidence(scores: dict[str, float]) -> tuple[str, float]:
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    top_name, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    return top_name, (round((top - second) / top, 4) if top > 0 else 0.0)


def _ask_llm(services: Services, query: str, usage: dict[str, int]) -> tuple[str | None, dict[str, int]]:
    """The LLM's pick of a domain (JSON-schema constrained) or None if it gave none.

    Only the name is asked for: a 135M model's self-reported confidence is noise, and
    every output token costs time against the 800 ms budget.
    """
    names = services.domains.names()
    schema = {"type": "object", "properties": {"domain": {"type": "string", "enum": names}},
              "required": ["domain"]}
    # Short and fixed, the query last: prompt evaluation (~125 tokens/s on one core for
    # SmolLM2-135M) dominates the budget, and llama.cpp reuses a cached prefix.
    menu = "; ".join(f"{d.name} = {d.description}" for d in services.domains)
    messages = [SystemMessage(f"Domains: {menu} Answer in JSON."), HumanMessage(query)]
    reply = call_llm(
        services.chat_model, messages, usage=usage, budget=budget_for(services, None),
        json_schema=schema, max_tokens=16, timeout_s=services.settings.router.llm_timeout_ms / 1000,
    )
    data = parse_json_reply(reply.text)
    domain = data.get("domain") if data else None
    return (domain if domain in names else None), reply.usage()


@timed("route")
def route(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    services = services_of(runtime)
    ctx = runtime.context
    analysis = analysis_from_state(state)
    rs = services.settings.router
    events: list[dict[str, Any]] = []
    usage: dict[str, int] = {}
    if ctx is not None and ctx.domain:
        spec = services.domains.get(ctx.domain)
        decision = {"domain": spec.name, "method": "forced", "confidence": 1.0, "scores": {}}
    else:
        key = cache_key("router", {"prompt": services.settings.llm.prompt_version, "query": state["query"]})
        decision = services.router_cache.get(key)
        if decision is not None:
            decision = {**decision, "method": "cache"}
        else:
            scores = heuristic_scores(services, state["query"])
            best, confidence = _confidence(scores)
            decision = {"domain": best, "method": "heuristic", "confidence": confidence, "scores": scores}
            if confidence < rs.confidence_threshold:
                try:
                    llm, usage = _ask_llm(services, state["query"], dict(state.get("usage", {})))
                except (BackendError, BudgetExceededError) as exc:
                    logger.info("router LLM unavailable (%s); using the heuristic guess", exc)
                    llm = None
                    events.append({"type": "fallback_used", "where": "route", "error": str(exc)[:200]})
                if llm is not None:
                    total = sum(scores.values())
                    share = round(scores.get(llm, 0.0) / total, 4) if total else 0.0
                    decision = {**decision, "domain": llm, "confidence": share, "method": "llm"}
                else:
                    decision = {**decision, "method": "fallback"}
            services.router_cache.set(key, decision)
    spec = services.domains.get(decision["domain"])
    if ctx is not None and ctx.path:
        path = ctx.path
    elif (spec.important or len(analysis.packages) >= 2
          or len(state["query"].split()) >= rs.smart_path_min_words
          or _SMART_CUES.search(state["query"])):
        path = "smart"
    else:
        path = "fast"
    decision = {**decision, "path": path, "qos": "thorough" if path == "smart" else "interactive"}
    return {"route": decision, "domain": spec.name, "path": path, "usage": usage, "events": events}
