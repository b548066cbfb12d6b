"""Trajectory checks (agentevals' sense): the node path a run took through the graph.

A trajectory is the list of ``{"node": name, ...}`` steps streamed by
``KnowledgeOS.astream``; ``cache_lookup`` steps carry ``hit`` and ``rank`` steps carry
``passed``. The rules come from the graph's edges (knowledge_os/graph/edges.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["is_subsequence", "path_matches", "rule_violations"]


def is_subsequence(expected: Sequence[str], actual: Sequence[str]) -> bool:
    """Whether ``expected`` occurs in ``actual`` in order (gaps allowed)."""
    it = iter(actual)
    return all(any(a == e for a in it) for e in expected)


def path_matches(expected: Sequence[str], actual: Sequence[str], *, mode: str = "exact") -> bool:
    """``mode="exact"``: the same node sequence; ``"subsequence"``: ``expected`` in order within it.

    Raises:
        ValueError: an unknown mode.
    """
    if mode == "exact":
        return list(expected) == list(actual)
    if mode == "subsequence":
        return is_subsequence(expected, actual)
    raise ValueError(f"path_match must be 'exact' or 'subsequence', got {mode!r}")


def rule_violations(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """Graph rules a trajectory breaks (empty list: none).

    Rules: an answer-cache hit goes straight to ``finalize``; a passing ``rank`` goes to
    ``cache_store``; a failing ``rank`` never goes to ``cache_store``; ``correct`` runs at
    most once and is followed by ``verify`` then ``rank``; the run ends with ``finalize``.
    """
    nodes = [s["node"] for s in steps]
    out: list[str] = []
    for i, step in enumerate(steps):
        nxt = nodes[i + 1] if i + 1 < len(nodes) else None
        if step["node"] == "cache_lookup" and step.get("hit") and nxt != "finalize":
            out.append(f"cache hit followed by {nxt!r}, not 'finalize'")
        if step["node"] == "rank" and step.get("passed") is True and nxt != "cache_store":
            out.append(f"passing rank followed by {nxt!r}, not 'cache_store'")
        if step["node"] == "rank" and step.get("passed") is False and nxt == "cache_store":
            out.append("failing rank followed by 'cache_store'")
        if step["node"] == "correct" and nodes[i + 1:i + 3] != ["verify", "rank"]:
            out.append(f"correct followed by {nodes[i + 1:i + 3]}, not ['verify', 'rank']")
    if nodes.count("correct") > 1:
        out.append(f"correct ran {nodes.count('correct')} times")
    if not nodes or nodes[-1] != "finalize":
        out.append("the run did not end with 'finalize'")
    return out
