"""Wire the Knowledge OS graph. Logic lives in ``knowledge_os.nodes``.

::

    START -> cache_lookup --hit--> finalize -> END
                 | miss
                 v
               route -> plan -> execute -> check -> verify -> rank --ok--> cache_store -> finalize
                         ^  ^                 |           ^        |
                         |  +--- replan ------+ (the      +-correct+ (once, below the threshold)
                         |       execution failed its plan's check, while budget lasts)
                         +------ replan ---------------------------+ (Smart Path, while budget lasts)

``execute`` has a LangGraph node cache (``CachePolicy``) keyed through
:func:`knowledge_os.cache.keys.execute_node_key`. ``builder`` is importable so tests can compile it with their own checkpointer; the module
ends by compiling ``graph`` for ``langgraph dev`` (LangGraph Studio), which supplies its
own persistence.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from knowledge_os.cache.keys import execute_node_key
from knowledge_os.cache.node_cache import BoundedMemoryCache

from knowledge_os.graph.edges import route_after_cache_lookup, route_after_check, route_after_rank
from knowledge_os.graph.state import Context, InputState, OutputState, State
from knowledge_os.nodes.cache_lookup import cache_lookup
from knowledge_os.nodes.cache_store import cache_store
from knowledge_os.nodes.check import check
from knowledge_os.nodes.correct import correct
from knowledge_os.nodes.execute import execute
from knowledge_os.nodes.finalize import finalize
from knowledge_os.nodes.plan import plan
from knowledge_os.nodes.rank import rank
from knowledge_os.nodes.route import route
from knowledge_os.nodes.verify import verify
from knowledge_os.settings import CacheSettings

__all__ = ["EXECUTE_CACHE_TTL_S", "builder", "graph"]

EXECUTE_CACHE_TTL_S = 3600  # node cache of `execute`: retrieval + drafts, 1 h like the other caches

builder = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
builder.add_node("cache_lookup", cache_lookup)
builder.add_node("route", route)
builder.add_node("plan", plan)
builder.add_node("execute", execute, cache_policy=CachePolicy(key_func=execute_node_key, ttl=EXECUTE_CACHE_TTL_S))
builder.add_node("check", check)
builder.add_node("verify", verify)
builder.add_node("rank", rank)
builder.add_node("correct", correct)
builder.add_node("cache_store", cache_store)
builder.add_node("finalize", finalize)

builder.add_edge(START, "cache_lookup")
builder.add_conditional_edges("cache_lookup", route_after_cache_lookup)
builder.add_edge("route", "plan")
builder.add_edge("plan", "execute")
builder.add_edge("execute", "check")
builder.add_conditional_edges("check", route_after_check)
builder.add_edge("verify", "rank")
builder.add_conditional_edges("rank", route_after_rank)
builder.add_edge("correct", "verify")
builder.add_edge("cache_store", "finalize")
builder.add_edge("finalize", END)

graph = builder.compile(name="knowledge_os",
                        cache=BoundedMemoryCache(max_entries=CacheSettings().node_max_entries))
