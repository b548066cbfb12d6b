"""The Python API: ingest, run (sync and async), stream node updates, inspect threads.

Example::

    from knowledge_os import KnowledgeOS

    kos = KnowledgeOS()
    kos.ingest()                                   # the machine's Debian changelogs
    result = kos.run("What changed in openssl since March?")
    print(result.answer, [c.id for c in result.citations])
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from knowledge_os.errors import InputError
from knowledge_os.graph.state import Context, after_update, run_totals
from knowledge_os.i18n import detect_language, pick
from knowledge_os.llm.calls import SYNTHESIS_TAG
from knowledge_os.retrieval.ingest import IngestReport
from knowledge_os.retrieval.sources import DEFAULT_DEBIAN_DOC_DIR, default_corpus, default_corpus_scope
from knowledge_os.services import Services
from knowledge_os.settings import Settings

__all__ = ["TOKEN_EVENT", "Citation", "KnowledgeOS", "Quality", "RouteInfo", "RunResult", "RunUsage",
           "resume_dead_letter"]

logger = logging.getLogger(__name__)

CONTEXT_METADATA_KEY = "kos_context"
"""Checkpoint-metadata key holding a run's :class:`Context` values (JSON text), so that a
resumed run sees the persona, as-of day, forced domain/path and cache switch it started with.
LangGraph copies scalar ``config["metadata"]`` entries into every checkpoint it writes."""


TOKEN_EVENT = "token"
"""First item of a token piece from :meth:`KnowledgeOS.astream` with ``tokens=True``."""


def _token_event(message: Any, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """A token piece of a synthesis call from LangGraph's ``messages`` stream, else None."""
    if SYNTHESIS_TAG not in (metadata.get("tags") or ()):
        return None
    text = message.content if isinstance(message.content, str) else message.text
    if not text:
        return None
    return {"node": metadata.get("langgraph_node"), "call": metadata.get("kos_call"),
            "variant": metadata.get("kos_variant"), "mode": metadata.get("kos_answer_mode"), "text": text}


async def _restart_clock(graph: Any, config: dict[str, Any], snapshot: Any) -> None:
    """Move the interrupted run's ``started_at`` on by the time since its last checkpoint,
    so the wall-time deadline (``started_at`` + the QoS level's ``max_wall_s``,
    :func:`knowledge_os.nodes._common.budget_for`) and the latency count the time it ran,
    not the time it waited. Written as a state update of the last node (LangGraph's
    ``aupdate_state``), so the next node to run stays the same."""
    from langgraph.errors import InvalidUpdateError

    started = (snapshot.values or {}).get("started_at")
    if not started or not snapshot.created_at:
        return
    if any(task.result is not None for task in snapshot.tasks):
        # A task's writes were saved but not the checkpoint after them: an update now would
        # be a new checkpoint without those writes, and the task would run again.
        return
    stopped = datetime.fromisoformat(snapshot.created_at).timestamp()
    waited = time.time() - stopped
    if waited <= 0:
        return
    try:
        await graph.aupdate_state(config, {"started_at": started + waited})
    except InvalidUpdateError as exc:  # several nodes wrote the last checkpoint: keep the clock
        logger.warning("resume: the run's clock was not moved on (%s)", exc)


def _run_config(thread_id: str, context: Context) -> dict[str, Any]:
    """The LangGraph config of a run: its thread and its context as checkpoint metadata."""
    values = {"domain": context.domain, "path": context.path, "persona": context.persona,
              "as_of": context.as_of, "use_cache": context.use_cache, "loops": context.loops, "qos": context.qos}
    return {"configurable": {"thread_id": thread_id},
            "metadata": {CONTEXT_METADATA_KEY: orjson.dumps(values).decode()}}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Citation(_Model):
    """A cited document. ``metadata`` of a changelog entry has package, version, date."""

    id: str
    title: str
    score: float
    metadata: dict[str, Any] = Field(default_factory=dict)


class RouteInfo(_Model):
    """``method``: cache, heuristic, llm, fallback (or forced, when a domain was given; thread,
    for a follow-up that keeps its thread's domain)."""

    domain: str
    method: str
    confidence: float


class Quality(_Model):
    """Verification of the answer.

    Attributes:
        score: Checklist score of the chosen draft, 0..1.
        passed: Score at or above the threshold and no blocking rule failed.
        issues: One line per failed rule or ungrounded claim.
        grounded: Every claim of the summary the user reads is traced to the data.
    """

    score: float
    passed: bool
    issues: list[str] = Field(default_factory=list)
    grounded: bool = True


class RunUsage(_Model):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    steps: int = 0
    latency_s: float = 0.0


INDEX_INCOMPLETE = {
    "en": "Note: the search index is still being built; entries found only by meaning may be missing.",
    "ru": "Примечание: поисковый индекс ещё строится; записи, которые находятся только по смыслу, могут отсутствовать.",
}
"""The line ending an answer made while an ingest's vectors are still being written."""


class RunResult(_Model):
    """The result of one run; ``model_dump()`` is the ``kos run --json`` object."""

    run_id: str
    thread_id: str
    domain: str
    route: RouteInfo
    path: Literal["fast", "smart"]
    answer: str
    citations: list[Citation]
    quality: Quality
    usage: RunUsage
    manifest: dict[str, Any]
    data_only: bool = False
    """The summary is written from the data alone: the model's summary failed the
    checks (or the model was unavailable); the answer text says so in one line."""
    answer_mode: str = "prose"
    """How the summary was made: ``prose`` (the LLM wrote it), ``structured`` (the LLM
    chose entries and kinds, the framework wrote the sentences) or ``data``."""
    index_complete: bool = True
    """False while an ingest's vectors are still being written (its text stage is done:
    exact ids, full text and the graph search every document; the vector search not yet
    all of them). The answer then ends with a one-line notice saying so (EN/RU)."""

    @classmethod
    def from_state(cls, state: dict[str, Any], thread_id: str, *, index_complete: bool = True) -> RunResult:
        """The result of a run's final state; ``index_complete=False`` adds the notice."""
        result = cls._from_state(state, thread_id)
        if index_complete:
            return result
        lang = (state.get("analysis") or {}).get("lang") or detect_language(state.get("query") or "")
        return result.model_copy(update={"index_complete": False,
                                         "answer": f"{result.answer}\n\n{pick(INDEX_INCOMPLETE, lang)}"})

    @classmethod
    def _from_state(cls, state: dict[str, Any], thread_id: str) -> RunResult:
        route = state.get("route") or {}
        usage = state.get("usage") or {}
        manifest = state.get("manifest") or {}
        started, finished = manifest.get("started_at"), manifest.get("finished_at")
        return cls(
            run_id=state["run_id"],
            thread_id=thread_id,
            domain=state["domain"],
            route=RouteInfo(domain=route.get("domain", state["domain"]), method=route.get("method", "fallback"),
                            confidence=float(route.get("confidence", 0.0))),
            path=state.get("path", "fast"),
            answer=state.get("answer", ""),
            citations=[Citation(id=c["id"], title=c["title"], score=c["score"], metadata=c.get("metadata", {}))
                       for c in state.get("citations") or []],
            quality=Quality(**{k: (state.get("quality") or {}).get(k, d) for k, d in
                               (("score", 0.0), ("passed", False), ("issues", []), ("grounded", True))}),
            usage=RunUsage(
                llm_calls=usage.get("llm_calls", 0), prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0), steps=usage.get("steps", 0),
                latency_s=round((finished - started), 3) if started and finished else 0.0,
            ),
            manifest=manifest,
            data_only=bool((state.get("quality") or {}).get("data_only", False)),
            answer_mode=str((state.get("quality") or {}).get("mode", "prose")),
        )


class _Box:
    """A coroutine's result behind a constant ``repr``. ``asyncio.Runner.run`` on the main
    thread installs a SIGINT handler holding the task and removes it when the task is done;
    ``signal`` formats the handler's ``repr`` each time, and the finished task's ``repr``
    holds its result's: for a ``RunResult`` (about 2.5 KB of text) each synchronous call
    spent 0.19 ms there instead of 0.06 ms."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<result>"


async def _boxed(coro: Any) -> _Box:
    return _Box(await coro)


class KnowledgeOS:
    """The framework's front door.

    Args:
        settings: Backends and models; default ``Settings()`` (``KOS_*`` env + kos.yaml).
        services: Prebuilt services (tests inject fakes); overrides ``settings``.
    """

    def __init__(self, settings: Settings | None = None, *, services: Services | None = None) -> None:
        self.services = services or Services(settings)
        self.settings = self.services.settings
        self._runner: asyncio.Runner | None = None  # the event loop of the synchronous methods
        self._saver: tuple[Any, Any] | None = None  # (context manager, PostgreSQL checkpointer) on that loop
        self._sqlite_saver: Any = None  # the SQLite checkpointer of every loop (SqliteSaverInThreads)
        self._saver_lock = threading.Lock()
        self._compiled: Any = None  # the graph compiled once, without a checkpointer
        self._bound: tuple[Any, Any] | None = None  # (saver, the compiled graph's copy bound to it)

    # -- ingest ---------------------------------------------------------------------------

    def ingest(
        self, paths: Sequence[Path | str] | None = None, *, on_progress: Callable[[int, int], None] | None = None,
        on_stage: Callable[[str, IngestReport], None] | None = None,
    ) -> IngestReport:
        """Ingest files/folders (default: every ``/usr/share/doc/<package>/changelog.Debian.gz``).

        Documents that the given folders and files (or, by default, the doc folder's
        changelogs) no longer hold are removed from every store. Text first, vectors
        after (knowledge_os/retrieval/ingest.py): ``on_stage("text", report)`` says when
        runs can answer (marked ``index_complete=False`` until ``on_stage("vectors", ...)``).

        Returns:
            The report; ``report.problems`` names every skipped file or line.
        """
        from knowledge_os.retrieval.ingest import ingest

        s = self.services
        if paths:
            targets, scope = [Path(p) for p in paths], None  # the folders and files given
        else:  # every changelog below the doc folder, so a removed package's go too
            targets, scope = default_corpus(DEFAULT_DEBIAN_DOC_DIR), default_corpus_scope(DEFAULT_DEBIAN_DOC_DIR)
        report = ingest(targets, docstore=s.docstore, embedder=s.embedder, vector_store=s.vector_store,
                        graph_store=s.graph_store, scope=scope, on_progress=on_progress, on_stage=on_stage)
        self.services.invalidate()
        return report

    # -- runs -----------------------------------------------------------------------------

    def _sync(self, coro: Any) -> Any:
        """Run ``coro`` on this instance's own event loop, the same for every synchronous
        call: one asyncpg pool and one checkpointer connection serve all of them."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(_boxed(coro)).value

    def _on_own_loop(self) -> bool:
        return self._runner is not None and asyncio.get_running_loop() is self._runner.get_loop()

    @asynccontextmanager
    async def _graph(self) -> AsyncIterator[Any]:
        """The compiled graph with the configured checkpointer.

        SQLite (the default): one checkpointer per instance, opened on first use and
        closed by :meth:`close` / :meth:`aclose`, for every loop the instance runs on
        (:class:`knowledge_os.graph.checkpointer.SqliteSaverInThreads` belongs to no
        loop and starts no thread, so a script that never calls :meth:`close` still
        exits). PostgreSQL: on the synchronous methods' loop one connection stays open
        until :meth:`close`; on other loops it is opened per call (LangGraph's async
        PostgreSQL saver is bound to a loop).

        The graph is compiled once per instance (compiling inspects every node's code,
        tens of milliseconds) and each call gets a shallow copy bound to its checkpointer
        (``Pregel.copy``, 0.05-0.12 ms of CPU), kept while the checkpointer is the same
        (SQLite's and the synchronous methods' PostgreSQL one live as long as the instance).
        """
        from knowledge_os.graph.builder import builder
        from knowledge_os.graph.checkpointer import open_checkpointer, open_sqlite_saver

        def compiled(saver: Any) -> Any:
            if self._compiled is None:
                self._compiled = builder.compile(cache=self.services.node_cache, name="knowledge_os")
            bound = self._bound
            if bound is None or bound[0] is not saver:
                bound = self._bound = (saver, self._compiled.copy({"checkpointer": saver}))
            return bound[1]

        kind = self.settings.storage.checkpointer
        if kind == "sqlite":
            with self._saver_lock:  # two first runs at once (a server) open one saver; ~1 ms, once
                if self._sqlite_saver is None:
                    self._sqlite_saver = open_sqlite_saver(self.settings)
                saver = self._sqlite_saver
            yield compiled(saver)
            return
        if kind == "postgres" and self._on_own_loop():
            if self._saver is None:
                cm = open_checkpointer(self.settings)
                self._saver = (cm, await cm.__aenter__())
            yield compiled(self._saver[1])
            return
        async with open_checkpointer(self.settings) as saver:
            yield compiled(saver)

    def _context(self, domain: str | None, path: str | None, persona: str | None,
                 as_of: date | str | None, use_cache: bool, loops: bool = True,
                 qos: str | None = None) -> Context:
        from knowledge_os.qos import check_qos

        check_qos(qos)
        if domain is not None:
            self.services.domains.get(domain)  # UnknownNameError lists the domains
        if path not in (None, "fast", "smart"):
            raise InputError(f"path must be 'fast' or 'smart', got {path!r}")
        if persona is not None:
            self.services.personas.resolve(persona)  # UnknownNameError names it and lists the profiles
        day = as_of.isoformat() if isinstance(as_of, date) else as_of
        if day is None:  # fixed now, so a run resumed tomorrow still reads "since March" against today
            day = datetime.now(UTC).date().isoformat()
        try:
            date.fromisoformat(day)
        except ValueError as exc:
            raise InputError(f"as_of must be an ISO date (YYYY-MM-DD), got {day!r}") from exc
        return Context(domain=domain, path=path, persona=persona, as_of=day, use_cache=use_cache,
                       loops=loops, qos=qos, services=self.services)

    @staticmethod
    def _check_query(query: str) -> str:
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty")
        return query.strip()

    async def arun(
        self, query: str, *, thread_id: str | None = None, domain: str | None = None,
        path: Literal["fast", "smart"] | None = None, persona: str | None = None,
        as_of: date | str | None = None, use_cache: bool = True, loops: bool = True,
        qos: Literal["interactive", "standard", "thorough"] | None = None,
        dead_letter: bool = True,
    ) -> RunResult:
        """Answer a question (async). A new thread unless ``thread_id`` continues one.

        ``loops=False`` makes the first draft final (no correct, no replan, no data-only
        substitution; verify still scores it) for measuring what the loops add.
        ``qos`` asks for a QoS level (its budgets bound the run; knowledge_os/qos.py);
        None lets the router pick one.
        ``dead_letter=False``: a failure is only raised (a queued job's retries are the
        queue's own, :mod:`knowledge_os.queue`).

        Raises:
            InputError: empty query, bad ``path``, ``as_of`` or ``qos``.
            UnknownNameError: unknown ``domain``, or a ``persona`` that is a name (no spaces) no profile has.
        On any other failure the run is put on the dead-letter queue with its thread id
        and last checkpoint (so ``kos dlq work`` can resume it), then the error is raised.
        """
        query = self._check_query(query)
        context = self._context(domain, path, persona, as_of, use_cache, loops, qos)
        thread_id = thread_id or str(uuid.uuid4())
        config = _run_config(thread_id, context)
        async with self._graph() as graph:
            try:
                state = await graph.ainvoke({"query": query}, config=config, context=context,
                                           durability="sync")
            except Exception as exc:
                if dead_letter:
                    await self._dead_letter(graph, config, query, context, exc)
                raise
        return RunResult.from_state(state, thread_id, index_complete=await asyncio.to_thread(self._index_complete))

    def _index_complete(self) -> bool:
        """No document waits for its vector (``DocumentStore.pending_count``, one COUNT).
        Blocking (a network round trip with the PostgreSQL store): async callers run it in
        a worker thread, off the event loop."""
        return self.services.docstore.pending_count() == 0

    def run(self, query: str, **kwargs: Any) -> RunResult:
        """Synchronous :meth:`arun` (same arguments). Every synchronous call of an instance
        runs on one event loop of its own, so they share one PostgreSQL pool and one
        checkpointer connection; :meth:`close` releases them."""
        return self._sync(self.arun(query, **kwargs))

    async def astream(
        self, query: str, *, thread_id: str | None = None, domain: str | None = None,
        path: Literal["fast", "smart"] | None = None, persona: str | None = None,
        as_of: date | str | None = None, use_cache: bool = True,
        qos: Literal["interactive", "standard", "thorough"] | None = None,
        tokens: bool = False,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield ``(node_name, state_update)`` as each node finishes (arguments as :meth:`arun`).

        Each node's update carries ``usage`` and ``timings_ms``: the run's totals so far,
        this node included (summed from the ``spend`` entries streamed; the graph itself
        writes them only once, at ``finalize``).

        ``tokens=True`` also yields the summary's tokens as the model writes them, as
        ``(TOKEN_EVENT, {"node", "call", "variant", "mode", "text"})`` between the node
        updates (no node is named ``token``): ``node`` is the node making the call
        (``execute``, ``correct``), ``call`` is ``summarise`` or ``correct``, ``variant``
        the draft's number (0, 1 on the Smart Path), ``mode`` the answer mode (``prose``:
        the text is the draft; ``structured``: JSON the framework renders), ``text`` one
        piece of the reply. Tokens are a draft's: verify may reject it, and the answer is
        the last update's ``answer``. A model that does not stream gives one piece with
        the whole reply; an answer-cache hit gives none. Built on LangGraph's ``messages``
        stream mode, keeping the calls tagged :data:`knowledge_os.llm.calls.SYNTHESIS_TAG`.

        Raises:
            As :meth:`arun`; a failed run is dead-lettered the same way.
        """
        query = self._check_query(query)
        context = self._context(domain, path, persona, as_of, use_cache, qos=qos)
        config = _run_config(thread_id or str(uuid.uuid4()), context)
        modes: Any = ["updates", "messages"] if tokens else "updates"
        spend: list[Any] = []
        run_id = ""
        async with self._graph() as graph:
            stream = graph.astream({"query": query}, config=config, context=context, stream_mode=modes,
                                   durability="sync")
            while True:
                try:
                    item = await anext(stream)
                except StopAsyncIteration:
                    break
                except Exception as exc:  # as arun: dead-lettered with its checkpoint, then raised
                    await self._dead_letter(graph, config, query, context, exc)
                    raise
                mode, chunk = item if tokens else ("updates", item)
                if mode == "messages":
                    token = _token_event(*chunk)
                    if token is not None:
                        yield TOKEN_EVENT, token
                    continue
                for node, update in chunk.items():
                    if node.startswith("__"):  # LangGraph's own entries, e.g. __metadata__ on a node-cache hit
                        continue
                    update = dict(update or {})
                    run_id = update.get("run_id") or run_id
                    written = update.get("spend")
                    if written is not None:  # the run's first node starts a fresh log, the others append
                        spend = after_update({"spend": spend}, {"spend": written})["spend"]
                    if written is not None and "usage" not in update:
                        update["usage"], update["timings_ms"] = run_totals(spend, run_id)
                    yield node, update

    async def aget_thread(self, thread_id: str) -> RunResult | None:
        """The latest finished run of a thread, from its checkpoint (None if unknown)."""
        async with self._graph() as graph:
            snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        if not snapshot.values or "run_id" not in snapshot.values or not snapshot.values.get("domain"):
            return None
        return RunResult.from_state(snapshot.values, thread_id)

    def get_thread(self, thread_id: str) -> RunResult | None:
        """Synchronous :meth:`aget_thread`."""
        return self._sync(self.aget_thread(thread_id))

    async def aresume(self, thread_id: str) -> RunResult:
        """Resume an interrupted run of a thread from its last checkpoint; completed nodes
        are not repeated, and the run keeps the context it started with (domain, path,
        persona, as-of day, cache switch; read from the checkpoint's metadata). The time
        the run stood still (an outage, a queue's backoff) does not count against its QoS
        wall-time budget or its latency: its clock goes on from its last checkpoint.

        Raises:
            InputError: the thread has no checkpoint.
        """
        async with self._graph() as graph:
            snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
            if not snapshot.values:
                raise InputError(f"thread {thread_id!r} has no checkpoint")
            if snapshot.next or snapshot.tasks:
                # ``tasks`` without ``next``: the last step's writes were saved but the
                # checkpoint after them was not (the connection dropped); LangGraph shows
                # them applied, and this invoke writes that checkpoint without rerunning.
                saved = (snapshot.metadata or {}).get(CONTEXT_METADATA_KEY)
                values = orjson.loads(saved) if saved else {}
                context = Context(**values, services=self.services)
                config = _run_config(thread_id, context)
                await _restart_clock(graph, config, snapshot)
                state = await graph.ainvoke(None, config=config, context=context, durability="sync")
            else:
                state = snapshot.values
        return RunResult.from_state(state, thread_id, index_complete=await asyncio.to_thread(self._index_complete))

    def resume(self, thread_id: str) -> RunResult:
        """Synchronous :meth:`aresume`."""
        return self._sync(self.aresume(thread_id))

    # -- queued runs (Procrastinate; queue.backend: procrastinate) ------------------------

    async def aenqueue(
        self, query: str, *, thread_id: str | None = None, domain: str | None = None,
        path: Literal["fast", "smart"] | None = None, persona: str | None = None,
        as_of: date | str | None = None, use_cache: bool = True, loops: bool = True,
        qos: Literal["interactive", "standard", "thorough"] | None = None,
    ) -> Any:
        """Put a run on the queue instead of running it here; a ``kos worker`` (any host)
        runs it. Arguments as :meth:`arun`, validated now. Read the answer later with
        :meth:`aget_thread` on the thread id.

        Returns:
            :class:`knowledge_os.queue.app.QueuedRun` (job id, thread id).

        Raises:
            ConfigError: ``queue.backend`` is not ``procrastinate`` or no ``postgres.dsn``.
            InputError, UnknownNameError: as :meth:`arun`.
        """
        from knowledge_os.queue.app import aenqueue_run, ensure_schema, make_app

        query = self._check_query(query)
        context = self._context(domain, path, persona, as_of, use_cache, loops, qos)
        await asyncio.to_thread(ensure_schema, self.settings)
        app = make_app(self.settings)
        async with app.open_async():
            return await aenqueue_run(app, query, thread_id=thread_id or str(uuid.uuid4()), domain=domain,
                                      path=path, persona=persona, as_of=context.as_of, use_cache=use_cache,
                                      loops=loops, qos=qos)

    def enqueue(self, query: str, **kwargs: Any) -> Any:
        """Synchronous :meth:`aenqueue` (same arguments)."""
        return self._sync(self.aenqueue(query, **kwargs))

    async def aenqueue_resume(self, thread_id: str) -> Any:
        """Queue "resume this thread from its checkpoint"; None when a resume of it is
        already waiting (Procrastinate's queueing lock drops the duplicate).

        Raises:
            ConfigError: the queue is not configured.
        """
        from knowledge_os.queue.app import aenqueue_resume, ensure_schema, make_app

        await asyncio.to_thread(ensure_schema, self.settings)
        app = make_app(self.settings)
        async with app.open_async():
            return await aenqueue_resume(app, thread_id)

    async def _dead_letter(self, graph: Any, config: dict[str, Any], query: str, context: Context,
                           exc: BaseException) -> None:
        from knowledge_os.memory.factory import make_dead_letter_queue

        try:
            snapshot = await graph.aget_state(config)
            checkpoint_id = (snapshot.config.get("configurable") or {}).get("checkpoint_id")
            queue = make_dead_letter_queue(self.settings)
            try:
                await queue.enqueue(
                    run_id=(snapshot.values or {}).get("run_id") or str(uuid.uuid4()),
                    thread_id=config["configurable"]["thread_id"], checkpoint_id=checkpoint_id,
                    payload={"query": query, "domain": context.domain, "path": context.path,
                             "persona": context.persona, "as_of": context.as_of},
                    error=f"{type(exc).__name__}: {exc}", stack=traceback.format_exc(),
                )
                self.services.metrics.observe_dead_letter("enqueued")
            finally:
                await queue.close()
        except Exception as dlq_exc:  # never hide the original error
            logger.error("could not dead-letter the failed run: %s", dlq_exc)

    async def arefresh_metrics(self) -> None:
        """Read the gauges that live outside this process (letters on the dead-letter
        queue, by status) into :attr:`services.metrics` before a scrape. With
        ``queue.backend: procrastinate`` the letters are the failed jobs of runs
        (:func:`knowledge_os.queue.app.list_dead_letters`, as ``kos dlq list`` shows them);
        otherwise the dead-letter table."""
        from knowledge_os.observability.metrics import DEAD_LETTER_STATUSES

        if self.settings.queue.backend == "procrastinate":
            from knowledge_os.queue.app import ensure_schema, list_dead_letters, make_app

            await asyncio.to_thread(ensure_schema, self.settings)
            app = make_app(self.settings)
            async with app.open_async():
                counts = {s: len(await list_dead_letters(app, status=s, limit=1000)) for s in DEAD_LETTER_STATUSES}
        else:
            from knowledge_os.memory.factory import make_dead_letter_queue

            queue = make_dead_letter_queue(self.settings)
            try:
                counts = {s: len(await queue.list(status=s, limit=1000)) for s in DEAD_LETTER_STATUSES}
            finally:
                await queue.close()
        self.services.metrics.set_dead_letters(counts)

    def metrics_text(self) -> str:
        """Prometheus text exposition of this process's metrics (runs, latency, LLM calls,
        tokens, steps against budgets, quality, cache hits)."""
        return self.services.metrics.exposition()

    def graph_mermaid(self) -> str:
        """The graph as Mermaid text (offline)."""
        from knowledge_os.graph.builder import graph

        return graph.get_graph().draw_mermaid()

    async def aclose(self) -> None:
        """Release what the running loop holds for this instance: the SQLite checkpointer,
        the PostgreSQL one kept by the synchronous methods, and the shared PostgreSQL pools of this loop
        (:func:`knowledge_os.db.pool.close_pool`); then close the stores."""
        if self._saver is not None and self._on_own_loop():
            cm, self._saver = self._saver[0], None
            await cm.__aexit__(None, None, None)
        self._close_sqlite_saver()
        if "postgres" in (self.settings.storage.checkpointer, self.settings.storage.memory):
            from knowledge_os.db.pool import close_pool

            await close_pool()
        self.services.close()

    def _close_sqlite_saver(self) -> None:
        with self._saver_lock:
            saver, self._sqlite_saver = self._sqlite_saver, None
        if saver is not None:
            saver.close()

    def close(self) -> None:
        """Close the stores, the checkpointer and the PostgreSQL pool of the synchronous
        methods, and their event loop. The instance may be used again (it reopens them)."""
        if self._runner is None:
            self._close_sqlite_saver()
            self.services.close()
            return
        try:
            self._runner.run(self.aclose())
        finally:
            self._runner.close()
            self._runner = None


async def resume_dead_letter(letter: Any) -> None:
    """Resume a dead-lettered run from its checkpoint (used by ``kos dlq work``)."""
    kos = KnowledgeOS()
    try:
        await kos.aresume(letter.thread_id)
    finally:
        kos.close()
