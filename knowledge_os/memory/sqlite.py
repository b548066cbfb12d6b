"""Episodic memory and the dead-letter queue in SQLite (the embedded default).

Tables live in the shared ``kos.db`` next to the graph: ``kos_episodic_events`` and
``kos_dead_letters`` (same names and columns as the PostgreSQL migration; times are
stored as float Unix seconds, UTC). Each store owns one ``sqlite3`` connection used from
worker threads (``asyncio.to_thread``) under a lock, WAL journal. A claim takes SQLite's
write lock (``BEGIN IMMEDIATE``) and sets a lease (``claimed_until``), so two processes
sharing the file never claim the same letter; a claimed letter becomes due again when
its lease (default 900 s) runs out without a ``mark_*`` call (a crashed worker).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson

from knowledge_os._sqlite import open_sqlite
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

__all__ = ["SqliteDeadLetterQueue", "SqliteEpisodicMemory"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kos_episodic_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS kos_episodic_events_created
    ON kos_episodic_events (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS kos_episodic_events_entity
    ON kos_episodic_events (entity_type, entity_id, created_at DESC);
CREATE INDEX IF NOT EXISTS kos_episodic_events_type
    ON kos_episodic_events (type, created_at DESC);
CREATE TABLE IF NOT EXISTS kos_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT,
    payload TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL,
    stack TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'reprocessed', 'permanent_failure')),
    next_attempt_at REAL NOT NULL,
    claimed_until REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS kos_dead_letters_due
    ON kos_dead_letters (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS kos_dead_letters_status ON kos_dead_letters (status, id DESC);
"""

_EVENT_COLS = "id, type, entity_type, entity_id, metadata, created_at"
_LETTER_COLS = (
    "id, run_id, thread_id, checkpoint_id, payload, error, stack, attempts, status, "
    "next_attempt_at, created_at, updated_at"
)


def _ts(value: datetime) -> float:
    return as_utc(value).timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _event(row: Sequence[Any]) -> EpisodicEvent:
    return EpisodicEvent(
        id=row[0],
        type=row[1],
        entity_type=row[2],
        entity_id=row[3],
        metadata=orjson.loads(row[4]),
        created_at=_dt(row[5]),
    )


def _letter(row: Sequence[Any]) -> DeadLetter:
    return DeadLetter(
        id=row[0],
        run_id=row[1],
        thread_id=row[2],
        checkpoint_id=row[3],
        payload=orjson.loads(row[4]),
        error=row[5],
        stack=row[6],
        attempts=row[7],
        status=row[8],
        next_attempt_at=_dt(row[9]),
        created_at=_dt(row[10]),
        updated_at=_dt(row[11]),
    )


class _Connection:
    """One sqlite3 connection used from worker threads, one statement batch at a time."""

    def __init__(self, path: Path | str, busy_timeout_s: float) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, schema=_SCHEMA, what="memory store", busy_timeout_s=busy_timeout_s)

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        return await asyncio.to_thread(self._run, fn, write)

    def _run(self, fn: Callable[[sqlite3.Connection], T], write: bool) -> T:
        with self._lock:
            try:
                if not write:
                    return fn(self._conn)
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(self._conn)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise BackendUnavailableError(f"memory store {self.path}: {exc}") from exc

    async def close(self) -> None:
        def _close() -> None:
            with self._lock:
                self._conn.close()

        await asyncio.to_thread(_close)


class SqliteEpisodicMemory:
    """:class:`~knowledge_os.memory.base.EpisodicMemory` in a SQLite file.

    Args:
        path: The SQLite file (parent must exist).
        busy_timeout_s: How long a write waits for another writer, seconds.

    Raises:
        BackendUnavailableError: the file cannot be opened, or a statement failed.
        InputError: event metadata that is not JSON-serialisable.
    """

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 30.0) -> None:
        self._db = _Connection(path, busy_timeout_s)

    async def record(self, event: EpisodicEvent) -> int:
        """Store one event (``created_at`` defaults to now, UTC); returns its id."""
        row = self._row(event)

        def _insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO kos_episodic_events (type, entity_type, entity_id, metadata, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid)

        return await self._db.run(_insert, write=True)

    async def record_many(self, events: Sequence[EpisodicEvent]) -> None:
        """Store events in one transaction."""
        rows = [self._row(e) for e in events]
        if not rows:
            return
        await self._db.run(
            lambda conn: conn.executemany(
                "INSERT INTO kos_episodic_events (type, entity_type, entity_id, metadata, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            ),
            write=True,
        )

    async def record_once(self, events: Sequence[EpisodicEvent], *, done_type: str) -> bool:
        """Store ``events`` in one transaction unless an event of type ``done_type`` for
        the last event's entity is there; True when written. The check and the write are
        one ``BEGIN IMMEDIATE`` transaction on one worker-thread hand-off (a ``recent``
        then a ``record_many`` cost two: ``benchmarks/bench_overhead.py``), so two
        writers cannot both write."""
        if not events:
            raise ValueError("record_once needs at least one event")
        rows = [self._row(e) for e in events]
        last = events[-1]

        def _write(conn: sqlite3.Connection) -> bool:
            if conn.execute(
                "SELECT 1 FROM kos_episodic_events WHERE entity_type = ? AND entity_id = ? AND type = ? LIMIT 1",
                (last.entity_type, last.entity_id, done_type),
            ).fetchone():
                return False
            conn.executemany(
                "INSERT INTO kos_episodic_events (type, entity_type, entity_id, metadata, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            return True

        return await self._db.run(_write, write=True)

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
        where, params = [], []
        if entity_type is not None:
            where.append("entity_type = ?")
            params.append(entity_type)
        if entity_id is not None:
            where.append("entity_id = ?")
            params.append(entity_id)
        if types is not None:
            where.append("type IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(list(types)).decode())
        if since is not None:
            where.append("created_at >= ?")
            params.append(_ts(since))
        sql = f"SELECT {_EVENT_COLS} FROM kos_episodic_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(clamp_limit(limit))
        rows = await self._db.run(lambda conn: conn.execute(sql, params).fetchall())
        return [_event(r) for r in rows]

    async def errors(self, *, since: datetime | None = None, limit: int = 100) -> list[EpisodicEvent]:
        """Error events (``type == "error"``), newest first."""
        return await self.recent(limit=limit, types=("error",), since=since)

    async def purge(self, *, older_than_days: int) -> int:
        """Delete events created more than ``older_than_days`` days ago; returns how many."""
        cutoff = _ts(utcnow() - timedelta(days=older_than_days))
        return await self._db.run(
            lambda conn: conn.execute(
                "DELETE FROM kos_episodic_events WHERE created_at < ?", (cutoff,)
            ).rowcount,
            write=True,
        )

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()

    @staticmethod
    def _row(event: EpisodicEvent) -> tuple[Any, ...]:
        created = event.created_at if event.created_at is not None else utcnow()
        return (
            event.type,
            event.entity_type,
            event.entity_id,
            dumps(event.metadata, "event metadata"),
            _ts(created),
        )


class SqliteDeadLetterQueue:
    """:class:`~knowledge_os.memory.base.DeadLetterQueue` in a SQLite file.

    Args:
        path: The SQLite file (parent must exist).
        lease_s: How long a claim holds a letter before it is due again, seconds.
        busy_timeout_s: How long a write waits for another writer, seconds.

    Raises:
        BackendUnavailableError: the file cannot be opened, or a statement failed.
        KeyError: ``mark_*`` on an unknown letter id.
    """

    def __init__(
        self, path: Path | str, *, lease_s: int = DEFAULT_LEASE_S, busy_timeout_s: float = 30.0
    ) -> None:
        self.lease_s = lease_s
        self._db = _Connection(path, busy_timeout_s)

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
        row = (
            run_id,
            thread_id,
            checkpoint_id,
            dumps(payload, "dead-letter payload"),
            cut_error(error),
            cut_stack(stack),
            _ts(now + timedelta(seconds=backoff_s(1))),
            _ts(now),
            _ts(now),
        )

        def _insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO kos_dead_letters (run_id, thread_id, checkpoint_id, payload, error, "
                "stack, attempts, status, next_attempt_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 1, 'pending', ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid)

        return await self._db.run(_insert, write=True)

    async def claim_due(self, *, limit: int = 10, now: datetime | None = None) -> list[DeadLetter]:
        """Pending letters due at ``now`` and not leased, ordered by (next_attempt_at, id);
        each is leased for ``lease_s`` seconds."""
        at = _ts(now if now is not None else utcnow())
        until = at + self.lease_s
        n = clamp_limit(limit)

        def _claim(conn: sqlite3.Connection) -> list[DeadLetter]:
            rows = conn.execute(
                f"SELECT {_LETTER_COLS} FROM kos_dead_letters WHERE status = 'pending' "
                "AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) "
                "ORDER BY next_attempt_at, id LIMIT ?",
                (at, at, n),
            ).fetchall()
            conn.executemany(
                "UPDATE kos_dead_letters SET claimed_until = ? WHERE id = ?",
                [(until, r[0]) for r in rows],
            )
            return [_letter(r) for r in rows]

        return await self._db.run(_claim, write=True)

    async def mark_reprocessed(self, letter_id: int) -> None:
        """Resume succeeded: status ``reprocessed``, lease released."""
        now = _ts(utcnow())

        def _mark(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE kos_dead_letters SET status = 'reprocessed', claimed_until = NULL, "
                "updated_at = ? WHERE id = ?",
                (now, letter_id),
            )
            if cur.rowcount == 0:
                raise KeyError(f"no dead letter {letter_id}")

        await self._db.run(_mark, write=True)

    async def mark_failed(self, letter_id: int, *, error: str, stack: str = "") -> DeadLetter:
        """Count a failed attempt: rescheduled after ``60 * 2**attempts`` s, or
        ``permanent_failure`` at 3 attempts. A letter no longer pending is returned as is."""
        now = utcnow()

        def _mark(conn: sqlite3.Connection) -> DeadLetter:
            row = conn.execute(
                f"SELECT {_LETTER_COLS} FROM kos_dead_letters WHERE id = ?", (letter_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"no dead letter {letter_id}")
            if row[8] != "pending":
                return _letter(row)
            attempts, status, due = next_failure_state(row[7], now)
            conn.execute(
                "UPDATE kos_dead_letters SET attempts = ?, status = ?, next_attempt_at = ?, "
                "error = ?, stack = ?, claimed_until = NULL, updated_at = ? WHERE id = ?",
                (attempts, status, _ts(due), cut_error(error), cut_stack(stack), _ts(now), letter_id),
            )
            return _letter(
                conn.execute(
                    f"SELECT {_LETTER_COLS} FROM kos_dead_letters WHERE id = ?", (letter_id,)
                ).fetchone()
            )

        return await self._db.run(_mark, write=True)

    async def get(self, letter_id: int) -> DeadLetter | None:
        """The letter, or None."""
        row = await self._db.run(
            lambda conn: conn.execute(
                f"SELECT {_LETTER_COLS} FROM kos_dead_letters WHERE id = ?", (letter_id,)
            ).fetchone()
        )
        return None if row is None else _letter(row)

    async def list(self, *, status: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Letters, newest first (by id), optionally of one status; ``limit`` 1..1,000."""
        n = clamp_limit(limit)
        if status is None:
            sql, params = f"SELECT {_LETTER_COLS} FROM kos_dead_letters ORDER BY id DESC LIMIT ?", (n,)
        else:
            sql = (
                f"SELECT {_LETTER_COLS} FROM kos_dead_letters WHERE status = ? "
                "ORDER BY id DESC LIMIT ?"
            )
            params = (status, n)
        rows = await self._db.run(lambda conn: conn.execute(sql, params).fetchall())
        return [_letter(r) for r in rows]

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()
