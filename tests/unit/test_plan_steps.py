"""executed_steps: the seed's agent steps (plan steps run, over every plan of a run)."""

from __future__ import annotations

from knowledge_os.nodes.plan import executed_steps


def test_agent_steps_count_the_plan_steps_run_over_every_plan() -> None:
    assert executed_steps(None) == 0 and executed_steps({}) == 0  # an answer-cache hit plans nothing
    fast = {"steps": ["retrieve", "group", "summarise"], "done": ["retrieve", "group", "summarise"]}
    assert executed_steps(fast) == 3
    stopped = {"steps": ["retrieve", "expand", "group", "summarise"], "done": ["retrieve"]}  # a budget stopped it
    assert executed_steps(stopped) == 1
    replanned = {"steps": ["retrieve", "group", "summarise"], "done": ["retrieve", "group", "summarise"],
                 "earlier": [{"steps": ["retrieve", "group", "summarise"], "done": ["retrieve", "group", "summarise"]},
                             {"steps": ["retrieve"]}]}  # an older manifest's entry without "done" counts 0
    assert executed_steps(replanned) == 6
