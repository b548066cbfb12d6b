"""Node ``cache_store``: keep a verified answer in the answer cache."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.cache.keys import stable_json
from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import services_of, timed

__all__ = ["cache_store"]


@timed("cache_store")
def cache_store(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Store the run's answer under the key, scope and signature ``cache_lookup`` computed
    at the start of the run, so an ingest during the run files the answer under the
    corpus generation it was made from (never served after that ingest)."""
    services = services_of(runtime)
    cache = state.get("cache") or {}
    key = cache.get("key")
    if not key:
        return {}
    services.answer_cache.put(
        key=key, scope=stable_json(state["scope"]), signature=cache["signature"],
        domain=state["domain"], query=state["query"],
        embedding=services.query_embedder.embed(state["query"]),
        result={"run_id": state["run_id"], "domain": state["domain"], "path": state["path"],
                "route": state["route"], "answer": state["answer"], "citations": state["citations"],
                "quality": state["quality"]},
    )
    return {}
