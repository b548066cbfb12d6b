"""Node ``finalize``: the unified manifest, episodic events and metrics.

The episodic events of a run are written once, keyed by its run id, even when the node
runs again (a queued job retried after finalize ran).

The manifest holds references only (ids, hashes, counts, timings, decisions) and is at
most :data:`MANIFEST_MAX_BYTES`; it is part of the state, so it is stored with the run's
checkpoint and can be read back from the thread.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

import knowledge_os
from knowledge_os.cache.normalizer import backend as hash_backend
from knowledge_os.cache.normalizer import normalize_and_hash
from knowledge_os.graph.state import Context, State, replayed_spend, run_totals
from knowledge_os.memory.base import EpisodicEvent
from knowledge_os.nodes._common import budget_for, services_of, timed
from knowledge_os.nodes.plan import executed_steps

__all__ = ["MANIFEST_MAX_BYTES", "build_manifest", "finalize"]

logger = logging.getLogger(__name__)

MANIFEST_MAX_BYTES = 100_000
MANIFEST_SCHEMA = "kos.manifest/1"


def _rank_record(state: State) -> dict[str, Any]:
    """``rank.judgement``: the last ranking of the run (both judge orders, the winner, why);
    ``rank.earlier``: the rankings before it (after a correction or a replan)."""
    judgements = state.get("judgements") or []
    return {"judgement": judgements[-1] if judgements else None, "earlier": judgements[:-1]}


def build_manifest(state: State, *, thread_id: str | None, services: Any, limits: dict[str, int]) -> dict[str, Any]:
    """The run's manifest (references only), trimmed to fit MANIFEST_MAX_BYTES.

    ``usage`` and ``timings_ms`` count only the spend this run paid (its entries in the
    spend log); nodes replayed from the node cache are listed in ``cache.node_hits`` with
    the run that computed them (``cache.execute_run_id``). When the manifest is over the
    limit, the document list is halved (best first) until it fits and ``truncated`` is set.
    """
    docs = state.get("documents") or []
    run = state["run_id"]
    spend = state.get("spend") or []
    cache = dict(state.get("cache") or {})
    replayed = replayed_spend(spend, run)
    usage, timings = run_totals(spend, run)
    if replayed:  # nodes replayed from the node cache: their spend belongs to the run that computed them
        cache["node_hits"] = sorted({e["node"] for e in replayed})
        cache["execute_run_id"] = next((e["run_id"] for e in replayed if e["node"] == "execute"), None)
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "run_id": state["run_id"],
        "thread_id": thread_id,
        "query_hash": normalize_and_hash(state["query"]),
        "answer_hash": normalize_and_hash(state.get("answer") or ""),
        "started_at": state.get("started_at"),
        "finished_at": time.time(),
        "versions": {
            "knowledge_os": knowledge_os.__version__,
            "hash_backend": hash_backend(),
            "llm": services.model_name(),
            "embedder": services.embedder.name if state.get("documents") or state.get("cache", {}).get("hit") else None,
            "prompt": services.settings.llm.prompt_version,
        },
        "cache": cache,
        "route": state.get("route") or {},
        "plan": state.get("plan") or {},
        "analysis": {**{k: state["analysis"][k] for k in ("cves", "bugs", "packages", "dates")},
                     # a follow-up: the question it continues, and how it was read
                     **({"follows": f, "read_as": state["analysis"]["text"]}
                        if (f := state["analysis"].get("follows")) else {})},
        "documents": [
            {"id": d["id"], "hash": d.get("content_hash"), "score": d["score"], "sources": d["sources"]}
            for d in docs
        ],
        "citations": [c["id"] for c in state.get("citations") or []],
        "candidates": [
            {"variant": c.get("variant"), "score": c.get("quality", {}).get("score"),
             "corrected": bool(c.get("corrected")), "carried": bool(c.get("carried")),
             "answer_hash": normalize_and_hash(c["answer"])}
            for c in state.get("candidates") or []
        ],
        "rank": _rank_record(state),
        "persona": {k: v for k, v in (state.get("persona") or {}).items()
                    if k in ("asked", "method", "name", "version", "similarity", "note")} or None,
        "counts": {"documents": len(docs), "citations": len(state.get("citations") or []),
                   "candidates": len(state.get("candidates") or []), "events": len(state.get("events") or [])},
        "quality": state.get("quality") or {},
        "usage": usage,
        "budget": limits,
        "timings_ms": timings,
        "replans": state.get("replans", 0),
        "corrected": state.get("corrected", False),
        "fallback_used": state.get("fallback_used", False),
    }
    while len(orjson.dumps(manifest)) > MANIFEST_MAX_BYTES and manifest["documents"]:
        manifest["documents"] = manifest["documents"][: len(manifest["documents"]) // 2]
        manifest["truncated"] = True
    return manifest


@timed("finalize", totals=True)
async def finalize(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    services = services_of(runtime)
    thread_id = (get_config().get("configurable") or {}).get("thread_id")
    spec = services.domains.get(state["domain"]) if state.get("domain") in services.domains else None
    b = budget_for(services, spec, state)
    limits = {"llm_calls": b.max_llm_calls, "tokens": b.max_tokens, "steps": b.max_steps}
    manifest = build_manifest(state, thread_id=thread_id, services=services, limits=limits)
    run = state["run_id"]
    usage = manifest["usage"]  # spent before finalize; the run's result adds finalize's own step
    latency_s = time.time() - state.get("started_at", time.time())
    quality = state.get("quality") or {}
    route = state.get("route") or {}
    hit = (state.get("cache") or {}).get("hit")
    services.metrics.observe_run(
        domain=state.get("domain", "none"), path=state.get("path", "fast"),
        route_method=route.get("method", "none"), status="ok" if quality.get("passed") else "low_quality",
        latency_s=latency_s, usage=usage, limits=limits,
        quality=quality.get("score"), timings_ms=manifest["timings_ms"],
        cache_outcome="hit" if hit else "miss", qos=route.get("qos"),
        budgets_exceeded=[e.get("budget", "") for e in state.get("events") or [] if e.get("type") == "budget_exceeded"],
        agent_steps=executed_steps(state.get("plan")),
    )
    events = [EpisodicEvent(type="run_started", entity_type="run", entity_id=run,
                            metadata={"thread_id": thread_id, "query_hash": manifest["query_hash"]})]
    raised = state.get("events") or []
    cap = services.settings.storage.run_events_max
    if len(raised) > cap:
        manifest["counts"]["events_dropped"] = len(raised) - cap
    for e in raised[:cap]:
        events.append(EpisodicEvent(type=e.get("type", "error"), entity_type="run", entity_id=run,
                                    metadata={k: v for k, v in e.items() if k != "type"}))
    events.append(EpisodicEvent(
        type="run_completed", entity_type="run", entity_id=run,
        metadata={"domain": state.get("domain"), "path": state.get("path"), "route": route.get("method"),
                  "quality": quality.get("score"), "latency_s": round(latency_s, 3),
                  "usage": usage},
    ))
    try:
        memory = await services.episodic_memory()
        # Idempotent by run id: a queued job retried after this node ran (its checkpoint
        # write failed, its worker died) runs it again; the events went in one transaction
        # ending with run_completed, so that event says they are all there (checked and
        # written in one call: EpisodicMemory.record_once).
        if await memory.record_once(events, done_type="run_completed"):
            services.metrics.observe_events_written(len(events))
        else:
            logger.info("run %s: episodic events already written by an earlier attempt; not written again", run)
    except Exception as exc:  # memory must never lose the answer; the failure is logged
        logger.warning("episodic memory write failed: %s", exc)
    entry = {"run_id": run, "query": state["query"], "domain": state.get("domain"),
             "answer": state.get("answer", "")[:2000]}
    if (state.get("analysis") or {}).get("follows"):
        entry["read_as"] = state["analysis"]["text"]
    history = [*(state.get("history") or []), entry][-services.settings.storage.thread_history_max:]
    return {"manifest": manifest, "history": Overwrite(history)}
