"""The FastAPI application of ``kos serve``: one :class:`KnowledgeOS` per process.

Every run goes through the async API (``arun``, ``astream``, ``aresume``) on the server's
event loop; the graph's blocking work (the LLM, the embedder, the stores) runs in
LangGraph's worker threads. Errors map to status codes by who must act:

=====================================  ======  =========================================
error                                  status  body
=====================================  ======  =========================================
request body / parameter invalid       422     ``{"error", "field"}`` (first bad field)
InputError, ConfigError (bad name)     422     ``{"error"}``
thread unknown                         404     ``{"error"}``
too many runs in flight                429     ``{"error"}`` and ``Retry-After: 1``
BackendError                           503     ``{"error", "backend"}``
anything else                          500     ``{"error": "internal error", "id"}``
=====================================  ======  =========================================

``POST /v1/runs/stream`` sends server-sent events (``event: NAME`` and ``data: JSON``
lines, a blank line after each), in this order:

==========  ===========================================================================
event       data
==========  ===========================================================================
``node``    ``{"node", "update"}``: a node finished; ``update`` is its state update
``token``   ``{"node", "call", "variant", "mode", "text"}``: a piece of the summary the
            model is writing (``KnowledgeOS.astream(tokens=True)``), between the
            ``node`` events; ``call`` is ``summarise`` or ``correct``, ``variant`` the
            draft (0, 1), ``mode`` ``prose`` (the text is the draft) or ``structured``
            (JSON the framework renders). A draft may fail verification: the answer is
            the ``result``'s. ``?tokens=false`` leaves them out.
``result``  ``{"thread_id", "answer"}``: the run finished (last event)
``error``   ``{"thread_id", "error"}`` (and ``backend`` when one is down): the run
            failed (last event; no stack trace)
==========  ===========================================================================

No stack trace reaches a client: unexpected errors are logged with their traceback and
an id the client sees. ``GET /v1/threads/{id}`` of a failed background run answers with
the status and body its error maps to above, plus ``"status": "failed"``. Every response
carries ``Server-Timing: app;dur=MS``, the server's own time (:class:`ServerTiming`).

Bounded concurrency: at most ``server.max_concurrent_runs`` runs
(foreground, background and streamed) at once; one more gets 429. Graceful shutdown:
uvicorn stops accepting and lets requests finish (``server.shutdown_grace_s``); the
lifespan then waits the same time for background runs and cancels what is left. Every
run checkpoints after each node (``durability="sync"``), so a cancelled run stays
resumable with ``POST /v1/threads/{id}/resume``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from knowledge_os.api import TOKEN_EVENT, KnowledgeOS
from knowledge_os.errors import BackendError, ConfigError, InputError
from knowledge_os.server.readiness import check_backends

__all__ = ["RunRequest", "ServerTiming", "create_app", "serve"]

logger = logging.getLogger(__name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RunRequest(BaseModel):
    """Body of ``POST /v1/runs`` and ``POST /v1/runs/stream``; the fields of ``kos run``."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="The question.")
    thread_id: str | None = Field(default=None, max_length=200, description="Continue this thread.")
    domain: str | None = Field(default=None, description="Force a domain (skip routing).")
    path: Literal["fast", "smart"] | None = Field(default=None, description="Force the Fast or Smart Path.")
    persona: str | None = Field(default=None, max_length=200, description="Who the answer is for.")
    as_of: date | None = Field(default=None, description="Today's date for 'since March'.")
    qos: Literal["interactive", "standard", "thorough"] | None = Field(
        default=None, description="QoS level: its budgets bound the run (default: the router picks).")
    use_cache: bool = Field(default=True, description="Use the answer cache.")
    background: bool = Field(default=False, description="Return 202 at once; poll GET /v1/threads/{id}.")

    def run_kwargs(self) -> dict[str, Any]:
        return {"thread_id": self.thread_id, "domain": self.domain, "path": self.path,
                "persona": self.persona, "as_of": self.as_of, "use_cache": self.use_cache, "qos": self.qos}


class _Busy(Exception):
    """Every run slot is taken."""


class _Runs:
    """Run slots and the background runs of this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.background: dict[str, asyncio.Task[Any]] = {}
        # thread id -> (status, body) of its failed background run, as GET /v1/threads/{id} answers
        self.failed: dict[str, tuple[int, dict[str, Any]]] = {}

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.active >= self.limit:
            raise _Busy
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in ("body", "query", "path"):  # where the field was, not its name
        parts = parts[1:]
    return ".".join(parts)


def create_app(kos: KnowledgeOS | None = None, *, max_concurrent_runs: int | None = None,
               shutdown_grace_s: float | None = None) -> FastAPI:
    """The ASGI application over ``kos`` (default ``KnowledgeOS()``: settings from the environment).

    Args:
        kos: The one instance this process serves; closed when the app shuts down.
        max_concurrent_runs: Runs at once (default ``server.max_concurrent_runs``).
        shutdown_grace_s: Seconds background runs get to finish at shutdown
            (default ``server.shutdown_grace_s``).
    """
    kos = kos or KnowledgeOS()
    settings = kos.settings
    runs = _Runs(max_concurrent_runs or settings.server.max_concurrent_runs)
    grace_s = settings.server.shutdown_grace_s if shutdown_grace_s is None else shutdown_grace_s

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        pending = [t for t in runs.background.values() if not t.done()]
        if pending:
            logger.info("shutdown: waiting up to %.0f s for %d background runs", grace_s, len(pending))
            _, late = await asyncio.wait(pending, timeout=grace_s)
            for task in late:  # resumable from their last checkpoint
                task.cancel()
            if late:
                await asyncio.wait(late)
        await kos.aclose()

    app = FastAPI(title="Knowledge OS", version=_version(), lifespan=lifespan,
                  description="Answers with citations over the ingested corpus (see knowledge_os.server).")
    app.state.kos = kos
    app.state.runs = runs
    app.add_middleware(ServerTiming)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = _field(first.get("loc", ()))
        return _error(422, f"{field}: {first.get('msg')}", field=field)

    @app.exception_handler(_Busy)
    async def on_busy(request: Request, exc: _Busy) -> JSONResponse:
        response = _error(429, f"{runs.limit} runs in flight (server.max_concurrent_runs); retry later")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(InputError)
    @app.exception_handler(ConfigError)
    async def on_input(request: Request, exc: Exception) -> JSONResponse:
        return _error(422, " ".join(str(exc).split()))

    @app.exception_handler(BackendError)
    async def on_backend(request: Request, exc: BackendError) -> JSONResponse:
        return _error(503, " ".join(str(exc).split()), backend=_backend_name(exc))

    # Starlette sends this response, then re-raises to the server, which logs it again.
    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        logger.error("request %s %s failed (error id %s)", request.method, request.url.path, error_id,
                     exc_info=exc)
        return _error(500, "internal error", id=error_id)

    @app.post("/v1/runs", summary="Answer a question", responses={202: {"description": "Background run started"}})
    async def create_run(body: RunRequest) -> Any:
        """200: the ``kos run --json`` object (``RunResult``). 202: ``{"thread_id", "status"}``."""
        if body.background:
            return await _start_background(body)
        async with runs.slot():
            result = await kos.arun(body.query, **body.run_kwargs())
        return result.model_dump()

    async def _start_background(body: RunRequest) -> JSONResponse:
        thread_id = body.thread_id or str(uuid.uuid4())
        if thread_id in runs.background and not runs.background[thread_id].done():
            return _error(409, f"thread {thread_id!r} has a run in flight")
        kwargs = {**body.run_kwargs(), "thread_id": thread_id}
        kos._check_query(body.query)  # bad input is a 422 now, not a failed background run
        if runs.active >= runs.limit:
            raise _Busy
        runs.active += 1  # taken here, released when the task ends

        async def work() -> None:
            try:
                await kos.arun(body.query, **kwargs)
                runs.failed.pop(thread_id, None)
            except asyncio.CancelledError:
                logger.warning("background run of thread %s cancelled at shutdown (resumable)", thread_id)
                raise
            except Exception as exc:  # kept for GET /v1/threads/{id}; arun dead-lettered it
                logger.error("background run of thread %s failed: %s", thread_id, exc)
                runs.failed[thread_id] = _failure(exc)
            finally:
                runs.active -= 1

        runs.background[thread_id] = asyncio.create_task(work(), name=f"kos-run-{thread_id}")
        for done in [t for t, task in runs.background.items() if task.done() and t != thread_id]:
            del runs.background[done]
        return JSONResponse({"thread_id": thread_id, "status": "running"}, status_code=202)

    @app.post("/v1/runs/stream", summary="Answer a question, streaming node updates and LLM tokens (server-sent events)")
    async def stream_run(body: RunRequest, tokens: bool = True) -> StreamingResponse:
        """Server-sent events, in order: ``node`` (``{"node", "update"}``) per finished node;
        between them ``token`` (``{"node", "call", "variant", "mode", "text"}``) per piece
        of the summary the model writes, unless ``?tokens=false``; last ``result``
        (``{"thread_id", "answer"}``) or ``error`` (``{"thread_id", "error"}``). The
        format is the module docstring's."""
        if body.background:
            raise InputError("background: a streamed run cannot run in the background")
        kos._check_query(body.query)
        if runs.active >= runs.limit:
            raise _Busy
        runs.active += 1
        kwargs = body.run_kwargs()
        thread_id = kwargs.pop("thread_id") or str(uuid.uuid4())

        async def events() -> AsyncIterator[bytes]:
            try:
                last: dict[str, Any] = {}
                async for node, update in kos.astream(body.query, thread_id=thread_id, tokens=tokens, **kwargs):
                    if node == TOKEN_EVENT:
                        yield _sse("token", update)
                        continue
                    last.update(update)
                    yield _sse("node", {"node": node, "update": update})
                yield _sse("result", {"thread_id": thread_id, "answer": last.get("answer", "")})
            except Exception as exc:  # the stream has started: the error is an event, not a status
                logger.error("streamed run of thread %s failed: %s", thread_id, exc)
                message = " ".join(str(exc).split()) if isinstance(exc, (BackendError, InputError)) else "internal error"
                extra = {"backend": _backend_name(exc)} if isinstance(exc, BackendError) else {}
                yield _sse("error", {"thread_id": thread_id, "error": message, **extra})
            finally:
                runs.active -= 1

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Thread-Id": thread_id})

    @app.get("/v1/threads/{thread_id}", summary="The thread's latest finished run",
             responses={202: {"description": "A background run is in flight"}, 404: {"description": "Unknown"}})
    async def get_thread(thread_id: str) -> Any:
        task = runs.background.get(thread_id)
        if task is not None and not task.done():
            return JSONResponse({"thread_id": thread_id, "status": "running"}, status_code=202)
        if thread_id in runs.failed:
            status, body = runs.failed[thread_id]
            return JSONResponse({**body, "thread_id": thread_id, "status": "failed"}, status_code=status)
        result = await kos.aget_thread(thread_id)
        if result is None:
            return _error(404, f"thread {thread_id!r} has no finished run")
        return result.model_dump()

    @app.post("/v1/threads/{thread_id}/resume", summary="Finish an interrupted run from its checkpoint")
    async def resume_thread(thread_id: str) -> Any:
        task = runs.background.get(thread_id)
        if task is not None and not task.done():
            return _error(409, f"thread {thread_id!r} has a run in flight")
        async with runs.slot():
            try:
                result = await kos.aresume(thread_id)
            except InputError as exc:
                if "no checkpoint" in str(exc):
                    return _error(404, str(exc))
                raise
        runs.failed.pop(thread_id, None)
        return result.model_dump()

    @app.get("/healthz", summary="The process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Every configured backend is reachable",
             responses={503: {"description": "A backend is down; the body names it"}})
    async def readyz() -> JSONResponse:
        backends = await check_backends(settings, extra=getattr(app.state, "extra_checks", None))
        down = sorted(name for name, status in backends.items() if status != "ok")
        if down:
            return JSONResponse({"status": "unavailable", "down": down, "backends": backends}, status_code=503)
        return JSONResponse({"status": "ok", "backends": backends})

    @app.get("/metrics", summary="Prometheus text exposition", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        try:
            await kos.arefresh_metrics()
        except Exception as exc:  # a scrape still answers; the gauge keeps its last value
            logger.warning("could not read the dead-letter queue for /metrics: %s", exc)
        return PlainTextResponse(kos.metrics_text(), media_type=PROMETHEUS_CONTENT_TYPE)

    return app


class ServerTiming:
    """ASGI middleware: every HTTP response carries ``Server-Timing: app;dur=MS``
    (W3C Server Timing), milliseconds from the request's arrival to its response headers:
    the whole server time of a run's JSON answer, the time to the first event of a stream.

    A pure ASGI wrapper (not Starlette's ``BaseHTTPMiddleware``), so streamed responses
    pass through untouched.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"server-timing", f"app;dur={ms:.1f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed_send)


def _failure(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Status and body of a failed background run, by the table of the module docstring:
    a backend down is a 503 naming it, bad input a 422, anything else a 500 with an id
    (its traceback only in the log)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, BackendError):
        return 503, {"error": message, "backend": _backend_name(exc)}
    if isinstance(exc, (InputError, ConfigError)):
        return 422, {"error": message}
    error_id = uuid.uuid4().hex[:12]
    logger.error("background run failed (error id %s)", error_id, exc_info=exc)
    return 500, {"error": "internal error", "id": error_id}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data, default=str) + b"\n\n"


def _backend_name(exc: BackendError) -> str:
    """The backend a BackendError names: its ``backend`` attribute, else the first word of
    its message (the adapters start their messages with it, e.g. ``"ollama: ..."``)."""
    name = getattr(exc, "backend", None)
    if name:
        return str(name)
    head = str(exc).split(":", 1)[0].strip()
    return head if head and len(head) <= 40 and " " not in head else "unknown"


def _version() -> str:
    import knowledge_os

    return knowledge_os.__version__


def serve(host: str | None = None, port: int | None = None) -> None:
    """Run ``kos serve`` in the foreground until SIGINT/SIGTERM (graceful shutdown).

    Args:
        host: Interface to bind (default ``server.host``, 127.0.0.1).
        port: TCP port (default ``server.port``, 8000); 0 picks a free one.
    """
    import uvicorn

    kos = KnowledgeOS()
    s = kos.settings.server
    app = create_app(kos)
    uvicorn.run(app, host=host or s.host, port=s.port if port is None else port, log_level="info",
                timeout_graceful_shutdown=int(s.shutdown_grace_s), access_log=False)
