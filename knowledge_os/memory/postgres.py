"""Episodic memory and the dead-letter queue in PostgreSQL (production), over asyncpg.

Both stores borrow connections from the process's shared pool
(:func:`knowledge_os.db.pool.get_pool`), whose first use applies the schema migrations
(``knowledge_os/db/migrations``). ``close()`` does not close the shared pool; call
:func:`knowledge_os.db.pool.close_pool` at shutdown.

JSON columns are sent as text cast to ``jsonb`` and read back as text, so no type codec
is installed on the shared pool. A claim is one statement: the due rows are locked with
``FOR UPDATE SKIP LOCKED`` (concurrent workers skip each other's rows instead of
waiting) and leased with ``claimed_until`` in the same transaction, so a letter stays
claimed after the transaction until ``mark_*`` or the lease (default 900 s) runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from knowledge_os.db.pool import get_pool, redact_dsn
from knowledge_os.errors import BackendUnavailableError
from knowledge_os.memory._common import (
    DEFAULT_LEASE_S,
    as_utc,
    clamp_limit,
    cut_error,
    cut_stack,
    dumps,
    next_failure_state,
    utcnow,
)
from knowledge_os.memory.base import DeadLetter, EpisodicEvent, backoff_s
from knowledge_os.settings import Settings

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresDeadLetterQueue", "PostgresEpisodicMemory"]

logger = logging.getLogger(__name__)

_EVENT_COLS = "id, type, entity_type, entity_id, metadata::text AS metadata, created_at"
_LETTER_FIELDS = (
    "id", "run_id", "thread_id", "checkpoint_id", "payload", "error", "stack", "attempts",
    "status", "next_attempt_at", "created_at", "updated_at",
)


def _letter_cols(prefix: str = "") -> str:
    return ", ".join(
        f"{prefix}{f}::text AS {f}" if f == "payload" else f"{prefix}{f}" for f in _LETTER_FIELDS
    )


_LETTER_COLS = _letter_cols()
_INSERT_EVENT = (
    "INSERT INTO kos_episodic_events (type, entity_type, entity_id, metadata, created_at) "
    "VALUES ($1, $2, $3, $4::jsonb, $5)"
)


def _event(r: asyncpg.Record) -> EpisodicEvent:
    return EpisodicEvent(
        id=r["id"],
        type=r["type"],
        entity_type=r["entity_type"],
        entity_id=r["entity_id"],
        metadata=orjson.loads(r["metadata"]),
        created_at=r["created_at"],
    )


def _letter(r: asyncpg.Record) -> DeadLetter:
    return DeadLetter(
        id=r["id"],
        run_id=r["run_id"],
        thread_id=r["thread_id"],
        checkpoint_id=r["checkpoint_id"],
        payload=orjson.loads(r["payload"]),
        error=r["error"],
        stack=r["stack"],
        attempts=r["attempts"],
        status=r["status"],
        next_attempt_at=r["next_attempt_at"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


class _PooledStore:
    """Access to the shared pool with client errors translated."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def _pool(self) -> asyncpg.Pool:
        return await get_pool(self._settings)

    def _unavailable(self, exc: BaseException) -> BackendUnavailableError:
        dsn = self._settings.postgres.dsn
        where = redact_dsn(dsn.get_secret_value()) if dsn is not None else "<no dsn>"
        return BackendUnavailableError(f"PostgreSQL at {where}: {exc}")

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        import asyncpg

        pool = await self._pool()
        try:
            return await pool.fetch(sql, *args)
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        """No-op: the pool is shared; see :func:`knowledge_os.db.pool.close_pool`."""


class PostgresEpisodicMemory(_PooledStore):
    """:class:`~knowledge_os.memory.base.EpisodicMemory` in table ``kos_episodic_events``.

    Args:
        settings: ``settings.postgres`` gives the DSN and pool limits.

    Raises:
        BackendUnavailableError: the server refused or went away (DSN redacted).
        InputError: event metadata that is not JSON-serialisable.
    """

    async def record(self, event: EpisodicEvent) -> int:
        """Store one event (``created_at`` defaults to now, UTC); returns its id."""
        rows = await self._fetch(_INSERT_EVENT + " RETURNING id", *self._row(event))
        return int(rows[0]["id"])

    async def record_many(self, events: Sequence[EpisodicEvent]) -> None:
        """Store events in one transaction (``executemany``)."""
        import asyncpg

        rows = [self._row(e) for e in events]
        if not rows:
            return
        pool = await self._pool()
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.executemany(_INSERT_EVENT, rows)
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
            raise self._unavailable(exc) from exc

    async def record_once(self, events: Sequence[EpisodicEvent], *, done_type: str) -> bool:
        """Store ``events`` unless an event of type ``done_type`` for the last event's
        entity is there; True when written. The check (:meth:`recent`) and the write
        (:meth:`record_many`) are two statements: one job per thread runs at a time (the
        queue's thread lock), so no second writer of the same run's events comes between."""
        if not events:
            raise ValueError("record_once needs at least one event")
        last = events[-1]
        if await self.recent(entity_type=last.entity_type, entity_id=last.entity_id, types=(done_type,), limit=1):
            return False
        await self.record_many(events)
        return True

    async def recent(
        self,
        *,
        limit: int = 100,
        entity_type: str | None = None,
        entity_id: str | None = None,
        types: Sequence[str] | None = None,
        since: datetime | None = None,
    ) -> list[EpisodicEvent]:
        """Newest first (``created_at``, then id); ``limit`` clamped to 1..1,000."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("entity_type", entity_type), ("entity_id", entity_id)):
            if value is not None:
                args.append(value)
                where.append(f"{column} = ${len(args)}")
        if types is not None:
            args.append(list(types))
            where.append(f"type = ANY(${len(args)}::text[])")
        if since is not None:
            args.append(as_utc(since))
            where.append(f"created_at >= ${len(args)}")
        args.append(clamp_limit(limit))
        sql = f"SELECT {_EVENT_COLS} FROM kos_episodic_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_at DESC, id DESC LIMIT ${len(args)}"
        return [_event(r) for r in await self._fetch(sql, *args)]

    async def errors(self, *, since: datetime | None = None, limit: int = 100) -> list[EpisodicEvent]:
        """Error events (``type == "error"``), newest first."""
        return await self.recent(limit=limit, types=("error",), since=since)

    async def purge(self, *, older_than_days: int) -> int:
        """Delete events created more than ``older_than_days`` days ago; returns how many."""
        cutoff = utcnow() - timedelta(days=older_than_days)
        rows = await self._fetch(
            "WITH gone AS (DELETE FROM kos_episodic_events WHERE created_at < $1 RETURNING 1) "
            "SELECT count(*) AS n FROM gone",
            cutoff,
        )
        return int(rows[0]["n"])

    @staticmethod
    def _row(event: EpisodicEvent) -> tuple[Any, ...]:
        created = as_utc(event.created_at) if event.created_at is not None else utcnow()
        return (
            event.type,
            event.entity_type,
            event.entity_id,
            dumps(event.metadata, "event metadata"),
            created,
        )


class PostgresDeadLetterQueue(_PooledStore):
    """:class:`~knowledge_os.memory.base.DeadLetterQueue` in table ``kos_dead_letters``.

    Args:
        settings: ``settings.postgres`` gives the DSN and pool limits.
        lease_s: How long a claim holds a letter before it is due again, seconds.

    Raises:
        BackendUnavailableError: the server refused or went away (DSN redacted).
        KeyError: ``mark_*`` on an unknown letter id.
    """

    def __init__(self, settings: Settings, *, lease_s: int = DEFAULT_LEASE_S) -> None:
        super().__init__(settings)
        self.lease_s = lease_s

    async def enqueue(
        self,
        *,
        run_id: str,
        thread_id: str,
        checkpoint_id: str | None,
        payload: Mapping[str, Any],
        error: str,
        stack: str = "",
    ) -> int:
        """Record a failed run: attempts 1, due ``backoff_s(1)`` = 120 s from now."""
        now = utcnow()
        rows = await self._fetch(
            "INSERT INTO kos_dead_letters (run_id, thread_id, checkpoint_id, payload, error, "
            "stack, attempts, status, next_attempt_at, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4::jsonb, $5, $6, 1, 'pending', $7, $8, $8) RETURNING id",
            run_id,
            thread_id,
            checkpoint_id,
            dumps(payload, "dead-letter payload"),
            cut_error(error),
            cut_stack(stack),
            now + timedelta(seconds=backoff_s(1)),
            now,
        )
        return int(rows[0]["id"])

    async def claim_due(self, *, limit: int = 10, now: datetime | None = None) -> list[DeadLetter]:
        """Pending letters due at ``now`` and not leased, ordered by (next_attempt_at, id);
        each is leased for ``lease_s`` seconds (``FOR UPDATE SKIP LOCKED``)."""
        at = as_utc(now) if now is not None else utcnow()
        rows = await self._fetch(
            "WITH due AS (SELECT id FROM kos_dead_letters WHERE status = 'pending' "
            "AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) "
            "ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
            f"UPDATE kos_dead_letters AS d SET claimed_until = $3 FROM due WHERE d.id = due.id "
            f"RETURNING {_letter_cols('d.')}",
            at,
            clamp_limit(limit),
            at + timedelta(seconds=self.lease_s),
        )
        letters = [_letter(r) for r in rows]
        letters.sort(key=lambda d: (d.next_attempt_at, d.id))
        return letters

    async def mark_reprocessed(self, letter_id: int) -> None:
        """Resume succeeded: status ``reprocessed``, lease released."""
        rows = await self._fetch(
            "UPDATE kos_dead_letters SET status = 'reprocessed', claimed_until = NULL, "
            "updated_at = now() WHERE id = $1 RETURNING id",
            letter_id,
        )
        if not rows:
            raise KeyError(f"no dead letter {letter_id}")

    async def mark_failed(self, letter_id: int, *, error: str, stack: str = "") -> DeadLetter:
        """Count a failed attempt: rescheduled after ``60 * 2**attempts`` s, or
        ``permanent_failure`` at 3 attempts. A letter no longer pending is returned as is."""
        import asyncpg

        now = utcnow()
        pool = await self._pool()
        try:
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    f"SELECT {_LETTER_COLS} FROM kos_dead_letters WHERE id = $1 FOR UPDATE",
                    letter_id,
                )
                if row is None:
                    raise KeyError(f"no dead letter {letter_id}")
                if row["status"] != "pending":
                    return _letter(row)
                attempts, status, due = next_failure_state(row["attempts"], now)
                row = await conn.fetchrow(
                    "UPDATE kos_dead_letters SET attempts = $2, status = $3, next_attempt_at = $4, "
                    "error = $5, stack = $6, claimed_until = NULL, updated_at = $7 WHERE id = $1 "
                    f"RETURNING {_LETTER_COLS}",
                    letter_id,
                    attempts,
                    status,
                    due,
                    cut_error(error),
                    cut_stack(stack),
                    now,
                )
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
            raise self._unavailable(exc) from exc
        return _letter(row)

    async def get(self, letter_id: int) -> DeadLetter | None:
        """The letter, or None."""
        rows = await self._fetch(
            f"SELECT {_LETTER_COLS} FROM kos_dead_letters WHERE id = $1", letter_id
        )
        return _letter(rows[0]) if rows else None

    async def list(self, *, status: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Letters, newest first (by id), optionally of one status; ``limit`` 1..1,000."""
        rows = await self._fetch(
            f"SELECT {_LETTER_COLS} FROM kos_dead_letters "
            "WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2",
            status,
            clamp_limit(limit),
        )
        return [_letter(r) for r in rows]
