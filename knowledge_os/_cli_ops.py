"""Operations sub-commands of ``kos``: ``db``, ``memory``, ``dlq`` and ``persona`` (mounted in cli.py).

Each command loads :class:`Settings` from the usual sources, opens the configured store
(``settings.storage.memory``), and closes it (and the shared PostgreSQL pool) before it
returns. Exit codes follow cli.py: 0 success, 1 some work failed, 2 bad configuration or
an unreachable backend (one line on stderr).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Optional, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from knowledge_os.errors import KnowledgeOSError

__all__ = ["db_app", "dlq_app", "memory_app", "persona_app"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
memory_app = typer.Typer(no_args_is_help=True, help="Episodic memory.")
dlq_app = typer.Typer(no_args_is_help=True, help="Dead-letter queue.")
persona_app = typer.Typer(no_args_is_help=True, help="Persona profiles.")



@db_app.callback()
def _db() -> None:
    """Database schema (PostgreSQL migrations) and checkpoint pruning."""


_out = Console()
_err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]


def _settings() -> Any:
    from knowledge_os.settings import Settings

    return Settings()


def _fail(exc: Exception) -> None:
    _err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _run(main: Callable[[], Awaitable[T]], settings: Any) -> T:
    """Run ``main`` in a fresh loop; close the shared PostgreSQL pool afterwards."""

    async def wrapper() -> T:
        try:
            return await main()
        finally:
            if settings.storage.memory == "postgres":
                from knowledge_os.db.pool import close_pool

                await close_pool()

    try:
        return asyncio.run(wrapper())
    except KnowledgeOSError as exc:
        _fail(exc)
        raise  # unreachable: _fail raises typer.Exit


def _iso(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending PostgreSQL migrations (``postgres.dsn``); SQLite tables need none."""
    settings = _settings()
    if settings.postgres.dsn is None:
        _out.print("postgres.dsn is not set: nothing to upgrade (SQLite stores create their tables)")
        return
    from knowledge_os.db.pool import redact_dsn, upgrade

    try:
        applied = upgrade(settings)
    except KnowledgeOSError as exc:
        _fail(exc)
    where = redact_dsn(settings.postgres.dsn.get_secret_value())
    if applied:
        _out.print(f"applied {len(applied)} migration(s) to {where}: {', '.join(applied)}")
    else:
        _out.print(f"{where} is up to date")
    if settings.queue.backend == "procrastinate":
        from knowledge_os.queue.app import ensure_schema

        try:
            created = ensure_schema(settings)
        except KnowledgeOSError as exc:
            _fail(exc)
        _out.print(f"Procrastinate schema {'applied to' if created else 'already on'} {where}")


@db_app.command("prune")
def db_prune(
    older_than_days: Annotated[
        Optional[int],
        typer.Option(min=1, help="Finished threads idle this long are deleted; default "
                     "storage.checkpoint_retention_days (30)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the counts as one JSON object.")] = False,
) -> None:
    """Prune checkpoints: finished threads keep their latest one (or go, when idle past the
    retention); interrupted threads are kept for `kos resume`."""
    from knowledge_os.graph.prune import prune_checkpoints

    settings = _settings()

    async def main() -> Any:
        return await prune_checkpoints(settings, older_than_days=older_than_days)

    report = _run(main, settings)
    if json_out:
        typer.echo(orjson.dumps(report.as_dict()).decode())
        return
    _out.print(f"{report.checkpoints_deleted} checkpoint(s) deleted: {report.threads_pruned} finished thread(s) "
               f"cut to their latest checkpoint, {report.threads_deleted} idle thread(s) deleted, "
               f"{report.threads_kept} interrupted thread(s) kept")


@memory_app.command("purge")
def memory_purge(
    older_than_days: Annotated[
        Optional[int],
        typer.Option(min=1, help="Cut-off in days; default storage.memory_retention_days (90)."),
    ] = None,
) -> None:
    """Delete episodic events older than the retention period."""
    from knowledge_os.memory.factory import make_episodic_memory

    settings = _settings()
    days = older_than_days or settings.storage.memory_retention_days

    async def main() -> int:
        memory = make_episodic_memory(settings)
        try:
            return await memory.purge(older_than_days=days)
        finally:
            await memory.close()

    deleted = _run(main, settings)
    _out.print(f"deleted {deleted} event(s) older than {days} day(s)")


@memory_app.command("recent")
def memory_recent(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most events shown.")] = 20,
    event_type: Annotated[Optional[str], typer.Option("--type", help="Only this event type.")] = None,
    entity_id: Annotated[Optional[str], typer.Option(help="Only this entity (a run id ...).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the newest episodic events."""
    from knowledge_os.memory.factory import make_episodic_memory

    settings = _settings()

    async def main() -> list[Any]:
        memory = make_episodic_memory(settings)
        try:
            return await memory.recent(
                limit=limit, entity_id=entity_id, types=[event_type] if event_type else None
            )
        finally:
            await memory.close()

    events = _run(main, settings)
    if json_out:
        for e in events:
            typer.echo(orjson.dumps({
                "id": e.id, "type": e.type, "entity_type": e.entity_type,
                "entity_id": e.entity_id, "metadata": e.metadata, "created_at": _iso(e.created_at),
            }).decode())
        return
    table = Table("id", "created_at (UTC)", "type", "entity", "metadata")
    for e in events:
        meta = orjson.dumps(e.metadata).decode()
        table.add_row(str(e.id), _iso(e.created_at), e.type, f"{e.entity_type}:{e.entity_id}",
                      meta if len(meta) <= 80 else meta[:77] + "...")
    _out.print(table)


@dlq_app.command("list")
def dlq_list(
    status: Annotated[
        Optional[str], typer.Option(help="pending, reprocessed or permanent_failure.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List dead letters, newest first."""
    from knowledge_os.memory._common import STATUSES
    from knowledge_os.memory.factory import make_dead_letter_queue

    if status is not None and status not in STATUSES:
        _fail(ValueError(f"unknown status {status!r}; allowed: {', '.join(STATUSES)}"))
    settings = _settings()
    if settings.queue.backend == "procrastinate":
        _queued_dlq_list(settings, status, limit, json_out)
        return

    async def main() -> list[Any]:
        queue = make_dead_letter_queue(settings)
        try:
            return await queue.list(status=status, limit=limit)
        finally:
            await queue.close()

    letters = _run(main, settings)
    if json_out:
        for d in letters:
            typer.echo(orjson.dumps({
                "id": d.id, "run_id": d.run_id, "thread_id": d.thread_id,
                "checkpoint_id": d.checkpoint_id, "status": d.status, "attempts": d.attempts,
                "next_attempt_at": _iso(d.next_attempt_at), "error": d.error,
            }).decode())
        return
    table = Table("id", "status", "attempts", "next attempt (UTC)", "thread", "error")
    for d in letters:
        error = d.error if len(d.error) <= 60 else d.error[:57] + "..."
        table.add_row(str(d.id), d.status, str(d.attempts), _iso(d.next_attempt_at), d.thread_id, error)
    _out.print(table)


def _queued_dlq_list(settings: Any, status: str | None, limit: int, json_out: bool) -> None:
    """`kos dlq list` on the queue: failed Procrastinate jobs of runs (knowledge_os.queue)."""
    from knowledge_os.queue.app import ensure_schema, list_dead_letters, make_app

    async def main() -> list[Any]:
        await asyncio.to_thread(ensure_schema, settings)
        app = make_app(settings)
        async with app.open_async():
            return await list_dead_letters(app, status=status, limit=limit)

    jobs = _run(main, settings)
    if json_out:
        for d in jobs:
            typer.echo(orjson.dumps({
                "id": d.id, "run_id": d.run_id, "thread_id": d.thread_id, "checkpoint_id": d.checkpoint_id,
                "status": d.status, "attempts": d.attempts, "next_attempt_at": _iso(d.next_attempt_at),
                "error": d.error,
            }).decode())
        return
    table = Table("job", "status", "attempts", "due (UTC)", "thread", "checkpoint", "error")
    for d in jobs:
        error = d.error if len(d.error) <= 60 else d.error[:57] + "..."
        table.add_row(str(d.id), d.status, str(d.attempts), _iso(d.next_attempt_at), d.thread_id,
                      d.checkpoint_id or "", error)
    _out.print(table)


@dlq_app.command("retry")
def dlq_retry(job_id: Annotated[int, typer.Argument(help="The job id `kos dlq list` shows.")]) -> None:
    """Re-enqueue a permanently failed queued run; a worker resumes it from its checkpoint."""
    settings = _settings()
    if settings.queue.backend != "procrastinate":
        _fail(KnowledgeOSError("kos dlq retry works on queued runs (queue.backend: procrastinate); "
                               "without a queue, `kos dlq work` resumes due letters"))
    from knowledge_os.queue.app import ensure_schema, make_app, retry_dead_letter

    async def main() -> None:
        await asyncio.to_thread(ensure_schema, settings)
        app = make_app(settings)
        async with app.open_async():
            await retry_dead_letter(app, job_id)

    _run(main, settings)
    _out.print(f"job {job_id} re-enqueued; a `kos worker` resumes it from its checkpoint")


@dlq_app.command("work")
def dlq_work(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most letters resumed.")] = 10,
) -> None:
    """Resume due dead letters from their checkpoints (retry bookkeeping included)."""
    from knowledge_os.api import resume_dead_letter
    from knowledge_os.memory.dlq_worker import work_due
    from knowledge_os.memory.factory import make_dead_letter_queue

    settings = _settings()
    if settings.queue.backend == "procrastinate":
        _fail(KnowledgeOSError("queue.backend is procrastinate: `kos worker` retries failed runs; "
                               "see `kos dlq list` and `kos dlq retry ID`"))

    async def main() -> dict[str, int]:
        queue = make_dead_letter_queue(settings)
        try:
            return await work_due(queue, resume_dead_letter, limit=limit)
        finally:
            await queue.close()

    counts = _run(main, settings)
    _out.print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    if counts["rescheduled"] or counts["permanent_failure"]:
        raise typer.Exit(1)


# -- personas ------------------------------------------------------------------------------


def _personas() -> Any:
    from knowledge_os.services import Services

    return Services(_settings())


@persona_app.command("build")
def persona_build(json_out: JsonOpt = False) -> None:
    """Embed every persona profile (in batches) and store the index under <home>/personas."""
    try:
        services = _personas()
        registry = services.personas
        index = registry.build()
    except KnowledgeOSError as exc:
        _fail(exc)
    rows = [{"name": n, "version": index.versions[n]} for n in index.names]
    if json_out:
        for row in rows:
            typer.echo(orjson.dumps({**row, "embedder": index.embedder}).decode())
        return
    _out.print(f"{len(rows)} persona profiles embedded by {index.embedder} into {registry.index_folder}",
               highlight=False)


@persona_app.command("list")
def persona_list(json_out: JsonOpt = False) -> None:
    """The persona profiles (built-in, <home>/personas.yaml, personas.files) and their versions."""
    from knowledge_os.personas.profiles import profile_version, summary_text

    try:
        services = _personas()
        registry = services.personas
    except KnowledgeOSError as exc:
        _fail(exc)
    from knowledge_os.personas.tokens import token_counter

    count, tokenizer = token_counter(services.chat_model)
    rows = [{"name": p.name, "reader": p.reader, "version": profile_version(p), "interests": list(p.interests),
             "summary_tokens": count(summary_text(p))} for p in registry.profiles.values()]
    if json_out:
        for row in rows:
            typer.echo(orjson.dumps(row).decode())
        return
    table = Table("name", "reader", "version", "interests", f"summary tokens ({tokenizer})")
    for r in rows:
        table.add_row(r["name"], r["reader"], r["version"], ", ".join(r["interests"]), str(r["summary_tokens"]))
    _out.print(table)


@persona_app.command("resolve")
def persona_resolve(
    persona: Annotated[str, typer.Argument(help="A profile name or free text (e.g. 'the security team').")],
) -> None:
    """Show which profile a persona resolves to (by name, or free text by embedding)."""
    try:
        resolved = _personas().personas.resolve(persona)
    except KnowledgeOSError as exc:
        _fail(exc)
    typer.echo(orjson.dumps(resolved.record() if resolved else None).decode())
