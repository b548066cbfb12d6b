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

The three choices are made by ``knowledge_os.graph.edges`` right after their node (a
``Command``), not as LangGraph conditional edges. ``execute`` has a LangGraph node cache (``CachePolicy``) keyed through
:func:`knowledge_os.cache.keys.execute_node_key`. ``builder`` is importable so tests can compile it with their own checkpointer; the module
ends by compiling ``graph`` for ``langgraph dev`` (LangGraph Studio), which supplies its
own persistence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from knowledge_os.cache.keys import execute_node_key
from knowledge_os.cache.node_cache import BoundedMemoryCache

from knowledge_os.graph.edges import (
    destinations,
    route_after_cache_lookup,
    route_after_check,
    route_after_rank,
    routed,
)
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

__all__ = ["EDGES", "EXECUTE_CACHE_TTL_S", "NODES", "builder", "graph", "wire"]

EXECUTE_CACHE_TTL_S = 3600  # node cache of `execute`: retrieval + drafts, 1 h like the other caches

NODES = {"cache_lookup": cache_lookup, "route": route, "plan": plan, "execute": execute, "check": check,
         "verify": verify, "rank": rank, "correct": correct, "cache_store": cache_store, "finalize": finalize}
"""The graph's nodes by name (each wrapped by ``knowledge_os.nodes._common.timed``)."""

EDGES = {"cache_lookup": route_after_cache_lookup, "check": route_after_check, "rank": route_after_rank}
"""The nodes whose next node is chosen (``knowledge_os.graph.edges``), by node name."""


def wire(graph: StateGraph, nodes: Mapping[str, Any]) -> StateGraph:
    """Add ``nodes`` (name -> node function, the names of :data:`NODES`) and the edges
    drawn above to ``graph``; a node of :data:`EDGES` is :func:`~knowledge_os.graph.edges.routed`
    through its edge, with the edge's destinations declared. Returns ``graph``."""
    for name, fn in nodes.items():
        edge = EDGES.get(name)
        policy = {"cache_policy": CachePolicy(key_func=execute_node_key, ttl=EXECUTE_CACHE_TTL_S)} if name == "execute" else {}
        if edge is None:
            graph.add_node(name, fn, **policy)
        else:
            graph.add_node(name, routed(fn, edge), destinations=destinations(edge), **policy)
    graph.add_edge(START, "cache_lookup")
    for src, dst in (("route", "plan"), ("plan", "execute"), ("execute", "check"), ("verify", "rank"),
                     ("correct", "verify"), ("cache_store", "finalize"), ("finalize", END)):
        graph.add_edge(src, dst)
    return graph


builder = wire(StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState), NODES)

graph = builder.compile(name="knowledge_os",
                        cache=BoundedMemoryCache(max_entries=CacheSettings().node_max_entries))
