"""QoS levels: which budgets bound a run, picked by the router or asked for by the caller.

The seed (``shared/seeds/002``, "QoS") routes each request to a level whose budgets bound
it. Here there are three levels, each with its LLM calls, tokens, agent steps and wall
time (``Settings.qos``):

- ``interactive``: a short Fast Path question (fewer than ``qos.standard_min_words`` words),
- ``standard``: a longer Fast Path question, or one on an ``important`` domain,
- ``thorough``: a Smart Path question.

A run's budget is the smaller of its domain's (or the settings') budget and its level's
(:func:`knowledge_os.nodes._common.budget_for`). A Smart Path run whose level cannot
pay for the Smart Path (fewer than ``qos.smart_path_min_llm_calls`` LLM calls or
``qos.smart_path_min_steps`` steps) takes the Fast Path instead, and its route says why
(``route.qos_fallback``).
"""

from __future__ import annotations

from typing import Any, Literal

from knowledge_os.errors import InputError
from knowledge_os.settings import QoSLevelSettings, Settings

__all__ = ["QOS_LEVELS", "QoSLevel", "check_qos", "choose_qos", "level_settings"]

QoSLevel = Literal["interactive", "standard", "thorough"]
QOS_LEVELS: tuple[str, ...] = ("interactive", "standard", "thorough")


def check_qos(qos: str | None) -> str | None:
    """``qos`` if it names a level (or is None).

    Raises:
        InputError: an unknown level, listing the allowed ones.
    """
    if qos is not None and qos not in QOS_LEVELS:
        raise InputError(f"qos must be one of {', '.join(QOS_LEVELS)}, got {qos!r}")
    return qos


def level_settings(settings: Settings, qos: str | None) -> QoSLevelSettings | None:
    """The budgets of level ``qos`` (None for None or an unknown name)."""
    return getattr(settings.qos, qos) if qos in QOS_LEVELS else None


def choose_qos(*, settings: Settings, query: str, path: str, important: bool,
               asked: str | None, path_forced: bool) -> dict[str, Any]:
    """The QoS part of a route decision.

    Args:
        settings: ``qos`` levels and thresholds.
        query: The question (its word count picks interactive or standard).
        path: The path the router chose, ``fast`` or ``smart``.
        important: The domain is ``important`` (its YAML).
        asked: The level the caller asked for (``Context.qos``), or None.
        path_forced: The caller forced the path; it is kept even if the level is small.

    Returns:
        ``{"path", "qos", "qos_method"}`` (``qos_method``: ``asked`` or ``router``), plus
        ``qos_fallback`` (one sentence) when a Smart Path run fell back to the Fast Path.
    """
    q = settings.qos
    if asked is not None:
        level, method = asked, "asked"
    elif path == "smart":
        level, method = "thorough", "router"
    elif important or len(query.split()) >= q.standard_min_words:
        level, method = "standard", "router"
    else:
        level, method = "interactive", "router"
    out: dict[str, Any] = {"path": path, "qos": level, "qos_method": method}
    budgets = level_settings(settings, level)
    if path == "smart" and not path_forced and budgets is not None and (
            budgets.max_llm_calls < q.smart_path_min_llm_calls or budgets.max_steps < q.smart_path_min_steps):
        out["path"] = "fast"
        out["qos_fallback"] = (
            f"QoS level {level} allows {budgets.max_llm_calls} LLM calls and {budgets.max_steps} steps; the Smart "
            f"Path needs {q.smart_path_min_llm_calls} and {q.smart_path_min_steps}, so the Fast Path answered")
    return out
