"""Node ``cache_store``: keep a verified answer in the answer cache."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from knowledge_os.cache.keys import stable_json
from knowledge_os.graph.state import Context, State
from knowledge_os.nodes._common import analysis_from_state, as_of, services_of, timed
from knowledge_os.nodes.cache_lookup import analysis_signature, answer_cache_scope

__all__ = ["cache_store"]


@timed("cache_store")
def cache_store(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    services = services_of(runtime)
    key = (state.get("cache") or {}).get("key")
    if not key:
        return {}
    scope = answer_cache_scope(services, runtime.context, as_of(runtime).isoformat())
    services.answer_cache.put(
        key=key, scope=stable_json(scope), signature=analysis_signature(analysis_from_state(state)),
        domain=state["domain"], query=state["query"],
        embedding=services.retrieval.embed_query(state["query"]),
        result={"run_id": state["run_id"], "domain": state["domain"], "path": state["path"],
                "route": state["route"], "answer": state["answer"], "citations": state["citations"],
                "quality": state["quality"]},
    )
    return {}
