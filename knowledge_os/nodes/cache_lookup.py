"""Node ``cache_lookup``: start a run, analyse the query, try the answer cache."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from knowledge_os.cache.keys import cache_key, stable_json
from knowledge_os.cache.signature import question_signature
from knowledge_os.graph.state import Context, State, run_reset
from knowledge_os.nodes._common import as_of, services_of, timed
from knowledge_os.retrieval.query import QueryAnalysis, analyze_query, follow_up
from knowledge_os.services import Services

__all__ = ["analysis_signature", "answer_cache_scope", "cache_lookup"]


def answer_cache_scope(services: Services, ctx: Context | None, day: str, *,
                       persona: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything besides the query that an answer depends on: prompt version, answer mode
    (``llm.answer_mode``), domain YAMLs, models, forced domain/path, the persona profile
    (``persona``: its name and version, ``ResolvedPersona.scope()``; free text that matched
    no profile counts as none), the as-of day and the corpus generation
    (``DocumentStore.generation()``, bumped by every ingest that changed documents), so
    no answer is served after an ingest that changed the corpus, and the common names of
    packages (``corpus.names``: they decide which package "the kernel" asks about).

    The QoS level the caller asked for (``Context.qos``; None: the router picks it from the
    query and domain, so the same query gets the same level) is part of the scope: an
    answer made under a smaller level's budgets (fewer LLM calls, no Smart Path) must not
    be served to a ``thorough`` request. The other direction (a thorough answer to an
    interactive request) would be safe, but each level keeps its own entries."""
    s = services.settings
    return {
        "prompt": s.llm.prompt_version,
        "answer_mode": s.llm.answer_mode,
        "domains": services.domains_fingerprint,
        "llm": services.model_name(),
        "embedder": services.embedder.name,
        "domain": ctx.domain if ctx else None,
        "path": ctx.path if ctx else None,
        "qos": ctx.qos if ctx else None,
        "persona": dict(persona) if persona else None,
        "as_of": day,
        "corpus": services.docstore.generation(),
        "names": services.settings.corpus.names,
    }


def analysis_signature(a: QueryAnalysis, channels: Mapping[str, str]) -> str:
    """The near-hit signature key of an analysed question
    (:func:`knowledge_os.cache.signature.question_signature`).

    Args:
        a: The question's analysis.
        channels: The corpus's names -> channel (``Services.channels()``).
    """
    return question_signature(
        a.text, lang=a.lang, cves=a.cves, bugs=a.bugs, packages=a.packages,
        date_range=(a.dates.ts_from, a.dates.ts_to) if a.dates else None,
        known_names=channels,
    ).key()


def previous_question(state: State, services: Services, today: Any) -> QueryAnalysis | None:
    """The thread's previous question as it was read (its ``read_as``, else as asked), or
    None for a thread's first run."""
    history = state.get("history") or []
    if not history:
        return None
    last = history[-1]
    return analyze_query(last.get("read_as") or last["query"], channels=services.channels(), as_of=today)


@timed("cache_lookup")
def cache_lookup(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    services = services_of(runtime)
    ctx = runtime.context
    today = as_of(runtime)
    analysis = follow_up(analyze_query(state["query"], channels=services.channels(), as_of=today),
                         previous_question(state, services, today))
    use_cache = ctx is None or ctx.use_cache
    persona = services.personas.resolve(ctx.persona) if ctx is not None and ctx.persona else None
    scope = answer_cache_scope(services, ctx, today.isoformat(), persona=persona.scope() if persona else None)
    update: dict[str, Any] = {
        **run_reset(),
        "run_id": str(uuid.uuid4()),
        "use_cache": use_cache,
        "scope": scope,
        "corpus": scope["corpus"],
        "started_at": time.time(),
        "analysis": dataclasses.asdict(analysis),
        "persona": persona.state() if persona else None,
    }
    if not (use_cache and services.settings.cache.answer_cache):
        return update
    # a follow-up's answer depends on the question it follows: its key names both
    key = cache_key("answer", {**scope, "query": state["query"], **({"follows": analysis.follows}
                                                                    if analysis.follows else {})})
    update["cache"] = {"hit": False, "kind": None, "key": key}
    cached = services.answer_cache.get_exact(key)
    # 1.0, or an alias's (a question served by a near hit before) similarity to the answered one
    similarity = float(cached.get("near_similarity", 1.0)) if cached is not None else 1.0
    kind = "exact"
    signature = None  # an exact hit needs none (its key matched): not computed, ~0.5 ms saved
    if cached is None:
        signature = analysis_signature(analysis, services.channels())
        update["cache"]["signature"] = signature
        near = services.answer_cache.get_near(
            scope=stable_json(scope),
            signature=signature,
            embed=lambda: services.query_embedder.embed(analysis.text if analysis.follows else state["query"]),
            thresholds={d.name: d.cache.near_hit_threshold for d in services.domains},
            alias=(key, state["query"]),  # asked again, this question is an exact hit: no embedding
        )
        if near is None:
            return update
        cached, similarity = near
        kind = "near"
    update.update(
        domain=cached["domain"],
        path=cached["path"],
        route={"domain": cached["domain"], "method": "cache", "confidence": round(similarity, 4),
               "path": cached["path"], "qos": cached["route"].get("qos")},
        answer=cached["answer"],
        citations=cached["citations"],
        quality=cached["quality"],
        cache={"hit": True, "kind": kind, "key": key,
               **({"signature": signature} if signature is not None else {}),
               "similarity": round(similarity, 4),
               "source_run_id": cached.get("run_id")},
        events=Overwrite([{"type": "cache_hit", "kind": kind}]),
    )
    return update
