"""Choose the checkpointer from settings: SQLite (default), PostgreSQL, or in memory.

Two ways to get one:

- :func:`open_checkpointer`, an async context manager for one piece of work (``kos db
  prune``, tests reading a thread's history): the library's own async savers.
- :func:`open_sqlite_saver`, the SQLite checkpointer a :class:`knowledge_os.KnowledgeOS`
  keeps open for all its runs (:class:`SqliteSaverInThreads`): it belongs to no event
  loop and runs no thread of its own, so one instance serves the synchronous methods'
  loop, a server's loop and ``asyncio.run`` alike, and a script that never closes it
  still exits.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from knowledge_os.errors import BackendUnavailableError, ConfigError, UnknownNameError
from knowledge_os.settings import Settings

__all__ = ["CHECKPOINTERS", "SqliteSaverInThreads", "open_checkpointer", "open_sqlite_saver"]

CHECKPOINTERS = ("sqlite", "postgres", "memory")
_MEMORY_SAVER = InMemorySaver()  # one per process, so threads survive between runs
_SETUP_LOCK_KEY = "knowledge_os checkpointer setup"


class SqliteSaverInThreads(SqliteSaver):
    """LangGraph's synchronous ``SqliteSaver`` with its async methods run in the event
    loop's default executor (``asyncio.to_thread``).

    The same tables, serialiser, transactions and durability as LangGraph's savers (one
    commit per checkpoint and per task's writes, WAL journal, SQLite's default
    ``synchronous=FULL``: a committed checkpoint survives a crash of the process or
    the machine). What differs from ``AsyncSqliteSaver`` is the plumbing: one
    ``sqlite3`` connection guarded by ``SqliteSaver``'s lock instead of an aiosqlite
    connection bound to one loop with a non-daemon thread of its own, and one executor
    hop per checkpoint operation instead of one per SQL statement, cursor and commit.
    """

    async def aget_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self, config: dict[str, Any] | None, *, filter: dict[str, Any] | None = None,  # noqa: A002 (LangGraph's name)
        before: dict[str, Any] | None = None, limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        # Read them all in one hop: ``list`` holds the connection's lock while it yields.
        rows = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for row in rows:
            yield row

    async def aput(self, config: dict[str, Any], checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> dict[str, Any]:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: dict[str, Any], writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def aget_delta_channel_history(self, *, config: dict[str, Any],
                                         channels: Sequence[str]) -> Mapping[str, Any]:
        return await asyncio.to_thread(lambda: self.get_delta_channel_history(config=config, channels=channels))

    def close(self) -> None:
        """Close the connection (a later call of any method raises ``sqlite3.ProgrammingError``)."""
        with self.lock:
            self.conn.close()


def open_sqlite_saver(settings: Settings) -> SqliteSaverInThreads:
    """The SQLite checkpointer at ``settings.checkpoint_path``, tables created; the caller
    closes it (:meth:`SqliteSaverInThreads.close`).

    Raises:
        BackendUnavailableError: the file cannot be opened or its tables created.
    """
    path = settings.checkpoint_path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        saver = SqliteSaverInThreads(sqlite3.connect(str(path), check_same_thread=False))
        saver.setup()
    except sqlite3.Error as exc:
        raise BackendUnavailableError(f"cannot open the checkpoint database {path}: {exc}") from exc
    return saver


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[Any]:
    """An async checkpointer for ``settings.storage.checkpointer``, set up and closed.

    Raises:
        ConfigError: postgres chosen without ``postgres.dsn``.
        BackendUnavailableError: PostgreSQL did not accept the connection.
        UnknownNameError: an unknown checkpointer name.
    """
    kind = settings.storage.checkpointer
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        settings.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(settings.checkpoint_path)) as saver:
            yield saver
    elif kind == "memory":
        yield _MEMORY_SAVER
    elif kind == "postgres":
        dsn = settings.postgres.dsn
        if dsn is None:
            raise ConfigError("storage.checkpointer is 'postgres' but postgres.dsn (KOS_POSTGRES__DSN) is not set")
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.conninfo import make_conninfo

        from knowledge_os.db.appname import psycopg_fallback
        from knowledge_os.db.pool import redact_dsn

        try:  # its connection reports application_name "kos checkpointer" (knowledge_os/db/appname.py)
            cm = AsyncPostgresSaver.from_conn_string(make_conninfo(dsn.get_secret_value(),
                                                                   **psycopg_fallback("checkpointer")))
            saver = await cm.__aenter__()
            # Workers on several hosts open their first checkpointer at once on a fresh
            # database; LangGraph's setup() is not safe to run concurrently (two inserts
            # of one checkpoint_migrations row), so it runs under a session advisory lock.
            # Polled with pg_try_advisory_lock: a session blocked in pg_advisory_lock keeps
            # a snapshot, which the holder's CREATE INDEX CONCURRENTLY waits for (deadlock).
            while not (await (await saver.conn.execute(  # the saver's rows are dicts
                    "SELECT pg_try_advisory_lock(hashtext(%s)) AS locked", (_SETUP_LOCK_KEY,))).fetchone())["locked"]:
                await asyncio.sleep(0.05)
            try:
                await saver.setup()
            finally:
                await saver.conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_SETUP_LOCK_KEY,))
        except Exception as exc:
            raise BackendUnavailableError(f"PostgreSQL checkpointer at {redact_dsn(dsn.get_secret_value())}: {exc}") from exc
        try:
            yield saver
        finally:
            await cm.__aexit__(None, None, None)
    else:
        raise UnknownNameError("checkpointer", kind, CHECKPOINTERS)
