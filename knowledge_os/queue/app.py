"""Runs as Procrastinate jobs on the PostgreSQL of the checkpoints.

A job of the task :data:`TASK_NAME` means "advance thread T": it carries the run's
context (query, domain, path, persona, as-of day, cache and loop switches, QoS), so any
worker on any host can start the run or resume it from the thread's last checkpoint.
Procrastinate does the rest:

- ``lock`` = the thread id: one job per thread runs at a time;
- ``queueing_lock`` = ``resume:<thread id>`` on resume jobs: a second resume of a thread
  that already has one waiting is dropped (:class:`procrastinate.exceptions.AlreadyEnqueued`);
- retries: :class:`SeedRetry` (the seed's policy, 3 attempts, backoff ``60 * 2**n`` s);
  a job whose last attempt failed is ``failed`` in ``procrastinate_jobs``: that is the
  dead-letter queue (:func:`list_dead_letters`, :func:`retry_dead_letter`). The error,
  stack and checkpoint of each failed attempt go to ``kos_job_failures`` (Procrastinate
  keeps status and attempts only).

The schema is Procrastinate's own (:meth:`procrastinate.schema.SchemaManager.get_schema`),
applied by :func:`ensure_schema` (``kos db upgrade``, and ``kos worker`` at start).
Upgrading Procrastinate across a schema change needs its migration files
(``procrastinate schema --migrations-path``), applied before the new version runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge_os.db.appname import psycopg_fallback
from knowledge_os.errors import ConfigError, InputError
from knowledge_os.queue.ingest import INGEST_TASK, QueuedIngest, aenqueue_ingest, register_ingest_task
from knowledge_os.settings import Settings

import procrastinate
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision

if TYPE_CHECKING:
    from knowledge_os.api import KnowledgeOS, RunResult

__all__ = [
    "TASK_NAME",
    "DeadLetterJob",
    "QueuedRun",
    "SeedRetry",
    "aenqueue_resume",
    "aenqueue_run",
    "enqueue_ingest",
    "ensure_schema",
    "list_dead_letters",
    "make_app",
    "recover_stalled",
    "retry_dead_letter",
    "run_worker",
]

logger = logging.getLogger(__name__)

TASK_NAME = "kos.advance_thread"
_SCHEMA_LOCK_KEY = "knowledge_os procrastinate schema"
_schema_done: set[str] = set()
_schema_lock = threading.Lock()


def _dsn(settings: Settings) -> str:
    if settings.queue.backend != "procrastinate":
        raise ConfigError("queue.backend is 'none' (KOS_QUEUE__BACKEND=procrastinate enables queued runs)")
    if settings.postgres.dsn is None:
        raise ConfigError("queue.backend is 'procrastinate' but postgres.dsn (KOS_POSTGRES__DSN) is not set")
    return settings.postgres.dsn.get_secret_value()


class SeedRetry(BaseRetryStrategy):
    """The seed's retry policy as a Procrastinate retry strategy.

    Args:
        max_attempts: Attempts in all, the first run included; seed: 3.
        base_s: Backoff base, seconds; seed: 60. After failed attempt ``n`` (1-based) the
            job is due again in ``base_s * 2**n`` seconds (seed: 120 s, then 240 s), as
            ``knowledge_os.memory.base.backoff_s``.
    """

    def __init__(self, *, max_attempts: int = 3, base_s: float = 60.0) -> None:
        self.max_attempts = max_attempts
        self.base_s = base_s

    def delay_s(self, failed_attempts: int) -> float | None:
        """Seconds before the next attempt after ``failed_attempts`` failures; None: no more."""
        if failed_attempts >= self.max_attempts:
            return None
        return self.base_s * 2**failed_attempts

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        delay = self.delay_s(job.attempts + 1)  # job.attempts: attempts before this one
        if delay is None:
            return None
        return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=delay))


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A run put on the queue.

    Attributes:
        job_id: The Procrastinate job id (``kos dlq list`` shows it when the run fails).
        thread_id: The LangGraph thread the job advances (``kos run --thread ID`` reads it).
    """

    job_id: int
    thread_id: str


@dataclass(frozen=True, slots=True)
class DeadLetterJob:
    """A queued run that failed at least once.

    Attributes:
        id: The job id (``kos dlq retry ID``).
        thread_id, run_id: The thread and the failed run (run id None if it never started).
        checkpoint_id: The thread's last checkpoint when the attempt failed.
        status: ``pending`` (a retry is scheduled or running), ``permanent_failure`` (no
            attempt left) or ``reprocessed`` (a later attempt succeeded).
        attempts: Failed attempts recorded.
        error: ``Type: message`` of the last failure, at most 1,000 characters.
        next_attempt_at: When the job is due (UTC).
    """

    id: int
    thread_id: str
    run_id: str | None
    checkpoint_id: str | None
    status: str
    attempts: int
    error: str
    next_attempt_at: datetime | None


def ensure_schema(settings: Settings) -> bool:
    """Apply the knowledge_os migrations and Procrastinate's schema to ``postgres.dsn``
    when missing (blocking; safe from several processes at once: an advisory lock).

    Returns:
        True if this call created the Procrastinate schema.

    Raises:
        ConfigError: the queue is not configured.
        BackendUnavailableError: PostgreSQL refused the connection.
    """
    import psycopg
    from procrastinate.schema import SchemaManager

    from knowledge_os.db.pool import redact_dsn, upgrade
    from knowledge_os.errors import BackendUnavailableError

    dsn = _dsn(settings)
    with _schema_lock:
        if dsn in _schema_done:
            return False
    upgrade(settings)
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, round(settings.postgres.connect_timeout_s)),
                             **psycopg_fallback("queue schema")) as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_SCHEMA_LOCK_KEY,))
                exists = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()[0]
                if not exists:
                    conn.execute(SchemaManager.get_schema())
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(f"PostgreSQL at {redact_dsn(dsn)}: {exc}") from exc
    with _schema_lock:
        _schema_done.add(dsn)
    if not exists:
        logger.info("applied the Procrastinate schema to %s", redact_dsn(dsn))
    return not exists


KosFactory = Callable[[], "KnowledgeOS"]

LISTEN_RETRY_MAX_S = 5.0
"""Longest wait between two attempts to open the LISTEN connection again, seconds."""


def _log_listen_retry(state: Any) -> None:
    """tenacity ``before_sleep`` of :class:`ListeningConnector`: the cause, the wait."""
    exc = state.outcome.exception() if state.outcome else None
    cause = (exc.__cause__ or exc) if exc is not None else None
    reason = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
    logger.warning("LISTEN connection to PostgreSQL lost (%s); opening it again in %.1f s", reason,
                   state.next_action.sleep if state.next_action else 0.0)


class ListeningConnector(procrastinate.PsycopgConnector):
    """Procrastinate's psycopg connector whose LISTEN connection comes back after PostgreSQL does.

    Procrastinate 3.10 opens a new LISTEN connection when the old one dies, once: if the
    server is still down at that moment, ``listen_notify`` ends with a
    :class:`~procrastinate.exceptions.ConnectorException` and the worker finds new jobs
    only by polling (``queue.poll_s``) until it restarts. This one tries again (tenacity:
    exponential wait from 0.2 s up to :data:`LISTEN_RETRY_MAX_S`, for as long as the
    worker runs), logging each failed attempt.
    """

    async def listen_notify(self, on_notification: Any, channels: Any) -> None:
        import tenacity
        from procrastinate.exceptions import ConnectorException

        channels = list(channels)
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(ConnectorException),
            wait=tenacity.wait_exponential(multiplier=0.2, max=LISTEN_RETRY_MAX_S),
            before_sleep=_log_listen_retry, reraise=True)
        async for attempt in retrying:
            with attempt:
                await super().listen_notify(on_notification=on_notification, channels=channels)


def make_app(settings: Settings, kos_factory: KosFactory | None = None) -> procrastinate.App:
    """The Procrastinate app of ``settings`` with the tasks :data:`TASK_NAME` and
    :data:`~knowledge_os.queue.ingest.INGEST_TASK` registered.

    Args:
        settings: ``queue.*`` and ``postgres.dsn``.
        kos_factory: Makes the :class:`KnowledgeOS` that runs the jobs of this process
            (called once, at the first job); default ``KnowledgeOS(settings)``.
            Tests pass one with fake models.

    Raises:
        ConfigError: the queue is not configured (``queue.backend``, ``postgres.dsn``).
    """
    dsn = _dsn(settings)
    # the pool's kwargs reach its LISTEN connection too: both report "kos queue"
    app = procrastinate.App(connector=ListeningConnector(conninfo=dsn, kwargs=psycopg_fallback("queue")))
    holder: dict[str, KnowledgeOS] = {}

    def kos() -> KnowledgeOS:
        if "kos" not in holder:
            if kos_factory is not None:
                holder["kos"] = kos_factory()
            else:
                from knowledge_os.api import KnowledgeOS

                holder["kos"] = KnowledgeOS(settings)
        return holder["kos"]

    retry = SeedRetry(max_attempts=settings.queue.max_attempts, base_s=settings.queue.retry_base_s)

    @app.task(name=TASK_NAME, queue=settings.queue.name, retry=retry, pass_context=True)
    async def advance_thread(context: procrastinate.JobContext, **payload: Any) -> dict[str, Any]:
        job = context.job
        runner = kos()
        try:
            result = await _advance(runner, **payload)
        except Exception as exc:
            final = retry.delay_s(job.attempts + 1) is None
            first = not await _has_failed(app, job.id)
            await _record_failure(app, runner, job.id, payload["thread_id"], job.attempts + 1, exc)
            if first:  # the job's first failure makes it a dead letter (kos dlq list)
                runner.services.metrics.observe_dead_letter("enqueued")
            if final:
                runner.services.metrics.observe_dead_letter("permanent_failure")
            logger.warning("job %s (thread %s) failed attempt %d: %s%s", job.id, payload["thread_id"],
                           job.attempts + 1, type(exc).__name__, " (permanent failure)" if final else "")
            raise
        if await _has_failed(app, job.id):  # a dead letter that this attempt finished
            runner.services.metrics.observe_dead_letter("reprocessed")
        logger.info("job %s (thread %s, run %s) done by worker %s, attempt %d, in %.2f s", job.id,
                    result.thread_id, result.run_id, context.worker_name, job.attempts + 1,
                    time.time() - context.start_timestamp)
        return {"run_id": result.run_id, "thread_id": result.thread_id}

    register_ingest_task(app, kos, queue=settings.queue.name, retry=retry)
    app.kos_instance = holder  # type: ignore[attr-defined]  # the worker closes it at exit
    return app


async def _advance(kos: KnowledgeOS, *, thread_id: str, query: str | None, enqueued_at: str,
                   **options: Any) -> RunResult:
    """Start or resume the run the job stands for.

    The thread's last checkpoint decides: interrupted with this query (or any, for a resume
    job) -> resume it; finished with this query after the job was enqueued -> an earlier
    attempt did the work (its worker died before the job was marked done) -> return it;
    otherwise start the run.
    """
    async with kos._graph() as graph:  # noqa: SLF001 - the package's own graph
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    values = snapshot.values or {}
    same = query is None or values.get("query") == query
    if values and (snapshot.next or snapshot.tasks) and same:  # tasks: see KnowledgeOS.aresume
        return await kos.aresume(thread_id)
    if query is None:
        if not values:
            raise InputError(f"thread {thread_id!r} has no checkpoint")
        return await kos.aresume(thread_id)
    if values and same and snapshot.created_at and snapshot.created_at >= enqueued_at:
        from knowledge_os.api import RunResult

        return RunResult.from_state(values, thread_id)
    return await kos.arun(query, thread_id=thread_id, dead_letter=False, **options)


async def _has_failed(app: procrastinate.App, job_id: int) -> bool:
    """Whether a failure of job ``job_id`` is recorded (it is on the dead-letter list)."""
    try:
        row = await app.connector.execute_query_one_async(
            "SELECT EXISTS (SELECT 1 FROM kos_job_failures WHERE job_id = %(job_id)s) AS failed", job_id=job_id)
    except Exception as exc:  # metrics only: never fail a job over them
        logger.warning("could not read the failures of job %s: %s", job_id, exc)
        return False
    return bool(row["failed"])


async def _record_failure(app: procrastinate.App, kos: KnowledgeOS, job_id: int, thread_id: str,
                          attempts: int, exc: BaseException) -> None:
    from knowledge_os.memory.base import MAX_ERROR_CHARS, MAX_STACK_CHARS

    try:
        async with kos._graph() as graph:  # noqa: SLF001
            snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        checkpoint_id = (snapshot.config.get("configurable") or {}).get("checkpoint_id")
        run_id = (snapshot.values or {}).get("run_id")
        await app.connector.execute_query_async(
            """INSERT INTO kos_job_failures (job_id, thread_id, run_id, checkpoint_id, attempts, error, stack)
               VALUES (%(job_id)s, %(thread_id)s, %(run_id)s, %(checkpoint_id)s, %(attempts)s, %(error)s, %(stack)s)
               ON CONFLICT (job_id) DO UPDATE SET run_id = EXCLUDED.run_id,
                   checkpoint_id = EXCLUDED.checkpoint_id, attempts = EXCLUDED.attempts,
                   error = EXCLUDED.error, stack = EXCLUDED.stack, updated_at = now()""",
            job_id=job_id, thread_id=thread_id, run_id=run_id, checkpoint_id=checkpoint_id, attempts=attempts,
            error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS],
            stack="".join(traceback.format_exception(exc))[-MAX_STACK_CHARS:],
        )
    except Exception as record_exc:  # never hide the run's own error
        logger.error("could not record the failure of job %s: %s", job_id, record_exc)


def _payload(thread_id: str, query: str | None, options: dict[str, Any]) -> dict[str, Any]:
    as_of = options.get("as_of")
    return {"thread_id": thread_id, "query": query, "domain": options.get("domain"),
            "path": options.get("path"), "persona": options.get("persona"),
            "as_of": as_of.isoformat() if hasattr(as_of, "isoformat") else as_of,
            "use_cache": options.get("use_cache", True), "loops": options.get("loops", True),
            "qos": options.get("qos"), "enqueued_at": datetime.now(UTC).isoformat()}


async def aenqueue_run(app: procrastinate.App, query: str, *, thread_id: str, **options: Any) -> QueuedRun:
    """Put "run ``query`` on ``thread_id``" on the queue (the app must be open).

    Args:
        options: ``domain``, ``path``, ``persona``, ``as_of`` (ISO day), ``use_cache``,
            ``loops``, ``qos``; already validated by :meth:`KnowledgeOS.aenqueue`.
    """
    job_id = await app.tasks[TASK_NAME].configure(lock=thread_id).defer_async(
        **_payload(thread_id, query, options))
    return QueuedRun(job_id=job_id, thread_id=thread_id)


async def aenqueue_resume(app: procrastinate.App, thread_id: str) -> QueuedRun | None:
    """Put "resume ``thread_id``" on the queue; None when a resume of it is already waiting
    (the queueing lock dropped this one)."""
    from procrastinate.exceptions import AlreadyEnqueued

    try:
        job_id = await app.tasks[TASK_NAME].configure(
            lock=thread_id, queueing_lock=f"resume:{thread_id}").defer_async(**_payload(thread_id, None, {}))
    except AlreadyEnqueued:
        logger.info("a resume of thread %s is already queued; this one is dropped", thread_id)
        return None
    return QueuedRun(job_id=job_id, thread_id=thread_id)


_STATUS_SQL = """CASE WHEN j.status = 'failed' THEN 'permanent_failure'
                      WHEN j.status = 'succeeded' THEN 'reprocessed' ELSE 'pending' END"""


async def list_dead_letters(app: procrastinate.App, *, status: str | None = None,
                            limit: int = 100) -> list[DeadLetterJob]:
    """Queued runs that failed at least once, newest failure first.

    Args:
        status: ``pending``, ``permanent_failure`` or ``reprocessed``; None: all.
        limit: Most rows, 1..1,000.
    """
    rows = await app.connector.execute_query_all_async(
        f"""SELECT j.id, f.thread_id, f.run_id, f.checkpoint_id, {_STATUS_SQL} AS status,
                   f.attempts, f.error, j.scheduled_at
            FROM kos_job_failures f JOIN procrastinate_jobs j ON j.id = f.job_id
            WHERE j.task_name = %(task)s AND (%(status)s::text IS NULL OR {_STATUS_SQL} = %(status)s::text)
            ORDER BY f.updated_at DESC, j.id DESC LIMIT %(limit)s""",
        task=TASK_NAME, status=status, limit=max(1, min(limit, 1000)),
    )
    return [DeadLetterJob(id=r["id"], thread_id=r["thread_id"], run_id=r["run_id"],
                          checkpoint_id=r["checkpoint_id"], status=r["status"], attempts=r["attempts"],
                          error=r["error"], next_attempt_at=r["scheduled_at"]) for r in rows]


async def retry_dead_letter(app: procrastinate.App, job_id: int) -> None:
    """Re-enqueue a permanently failed job, due now; its worker resumes the thread from
    its checkpoint. It gets one more attempt (Procrastinate counts it).

    Raises:
        InputError: no queued run with that id is in ``permanent_failure``.
    """
    rows = await app.connector.execute_query_all_async(
        "SELECT status FROM procrastinate_jobs WHERE id = %(id)s AND task_name = %(task)s",
        id=job_id, task=TASK_NAME)
    if not rows or rows[0]["status"] != "failed":
        found = f"it is {rows[0]['status']}" if rows else "no such job"
        raise InputError(f"job {job_id} is not a permanent failure ({found}); see `kos dlq list`")
    await app.job_manager.retry_job_by_id_async(job_id, retry_at=datetime.now(UTC))


def enqueue_ingest(settings: Settings, paths: Sequence[Path | str] | None = None) -> QueuedIngest:
    """Put an ingest of ``paths`` (None: the default corpus) on the queue (blocking; the
    schema is applied first when missing). See :mod:`knowledge_os.queue.ingest`.

    Raises:
        ConfigError: the queue is not configured.
        BackendUnavailableError: PostgreSQL refused the connection.
    """
    ensure_schema(settings)

    async def main() -> QueuedIngest:
        app = make_app(settings)
        async with app.open_async():
            return await aenqueue_ingest(app, paths)

    return asyncio.run(main())


async def run_worker(settings: Settings, *, concurrency: int | None = None, name: str | None = None,
                     wait: bool = True, kos_factory: KosFactory | None = None) -> None:
    """Run a Procrastinate worker on ``queue.name`` until SIGINT/SIGTERM (``wait=False``:
    until the queue has no due job).

    Args:
        concurrency: Jobs at once; default ``queue.concurrency``.
        name: Worker name in Procrastinate's tables and logs.
    """
    await asyncio.to_thread(ensure_schema, settings)
    app = make_app(settings, kos_factory)
    async with app.open_async():
        recovery = asyncio.create_task(_recover_stalled(app, settings), name="kos stalled-job recovery")
        try:
            await app.run_worker_async(
                queues=[settings.queue.name], concurrency=concurrency or settings.queue.concurrency,
                name=name, wait=wait, update_heartbeat_interval=settings.queue.heartbeat_s,
                fetch_job_polling_interval=settings.queue.poll_s,
                stalled_worker_timeout=settings.queue.stalled_after_s)
        finally:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery
            kos = app.kos_instance.get("kos")  # type: ignore[attr-defined]
            if kos is not None:
                await kos.aclose()


async def recover_stalled(app: procrastinate.App, settings: Settings) -> list[int]:
    """Put back the jobs of stalled workers (no heartbeat for ``queue.stalled_after_s``:
    killed, frozen, cut off) as due now, for any worker to resume from the thread's
    checkpoint (an ingest job redoes what its content hashes show undone). The lost
    attempt counts as one of the job's attempts.

    Returns:
        Ids of the jobs put back by this call (another worker may have taken the rest).
    """
    stalled = [job for task in (TASK_NAME, INGEST_TASK) for job in await app.job_manager.get_stalled_jobs(
        queue=settings.queue.name, task_name=task, seconds_since_heartbeat=settings.queue.stalled_after_s)]
    recovered = []
    for job in stalled:
        try:
            await app.job_manager.retry_job(job, retry_at=datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - another worker put it back first
            logger.debug("stalled job %s not put back: %s", job.id, exc)
            continue
        logger.warning("job %s (thread %s) of stalled worker %s put back on the queue",
                       job.id, job.lock, job.worker_id)
        recovered.append(job.id)
        # Procrastinate notifies workers of inserted jobs only; without this a job put back
        # waits for a worker's next poll (every 5 s). Channel and payload as its insert trigger
        # (procrastinate_notify_queue_job_inserted_v1); should they change, workers still poll.
        with contextlib.suppress(Exception):
            await app.connector.execute_query_async(
                "SELECT pg_notify(%(channel)s, %(payload)s)", channel=f"procrastinate_queue_v1#{job.queue}",
                payload=f'{{"type": "job_inserted", "job_id": {int(job.id)}}}')
    return recovered


async def _recover_stalled(app: procrastinate.App, settings: Settings) -> None:
    """:func:`recover_stalled` every ``queue.heartbeat_s`` seconds, while the worker runs."""
    while True:
        try:
            await recover_stalled(app, settings)
        except Exception as exc:  # noqa: BLE001 - the database may be away for a while; try again
            logger.warning("stalled-job check failed: %s", exc)
        await asyncio.sleep(settings.queue.heartbeat_s)
