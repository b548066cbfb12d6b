"""Framework overhead without LLM and retrieval, against a bare LangGraph graph.

Both graphs have the same nodes and edges and the same checkpointer: the one
``KnowledgeOS`` runs with by default (``SqliteSaverInThreads`` from
``knowledge_os.graph.checkpointer``, ``durability="sync"``: every step committed before
the next one starts), each in a temporary folder. Ours runs its real node code (async, as the bare graph's) with the LLM replaced by a fake that
answers at once and retrieval by a stub that returns 10 fixed documents; the bare graph's
nodes return small state updates and do nothing else. Goal: <= 1.2x (issue 13; the
main-job issue's was 1.5x).

Each run is timed twice: wall time, and CPU time of the whole process
(``time.process_time``, the checkpointer's and the worker threads' included). On a shared
machine wall time is mostly waiting for a core (each checkpoint write and each sync node
is a hand-off to another thread), which both graphs pay alike and which hides the
difference; CPU time is the work each graph makes. The load average is printed.

Then each graph runs half as many times streamed (``stream_mode="updates"``) for a table
of process CPU per step, ours vs bare. ``--floor`` adds a third graph to the timed runs:
the bare nodes on our schemas carrying the state one of our runs ends with
(:func:`floor_graph`), what LangGraph's handling of our state costs without node work.
``--phases`` adds that graph and a fourth, ours with each node's update replayed from a
recorded run (:func:`replay_graph`: our wrappers, edges and writes without our node
code), and prints where ours' CPU goes, phase by phase (each row the difference of two
interleaved graphs' p50), with each node's own code timed inside its wrapper.

``--thread-runs N`` then runs each graph N times on one thread (every other table uses a
new thread per run): ours carries the thread's ``history`` (up to
``storage.thread_history_max`` finished runs, each answer up to 2,000 characters);
``--answer-chars`` makes the fake's answer that long. The checkpointer stores a long list
such as the history once per channel version (``checkpoint_blobs``), so a thread's
checkpoints no longer grow with it. ``--older-layout`` adds both graphs on the
checkpointer as it was before (:class:`OlderLayoutSaver`: the whole state in every
checkpoint row) to the timed runs and the thread table, interleaved.

The timed rounds run the graphs in turn, the order reversed every other round: a run pays
for the garbage and cache misses the run before it left, and with ours always before bare
about 1 ms of ours' cost landed in bare's runs (the same saver change measured +1.1 or
-1.1 ms for one graph depending on the order).

Figures (load average 1.7-1.9, the machine shared): ``--runs 150 --older-layout``, two
runs: ours 21.29 vs bare 13.53 ms CPU p50, 1.57x (paired 1.52x), and 25.17 vs 16.73,
1.50x (paired 1.44x); on the older layout in the same runs 1.54x and 1.48x (ours 2-3 %
less CPU there). ``--runs 20 --thread-runs 60 --answer-chars 2000 --older-layout``: ours
per block of 10 runs 30.2, 26.5, 30.1, 29.3, 39.5, 27.4 ms, ratio 1.74x -> 1.74x; on the
older layout 29.7 -> 32.9 ms, 2.09x, 1.86x, 2.03x, 1.79x, 1.90x, 1.99x. With ours' three
choices made as ``Command``s and the bare graph choosing the same way (2026-12-02, a slower
machine, load 0.8-0.9), ``--runs 150`` twice: 32.38 vs 22.35 ms, 1.45x (paired 1.43x), and
28.99 vs 20.02, 1.45x (paired 1.42x); ``--conditional-edges`` 1.41x (paired 1.37x), where
the code before gave 1.52x (paired 1.50x).

    .venv/bin/python benchmarks/bench_overhead.py [--runs 200] [--floor] [--phases]
        [--thread-runs 60 --answer-chars 2000] [--older-layout] [--conditional-edges]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command  # noqa: E402

from knowledge_os.graph.builder import NODES as OUR_NODES  # noqa: E402
from knowledge_os.graph.builder import builder  # noqa: E402
from knowledge_os.graph.builder import wire as wire_ours  # noqa: E402
from knowledge_os.graph.checkpointer import SqliteSaverInThreads, open_sqlite_saver  # noqa: E402
from knowledge_os.graph.state import Context, InputState, OutputState, State  # noqa: E402
from knowledge_os.nodes._common import timed  # noqa: E402
from knowledge_os.retrieval.base import Document  # noqa: E402
from knowledge_os.retrieval.service import RetrievalResult, RetrievedDocument  # noqa: E402
from knowledge_os.services import Services, reset_services  # noqa: E402
from knowledge_os.settings import Settings  # noqa: E402
from tests.fakes import HashEmbedder, MemoryVectorStore  # noqa: E402

APRIL_2026 = 1_775_001_600  # 2026-04-01 00:00 UTC: the stub entries are "since March" of AS_OF
AS_OF = "2026-11-22"
DOCS = [
    Document(id=f"deb:pkg:{i}", channel="pkg", title=f"pkg 1.{i}", text=f"pkg 1.{i}\n  * Fix bug {i}. Closes: #{1000 + i}",
             ts=APRIL_2026 + i * 86400, source="debian",
             metadata={"package": "pkg", "version": f"1.{i}", "date": f"2026-04-{i + 1:02d}"}, entities=("package:pkg",),
             content_hash=f"h{i}")
    for i in range(10)
]
"""Entries of the asked package and period, so that our run passes its checks in one pass
(cache_lookup, route, plan, execute, verify, rank, cache_store, finalize), the path the
bare graph takes; entries outside the period would make it replan and run twice."""


class StubRetrieval:
    def __init__(self, embedder: HashEmbedder) -> None:
        self._e = embedder

    def embed_query(self, text: str):  # noqa: ANN201
        return self._e.embed_query(text)

    def retrieve(self, req: Any) -> RetrievalResult:
        return RetrievalResult(documents=[RetrievedDocument(document=d, score=0.5, sources=("vector",)) for d in DOCS])


class OlderLayoutSaver(SqliteSaverInThreads):
    """The checkpointer before ``checkpoint_blobs`` (``--older-layout``): LangGraph's
    ``SqliteSaver`` rows, the whole state in each checkpoint, with our async wrappers."""

    get_tuple = SqliteSaver.get_tuple
    list = SqliteSaver.list
    put = SqliteSaver.put
    delete_thread = SqliteSaver.delete_thread


def older_layout_saver(home: Path) -> OlderLayoutSaver:
    home.mkdir(parents=True)
    saver = OlderLayoutSaver(sqlite3.connect(str(home / "checkpoints.db"), check_same_thread=False))
    saver.setup()
    return saver


class Bare(TypedDict, total=False):
    query: str
    answer: str
    n: int


NODES = ("cache_lookup", "route", "plan", "execute", "check", "verify", "rank", "correct", "cache_store", "finalize")


CHOICES = {"cache_lookup": ("route", ("route", "finalize")), "check": ("verify", ("plan", "verify")),
           "rank": ("cache_store", ("cache_store", "correct", "plan", "finalize"))}
"""The nodes followed by a choice: (the next node our run takes, the choices)."""

CONDITIONAL_EDGES = False
"""``--conditional-edges``: the bare graphs choose with LangGraph conditional edges, not as
ours does (a ``Command`` from the node, ``knowledge_os.graph.edges.routed``)."""


def wire(g: StateGraph, node: Any) -> StateGraph:
    """Our graph's nodes and edges (knowledge_os/graph/builder.py) on ``g``, each node
    ``node(name)``, taking the path our run takes. A choice is made as ours makes it: the
    node returns ``Command(update, goto)``, its destinations declared; with
    :data:`CONDITIONAL_EDGES`, by a conditional edge (async like ours were: a plain one
    would cost a worker-thread hop each)."""
    def edge(target: str):  # noqa: ANN202
        async def fn(state: Any) -> str:
            return target
        return fn

    def choosing(fn: Any, target: str):  # noqa: ANN202
        async def chosen(state: Any) -> Command:
            return Command(update=await fn(state), goto=target)
        return chosen

    for name in NODES:
        if name in CHOICES and not CONDITIONAL_EDGES:
            target, choices = CHOICES[name]
            g.add_node(name, choosing(node(name), target), destinations=choices)
        else:
            g.add_node(name, node(name))
    g.add_edge(START, "cache_lookup")
    if CONDITIONAL_EDGES:
        for name, (target, choices) in CHOICES.items():
            g.add_conditional_edges(name, edge(target), list(choices))
    for src, dst in (("route", "plan"), ("plan", "execute"), ("execute", "check"), ("verify", "rank"),
                     ("correct", "verify"), ("cache_store", "finalize"), ("finalize", END)):
        g.add_edge(src, dst)
    return g


def bare_graph() -> StateGraph:
    """Our graph's nodes and edges, each node returning a small update and nothing else."""
    def node(name: str):  # noqa: ANN202
        async def fn(state: Bare) -> dict[str, Any]:
            return {"n": state.get("n", 0) + 1, "answer": name}
        return fn

    return wire(StateGraph(Bare), node)


def floor_graph(first_update: dict[str, Any]) -> StateGraph:
    """The bare graph on our schemas (``State``, ``Context``, the input and output
    schemas), its first node writing ``first_update`` (the state one of our runs ends
    with) and every other node only ``answer``: what LangGraph's handling of our state
    costs without any node work, a floor no cut in our nodes goes below."""
    def node(name: str):  # noqa: ANN202
        async def fn(state: State) -> dict[str, Any]:
            return {**first_update, "answer": name} if name == "cache_lookup" else {"answer": name}
        return fn

    return wire(StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState), node)


def rewrapped_graph(inner: Any) -> StateGraph:
    """Our graph (``graph/builder.py``: schemas, edges, the ``timed`` wrapper) with each
    node's undecorated function passed through ``inner(name, fn)`` before it is wrapped."""
    g = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    return wire_ours(g, {name: timed(name, totals=name == "finalize")(inner(name, fn.__wrapped__))
                         for name, fn in OUR_NODES.items()})


def replay_graph(recorded: dict[str, dict[str, Any]]) -> StateGraph:
    """Ours with each node's update replayed from ``recorded`` (node name -> the update
    its function returned in one of our runs, before the wrapper): the wrappers, edges,
    writes and checkpoints of our run without our node code (nor its thread hand-offs:
    the replaying functions are async)."""
    def inner(name: str, fn: Any):  # noqa: ANN202
        async def replayed(state: State, runtime: Any) -> dict[str, Any]:
            return dict(recorded[name])
        return replayed

    return rewrapped_graph(inner)


def node_cpu_graph(out: dict[str, list[float]], recorded: dict[str, dict[str, Any]] | None = None) -> StateGraph:
    """Ours with each node's own code timed: process CPU ms of the undecorated function
    (in its worker thread for a plain one) appended to ``out[name]``; with ``recorded``,
    the first update of each node is kept there (for :func:`replay_graph`)."""
    def inner(name: str, fn: Any):  # noqa: ANN202
        def keep(update: dict[str, Any], c: float) -> dict[str, Any]:
            out.setdefault(name, []).append((time.process_time() - c) * 1000)
            if recorded is not None:
                recorded.setdefault(name, dict(update))
            return update

        if asyncio.iscoroutinefunction(fn):
            async def timed_async(state: State, runtime: Any) -> dict[str, Any]:
                c = time.process_time()
                return keep(await fn(state, runtime), c)
            return timed_async

        def timed_sync(state: State, runtime: Any) -> dict[str, Any]:
            c = time.process_time()
            return keep(fn(state, runtime), c)
        return timed_sync

    return rewrapped_graph(inner)


async def timed_runs(graph: Any, runs: int, context: Context | None,
                     thread: str | None = None) -> list[tuple[float, float]]:
    """``(wall ms, process CPU ms)`` of each of ``runs`` runs on new threads (or all on
    ``thread``)."""
    out = []
    for i in range(runs):
        cfg = {"configurable": {"thread_id": thread or f"t{time.perf_counter_ns()}-{i}"}}
        t, c = time.perf_counter(), time.process_time()
        if context is None:
            await graph.ainvoke({"query": "What changed in pkg since March?"}, config=cfg, durability="sync")
        else:
            await graph.ainvoke({"query": "What changed in pkg since March?"}, config=cfg, context=context,
                               durability="sync")
        out.append(((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000))
    return out


async def step_cpu(graph: Any, runs: int, context: Context | None) -> dict[str, list[float]]:
    """Process CPU ms of each step, by node name, over ``runs`` runs streamed with
    ``stream_mode="updates"``: the CPU from one node's update to the next one's (the
    previous step's checkpoint, LangGraph's preparation of this step, the node, its
    writes), the first node's counted from the call."""
    out: dict[str, list[float]] = {}
    kwargs = {} if context is None else {"context": context}
    for i in range(runs):
        cfg = {"configurable": {"thread_id": f"s{time.perf_counter_ns()}-{i}"}}
        c = time.process_time()
        async for chunk in graph.astream({"query": "What changed in pkg since March?"}, config=cfg,
                                         stream_mode="updates", durability="sync", **kwargs):
            now = time.process_time()
            for name in chunk:
                out.setdefault(name, []).append((now - c) * 1000)
            c = now
    return out


async def main_async(runs: int, floor: bool = False, phases: bool = False, thread_runs: int = 0,
                     answer_chars: int = 0, older_layout: bool = False) -> None:
    floor = floor or phases
    answer = "pkg fixed bugs [1] and [2]."
    if answer_chars > len(answer):
        answer = (answer + " ") * (answer_chars // (len(answer) + 1)) + answer
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / ".kos")
        embedder = HashEmbedder()
        services = Services(settings, chat_model=FakeListChatModel(responses=[answer]),
                            embedder=embedder, vector_store=MemoryVectorStore())
        services.__dict__["retrieval"] = StubRetrieval(embedder)
        services.docstore.upsert(DOCS)
        reset_services(services)
        context = Context(services=services, use_cache=False, as_of=AS_OF)
        saver_a, saver_b = open_sqlite_saver(settings), open_sqlite_saver(Settings(home=Path(tmp) / "bare"))
        older = [older_layout_saver(Path(tmp) / n) for n in ("ours-older", "bare-older")] if older_layout else []
        try:
            ours = builder.compile(checkpointer=saver_a)
            bare = bare_graph().compile(checkpointer=saver_b)
            await timed_runs(ours, 10, context)
            await timed_runs(bare, 10, None)
            ours_old = bare_old = None
            if older:
                ours_old, bare_old = builder.compile(checkpointer=older[0]), bare_graph().compile(checkpointer=older[1])
                await timed_runs(ours_old, 10, context)
                await timed_runs(bare_old, 10, None)
            low = None
            if floor:
                cfg = {"configurable": {"thread_id": "floor-source"}}
                await ours.ainvoke({"query": "What changed in pkg since March?"}, config=cfg, context=context,
                                   durability="sync")
                end = dict((await ours.aget_state(cfg)).values)
                for name in ("query", "spend", "events", "history"):  # the input; the reducers' logs
                    end.pop(name, None)
                low = floor_graph(end).compile(checkpointer=saver_b)
                await timed_runs(low, 10, context)
            replay = None
            node_cpu: dict[str, list[float]] = {}
            if phases:
                recorded: dict[str, dict[str, Any]] = {}
                await timed_runs(node_cpu_graph({}, recorded).compile(checkpointer=saver_a), 1, context)
                replay = replay_graph(recorded).compile(checkpointer=saver_a)
                await timed_runs(replay, 10, context)
                instrumented = node_cpu_graph(node_cpu).compile(checkpointer=saver_a)
                await timed_runs(instrumented, 10, context)
                node_cpu.clear()
            a: list[tuple[float, float]] = []
            b: list[tuple[float, float]] = []
            f: list[tuple[float, float]] = []
            r: list[tuple[float, float]] = []
            ao: list[tuple[float, float]] = []
            bo: list[tuple[float, float]] = []
            sequence: list[tuple[list[tuple[float, float]], Any, Context | None]] = [
                (a, ours, context), (b, bare, None)]
            if ours_old is not None:
                sequence += [(ao, ours_old, context), (bo, bare_old, None)]
            if low is not None:
                sequence.append((f, low, context))
            if replay is not None:
                sequence += [(r, replay, context), ([], instrumented, context)]
            for i in range(runs):  # interleaved, so load on the machine hits all alike; the order
                # reversed every other round, so none always runs after the same one (a run
                # pays for garbage and cache misses the one before left: up to ~1 ms here)
                for out, graph, ctx in (sequence if i % 2 == 0 else sequence[::-1]):
                    out += await timed_runs(graph, 1, ctx)
            steps_a: dict[str, list[float]] = {}
            steps_b: dict[str, list[float]] = {}
            for _ in range(max(runs // 2, 1)):
                for name, v in (await step_cpu(ours, 1, context)).items():
                    steps_a.setdefault(name, []).extend(v)
                for name, v in (await step_cpu(bare, 1, None)).items():
                    steps_b.setdefault(name, []).extend(v)
            on_thread: list[tuple[float, ...]] = []
            graphs = [(g, c) for g, c in ((ours, context), (bare, None), (ours_old, context), (bare_old, None)) if g]
            for i in range(thread_runs):  # interleaved, one thread per graph, every other round reversed
                order = range(len(graphs)) if i % 2 == 0 else range(len(graphs) - 1, -1, -1)
                row = [0.0] * len(graphs)
                for j in order:
                    row[j] = (await timed_runs(graphs[j][0], 1, graphs[j][1], thread="one-thread"))[0][1]
                on_thread.append(tuple(row))
            history = ((await ours.aget_state({"configurable": {"thread_id": "one-thread"}})).values.get("history")
                       if thread_runs else None) or []
        finally:
            for saver in (saver_a, saver_b, *older):
                saver.close()
        services.close()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
          f"{'; the bare graphs choose by conditional edges' if CONDITIONAL_EDGES else ''}")
    print(f"{'graph':24} {'wall p50':>9} {'wall p95':>9} {'CPU p50':>9} {'CPU p95':>9}  (ms)")
    rows = {}
    for name, times in (("knowledge_os (stubbed)", a), ("bare langgraph", b), ("bare, our state", f),
                        ("ours, updates replayed", r), ("ours, older layout", ao), ("bare, older layout", bo)):
        if not times:
            continue
        cols = [sorted(t[k] for t in times) for k in (0, 1)]
        rows[name] = [(statistics.median(c), c[int(0.95 * runs)]) for c in cols]
        print(f"{name:24} " + " ".join(f"{p50:9.2f} {p95:9.2f}" for p50, p95 in rows[name]))
    ours_r, bare_r = rows["knowledge_os (stubbed)"], rows["bare langgraph"]
    ratios = [ours_r[k][j] / bare_r[k][j] for k in (0, 1) for j in (0, 1)]
    print(f"{'ratio':24} " + " ".join(f"{r:8.2f}x" for r in ratios) + "   (goal <= 1.2x)")
    paired = [statistics.median(x[k] / y[k] for x, y in zip(a, b, strict=True)) for k in (0, 1)]
    print(f"{'paired ratio p50':24} {paired[0]:8.2f}x {'':9} {paired[1]:8.2f}x"
          "            (median of ours/bare over the interleaved pairs)")
    if ao:
        old_r = [rows["ours, older layout"][k][j] / rows["bare, older layout"][k][j] for k in (0, 1) for j in (0, 1)]
        print(f"{'ratio, older layout':24} " + " ".join(f"{x:8.2f}x" for x in old_r)
              + "   (both graphs on the checkpointer before checkpoint_blobs)")
        print(f"{'ours: blobs/older':24} " + " ".join(f"{ours_r[k][j] / rows['ours, older layout'][k][j]:8.2f}x"
                                                     for k in (0, 1) for j in (0, 1)))
    if f:
        low_r = rows["bare, our state"]
        print(f"{'floor ratio':24} " + " ".join(f"{low_r[k][j] / bare_r[k][j]:8.2f}x" for k in (0, 1) for j in (0, 1))
              + "   (bare nodes carrying our state / bare)")
    if r:
        cpu = {k: v[1][0] for k, v in rows.items()}  # CPU p50 of each graph
        own = {name: statistics.median(v) for name, v in node_cpu.items()}
        print(f"\nwhere ours' CPU goes, ms per run (p50 differences of the interleaved graphs; load"
              f" {os.getloadavg()[0]:.2f})")
        for label, ms in (
                ("LangGraph + checkpointer, bare state (bare)", cpu["bare langgraph"]),
                ("our 31-field state carried (floor - bare)", cpu["bare, our state"] - cpu["bare langgraph"]),
                ("our writes, wrapper, edges (replayed - floor)", cpu["ours, updates replayed"] - cpu["bare, our state"]),
                ("our node code + thread hops (ours - replayed)", cpu["knowledge_os (stubbed)"] - cpu["ours, updates replayed"]),
                ("  of which node code, summed p50s", sum(own.values()))):
            print(f"  {label:48} {ms:7.2f}")
        print("  node code by node, p50 ms: " + ", ".join(f"{n} {v:.3f}" for n, v in own.items()))
    print(f"\nprocess CPU per step, p50 ms ({max(runs // 2, 1)} runs streamed; a step: the node, its writes"
          " and the checkpoint before it)")
    print(f"{'node':14} {'ours':>7} {'bare':>7} {'ours-bare':>9}")
    total = [0.0, 0.0]
    for name in steps_b:
        pa, pb = statistics.median(steps_a.get(name, [0.0])), statistics.median(steps_b[name])
        total[0] += pa
        total[1] += pb
        print(f"{name:14} {pa:7.2f} {pb:7.2f} {pa - pb:9.2f}")
    for name in steps_a.keys() - steps_b.keys():
        print(f"{name:14} {statistics.median(steps_a[name]):7.2f} {'-':>7}")
    print(f"{'sum of p50s':14} {total[0]:7.2f} {total[1]:7.2f} {total[0] - total[1]:9.2f}")
    if on_thread:
        print(f"\n{thread_runs} runs of each graph on one thread, process CPU p50 ms per block of 10 runs"
              f" (answers of {len(answer)} characters; history at the end: {len(history)} entries)")
        print(f"{'runs':10} {'ours':>7} {'bare':>7} {'ratio':>7}"
              + (f" {'ours old':>9} {'bare old':>9} {'ratio':>7}   (older layout)" if older else ""))
        for lo in range(0, thread_runs, 10):
            block = on_thread[lo:lo + 10]
            p50 = [statistics.median(x[i] for x in block) for i in range(len(block[0]))]
            line = f"{lo + 1:4d}-{lo + len(block):<5d} {p50[0]:7.2f} {p50[1]:7.2f} {p50[0] / p50[1]:6.2f}x"
            if older:
                line += f" {p50[2]:9.2f} {p50[3]:9.2f} {p50[2] / p50[3]:6.2f}x"
            print(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--floor", action="store_true",
                    help="also time the bare nodes on our schemas carrying our state (floor_graph)")
    ap.add_argument("--phases", action="store_true",
                    help="also time ours with its node updates replayed and print where ours' CPU goes")
    ap.add_argument("--thread-runs", type=int, default=0,
                    help="also run each graph this many times on one thread (ours' history grows)")
    ap.add_argument("--answer-chars", type=int, default=0, help="length of the fake LLM's answer, characters")
    ap.add_argument("--older-layout", action="store_true",
                    help="also run both graphs on the checkpointer before checkpoint_blobs (OlderLayoutSaver)")
    ap.add_argument("--conditional-edges", action="store_true",
                    help="the bare graphs choose with LangGraph conditional edges instead of a Command, as ours did")
    args = ap.parse_args()
    global CONDITIONAL_EDGES
    CONDITIONAL_EDGES = args.conditional_edges
    asyncio.run(main_async(args.runs, args.floor, args.phases, args.thread_runs, args.answer_chars,
                           args.older_layout))


if __name__ == "__main__":
    main()
