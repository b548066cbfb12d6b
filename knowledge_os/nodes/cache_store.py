"""Node ``cache_store``: keep a verified answer in the answer cache."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.cache.keys import stable_json
from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import services_of, timed
from knowledge_os.services import Services

__all__ = ["cache_store"]


@timed("cache_store")
async def cache_store(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Store the run's answer under the key, scope and signature ``cache_lookup`` computed
    at the start of the run, so an ingest during the run files the answer under the
    corpus generation it was made from (never served after that ingest).

    Async, and only the store's write (an embedding and a SQL write) goes to a worker
    thread: a run without an answer-cache key (cache off) makes no thread hand-off
    (``knowledge_os.nodes._common.timed``)."""
    cache = state.get("cache") or {}
    if not cache.get("key"):
        return {}
    await asyncio.to_thread(_store, state, services_of(runtime))
    return {}


def _store(state: State, services: Services) -> None:
    """Write the run's answer to the answer cache (blocking: runs on a worker thread)."""
    cache = state["cache"]
    key = cache["key"]
    services.answer_cache.put(
        key=key, scope=stable_json(state["scope"]), signature=cache["signature"],
        domain=state["domain"], query=state["query"],
        embedding=services.query_embedder.embed(state["analysis"]["text"] if state["analysis"].get("follows")
                                                else state["query"]),
        result={"run_id": state["run_id"], "domain": state["domain"], "path": state["path"],
                "route": state["route"], "answer": state["answer"], "citations": state["citations"],
                "quality": state["quality"]},
    )
