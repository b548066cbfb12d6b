"""The graph's schemas (what LangGraph Studio shows), per-run resets and the spend log."""

from __future__ import annotations

import asyncio
import typing

from langgraph.types import Overwrite

from knowledge_os.graph.state import (
    REDUCED_FIELDS,
    RUN_DEFAULTS,
    State,
    run_reset,
    run_timings,
    run_usage,
    usage_so_far,
)

AS_OF = "2026-11-22"


def test_input_output_and_context_schemas_build():
    from knowledge_os.graph.builder import graph

    inp = graph.get_input_jsonschema()
    assert inp["required"] == ["query"] and set(inp["properties"]) == {"query"}
    out = graph.get_output_jsonschema()
    assert {"answer", "citations", "route", "quality", "usage", "manifest"} <= set(out["properties"])
    route = out["$defs"]["RouteDecision"]
    assert set(route["properties"]["method"]["enum"]) == {"forced", "cache", "heuristic", "llm", "fallback", "thread"}
    ctx = graph.get_context_jsonschema()
    assert set(ctx["properties"]) == {"domain", "path", "persona", "as_of", "use_cache", "loops", "qos"}  # not services


def test_every_state_field_has_a_docstring_where_it_is_declared():
    import ast
    import inspect

    import knowledge_os.graph.state as module

    tree = ast.parse(inspect.getsource(module))
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in
                {"State", "RouteDecision", "Plan", "Candidate", "Quality", "QueryAnalysisState", "SpendEntry"}):
        body = cls.body
        for i, stmt in enumerate(body):
            if isinstance(stmt, ast.AnnAssign):
                nxt = body[i + 1] if i + 1 < len(body) else None
                assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), \
                    f"{cls.name}.{stmt.target.id} has no docstring"


def test_run_reset_covers_the_per_run_fields_and_overwrites_the_appended_ones():
    reset = run_reset()
    assert set(reset) == set(RUN_DEFAULTS)
    assert isinstance(reset["events"], Overwrite) and reset["events"].value == []
    assert isinstance(reset["spend"], Overwrite) and reset["spend"].value == []
    assert "history" not in reset  # kept across runs
    reset["documents"].append({"id": "x"})
    assert run_reset()["documents"] == []  # fresh copies, never the shared default
    assert set(RUN_DEFAULTS) <= set(State.__annotations__)


def test_spend_totals_count_only_the_runs_own_entries():
    spend = [
        {"run_id": "a", "node": "execute", "usage": {"llm_calls": 2, "steps": 4}, "timings_ms": {"execute": 9.0}},
        {"run_id": "b", "node": "route", "usage": {"steps": 1}, "timings_ms": {"route": 1.5}},
        {"run_id": "b", "node": "verify", "usage": {"steps": 1}, "timings_ms": {"verify": 0.25}},
    ]
    assert run_usage(spend, "b") == {"steps": 2}
    assert run_timings(spend, "b") == {"route": 1.5, "verify": 0.25}
    assert run_usage(spend, "a") == {"llm_calls": 2, "steps": 4}


def test_a_continued_thread_keeps_one_spend_log_per_run_and_a_replay_is_not_paid_again(kos_factory):
    kos = kos_factory(responses=["openssl fixed CVE-2026-28387 [1]."], cache={"answer_cache": False})
    first = kos.run("What changed in openssl since March?", as_of=AS_OF, thread_id="t-spend")
    again = kos.run("What changed in openssl since March?", as_of=AS_OF, thread_id="t-spend")

    async def values() -> dict:
        async with kos._graph() as graph:
            return (await graph.aget_state({"configurable": {"thread_id": "t-spend"}})).values

    state = asyncio.run(values())
    spend = state["spend"]
    assert {e["run_id"] for e in spend} == {first.run_id, again.run_id}
    replayed = [e for e in spend if e["run_id"] == first.run_id]
    assert [e["node"] for e in replayed] == ["execute"]  # brought back by the node cache
    assert replayed[0]["usage"]["llm_calls"] == 1
    assert again.usage.llm_calls == 0
    # paid now: one step per node that ran (execute was replayed, so neither it nor its plan steps)
    assert again.usage.steps == len(["cache_lookup", "route", "plan", "check", "verify", "rank", "cache_store",
                                     "finalize"])
    assert "execute" not in again.manifest["timings_ms"]
    assert [h["run_id"] for h in state["history"]] == [first.run_id, again.run_id]


def test_the_node_wrapper_writes_no_empty_events_and_keeps_raised_ones():
    from knowledge_os.nodes._common import timed

    @timed("quiet")
    async def quiet(state, runtime):
        return {"answer": "a", "events": []}

    @timed("loud")
    async def loud(state, runtime):
        return {"events": [{"type": "retry"}]}

    @timed("last", totals=True)
    async def last(state, runtime):
        return {"usage": {"llm_calls": 1}}

    state = {"run_id": "r", "spend": []}
    update = asyncio.run(quiet(state, None))
    assert "events" not in update  # nothing appended: no write, no new channel version
    assert (update["answer"], [(e["node"], e["usage"]) for e in update["spend"]]) == ("a", [("quiet", {"steps": 1})])
    assert "usage" not in update and "timings_ms" not in update  # totals: written by the run's last node only
    assert asyncio.run(loud(state, None))["events"] == [{"type": "retry"}]
    before = {"run_id": "r", "spend": update["spend"]}
    totals = asyncio.run(last(before, None))
    assert totals["usage"] == {"steps": 2, "llm_calls": 1} and set(totals["timings_ms"]) == {"quiet", "last"}
    assert usage_so_far({**before, "spend": [*before["spend"], *totals["spend"]]}) == totals["usage"]


def test_reduced_fields_are_the_states_fields_with_a_reducer():
    hints = typing.get_type_hints(State, include_extras=True)
    assert REDUCED_FIELDS == {k for k, t in hints.items() if typing.get_origin(t) is typing.Annotated}


def test_a_routed_node_chooses_its_next_node_on_the_state_after_its_update():
    from langgraph.types import Command, Overwrite

    from knowledge_os.graph.edges import routed
    from knowledge_os.graph.state import after_update

    state = {"run_id": "r", "answer": "old", "spend": [{"run_id": "r"}], "events": [{"type": "a"}]}
    update = {"answer": "new", "spend": [{"run_id": "r", "node": "x"}], "events": Overwrite([])}
    view = after_update(state, update)
    assert view["answer"] == "new" and len(view["spend"]) == 2 and view["events"] == []
    assert state["answer"] == "old" and len(state["spend"]) == 1  # the state itself is untouched

    async def node(state, runtime):
        return {"answer": "new"}

    async def edge(state) -> typing.Literal["a", "b"]:
        return "a" if state["answer"] == "new" else "b"

    out = asyncio.run(routed(node, edge)({"answer": "old"}, None))
    assert isinstance(out, Command) and out.goto == "a" and out.update == {"answer": "new"}
