"""Choose the checkpointer from settings: SQLite (default), PostgreSQL, or in memory.

Two ways to get one:

- :func:`open_checkpointer`, an async context manager for one piece of work (``kos db
  prune``, tests reading a thread's history).
- :func:`open_sqlite_saver`, the SQLite checkpointer a :class:`knowledge_os.KnowledgeOS`
  keeps open for all its runs (:class:`SqliteSaverInThreads`): it belongs to no event
  loop and runs no thread of its own, so one instance serves the synchronous methods'
  loop, a server's loop and ``asyncio.run`` alike, and a script that never closes it
  still exits.

Both give :class:`SqliteSaverInThreads` for SQLite: it stores each channel value once per
channel version, as LangGraph's PostgreSQL saver does, so a checkpoint no longer rewrites
the channels its step left alone (a thread's ``history``, the documents, the plan).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, closing
from typing import Any

from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.utils import load_pending_writes, pending_writes_sql, search_where

from knowledge_os.errors import BackendError, BackendUnavailableError, ConfigError, UnknownNameError
from knowledge_os.graph.state import EVERY_STEP_CHANNELS
from knowledge_os.settings import Settings

__all__ = ["CHECKPOINTERS", "SqliteSaverInThreads", "open_checkpointer", "open_sqlite_saver"]

CHECKPOINTERS = ("sqlite", "postgres", "memory")
_MEMORY_SAVER = InMemorySaver()  # one per process, so threads survive between runs
_SETUP_LOCK_KEY = "knowledge_os checkpointer setup"

_BLOB_LAYOUT = "blobs+"
"""Prefix of the ``type`` of a checkpoint row written by :class:`SqliteSaverInThreads`:
its non-scalar channel values are rows of ``checkpoint_blobs``, not in the row itself.
LangGraph's own savers do not know the prefix, so they fail on such a row (``Unknown
serialization type``) instead of reading a state with channels missing."""

_APART_KEY = "channels_apart"
"""Key of a stored checkpoint of this layout listing the channels whose values are in
``checkpoint_blobs`` (removed when the checkpoint is read back)."""

_BLOB_MIN_ITEMS = 8
"""A list channel value of at least this many items is stored once per version (a
thread's ``history``, the documents, the citations); a shorter list, a dict (small, or
like the manifest written by the last step) and a scalar stay in the row."""
_BLOB_MIN_CHARS = 1024
"""Likewise a string of more than this many characters (an answer)."""

_BLOBS_TABLE = """CREATE TABLE IF NOT EXISTS checkpoint_blobs (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    blob BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
) WITHOUT ROWID"""

_SELECT = ("SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata "
           "FROM checkpoints ")
_INSERT_BLOBS = ("INSERT OR IGNORE INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
                 "VALUES (?, ?, ?, ?, ?, ?)")
_INSERT_CHECKPOINT = ("INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
                      "parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)")
_LAST_PUT_MAX = 4096  # threads whose last checkpoint a saver remembers (then it forgets them all)
_BLOBS_PER_QUERY = 400  # (channel, version) pairs per SELECT, well under SQLite's 32,766 variables


def _stored_apart(value: Any) -> bool:
    """Whether a channel value goes to ``checkpoint_blobs`` (written once per version)
    rather than into every checkpoint row: a list of :data:`_BLOB_MIN_ITEMS` items or
    more, a string longer than :data:`_BLOB_MIN_CHARS`. Small values cost less serialised
    with the row (one msgpack call) than as rows of their own."""
    kind = type(value)
    if kind is list:
        return len(value) >= _BLOB_MIN_ITEMS
    return kind is str and len(value) > _BLOB_MIN_CHARS


class SqliteSaverInThreads(SqliteSaver):
    """LangGraph's synchronous ``SqliteSaver`` storing each channel value once per channel
    version, its async methods run in the event loop's default executor
    (``asyncio.to_thread``).

    Layout: LangGraph's ``checkpoints`` and ``writes`` tables, plus ``checkpoint_blobs``
    (one row per thread, namespace, channel and version, as ``PostgresSaver``'s table of
    that name). A large channel value (:func:`_stored_apart`: a list of 8 items or more, a
    string over 1,024 characters) is written by the first checkpoint that has its version
    and read back by version, unless its channel is one of ``inline_channels`` (written by
    every step: storing it apart saves nothing); the rest stays in each checkpoint row
    with the channel versions. A step that leaves a thread's ``history`` alone writes no byte of
    it, so checkpoints no longer grow with the thread. Rows of the older layout (the
    whole state in the row, as ``SqliteSaver`` writes) are read as before, and the first
    checkpoint after one writes every large value it holds, so a thread started by an
    older version continues; nothing is rewritten in place. Rows of this layout carry the
    type prefix ``blobs+``, which LangGraph's own savers refuse to read.

    The same serialiser, transactions and durability as LangGraph's savers: one commit per
    checkpoint (its blobs with it) and per task's writes, WAL journal, SQLite's default
    ``synchronous=FULL``: a committed checkpoint survives a crash of the process or the
    machine. One ``sqlite3`` connection guarded by ``SqliteSaver``'s lock, one executor
    hop per checkpoint operation (``AsyncSqliteSaver`` makes one per SQL statement and
    binds its connection to one event loop).

    Raises:
        BackendError: (reads) a checkpoint row or value cannot be deserialised, or a value
            the row references is missing; the message names the file, thread, namespace
            and checkpoint id.
    """

    _has_blobs: bool = True

    def __init__(self, conn: sqlite3.Connection, *, inline_channels: Collection[str] = (), **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        self.inline_channels = frozenset(inline_channels)
        """Channels whose values always stay in the checkpoint row, whatever their size."""
        self._last_put: dict[tuple[str, str], str] = {}
        """(thread, namespace) -> id of the checkpoint this saver put last there: a put whose
        parent it is needs no look-up of the parent's layout."""
        files = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"]
        self.path = files[0] if files and files[0] else ":memory:"
        """The database file (``:memory:`` for an in-memory database), for error messages."""

    def setup(self) -> None:
        """LangGraph's tables and ``checkpoint_blobs``; a read-only file of the older
        layout is still read (it can hold no row of this one)."""
        if self.is_setup:
            return
        super().setup()
        try:
            self.conn.execute(_BLOBS_TABLE)
            self.conn.commit()
        except sqlite3.OperationalError as exc:
            if "readonly database" not in str(exc):
                raise
            self._has_blobs = False

    # -- reading

    def _load(self, cur: sqlite3.Cursor, thread_id: str, ns: str, checkpoint_id: str, type_: str | None,
              data: bytes) -> Checkpoint:
        """The checkpoint of one ``checkpoints`` row, its channel values complete."""
        try:
            if type_ is None or not type_.startswith(_BLOB_LAYOUT):
                return self.serde.loads_typed((type_, data))
            checkpoint = self.serde.loads_typed((type_[len(_BLOB_LAYOUT):], data))
            values = checkpoint["channel_values"]
            versions = checkpoint["channel_versions"]
            wanted = [(ch, str(versions[ch])) for ch in checkpoint.pop(_APART_KEY)]
            for lo in range(0, len(wanted), _BLOBS_PER_QUERY):
                part = wanted[lo:lo + _BLOBS_PER_QUERY]
                # CROSS JOIN: one primary-key lookup per version (a row-value IN would scan
                # the thread's blobs: SQLite 3.40 uses only thread_id and checkpoint_ns).
                cur.execute("WITH wanted(channel, version) AS (VALUES " + ", ".join(["(?, ?)"] * len(part))
                            + ") SELECT b.channel, b.type, b.blob FROM wanted CROSS JOIN checkpoint_blobs AS b "
                            "ON b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = wanted.channel "
                            "AND b.version = wanted.version",
                            (*(x for pair in part for x in pair), thread_id, ns))
                for channel, blob_type, blob in cur.fetchall():
                    values[channel] = self.serde.loads_typed((blob_type, blob))
            if missing := [ch for ch, _ in wanted if ch not in values]:
                raise LookupError(f"no stored value of channel(s) {', '.join(missing)} at their version")
            return checkpoint
        except Exception as exc:
            raise BackendError(f"{self.path}: cannot read checkpoint {checkpoint_id} of thread {thread_id!r} "
                               f"(namespace {ns!r}): {type(exc).__name__}: {exc}") from exc

    def _tuple(self, cur: sqlite3.Cursor, config: dict[str, Any] | None, row: Sequence[Any]) -> CheckpointTuple:
        thread_id, ns, checkpoint_id, parent_id, type_, data, metadata = row
        checkpoint = self._load(cur, thread_id, ns, checkpoint_id, type_, data)
        cur.execute(pending_writes_sql(self._has_task_path), (thread_id, ns, checkpoint_id))
        return CheckpointTuple(
            config or {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}},
            checkpoint,
            json.loads(metadata) if metadata is not None else {},
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
            if parent_id else None,
            load_pending_writes(cur.fetchall(), self.serde),
        )

    def get_tuple(self, config: dict[str, Any]) -> CheckpointTuple | None:
        """The checkpoint of ``config`` (its ``checkpoint_id``, else the thread's latest),
        with its pending writes and parent config; None if there is none."""
        thread_id = str(config["configurable"]["thread_id"])
        ns = config["configurable"].get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        with self.cursor(transaction=False) as cur:
            if checkpoint_id:
                cur.execute(_SELECT + "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
                            (thread_id, ns, checkpoint_id))
            else:
                cur.execute(_SELECT + "WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1",
                            (thread_id, ns))
            row = cur.fetchone()
            return None if row is None else self._tuple(cur, config if checkpoint_id else None, row)

    def list(self, config: dict[str, Any] | None, *, filter: dict[str, Any] | None = None,  # noqa: A002 (LangGraph's name)
             before: dict[str, Any] | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first, as ``SqliteSaver.list`` (thread, namespace, id,
        metadata ``filter``, ``before``, ``limit``)."""
        where, params = search_where(config, filter, before)
        query = f"{_SELECT}{where} ORDER BY checkpoint_id DESC"
        if limit is not None:
            query, params = query + " LIMIT ?", (*params, limit)
        with self.cursor(transaction=False) as cur, closing(self.conn.cursor()) as other:
            cur.execute(query, params)
            for row in cur:
                yield self._tuple(other, None, row)

    def get_delta_channel_history(self, *, config: dict[str, Any],
                                  channels: Sequence[str]) -> Mapping[str, Any]:
        """LangGraph's generic walk of the parent chain (``SqliteSaver``'s own query reads
        channel values from the checkpoint rows, where this layout keeps only scalars)."""
        return BaseCheckpointSaver.get_delta_channel_history(self, config=config, channels=channels)

    # -- writing

    def _blobs_complete(self, cur: sqlite3.Cursor, thread_id: str, ns: str, checkpoint_id: str | None) -> bool:
        """Whether every value of that checkpoint has its blob (it is of this layout)."""
        if checkpoint_id is None:
            return False
        if self._last_put.get((thread_id, ns)) == checkpoint_id:
            return True
        cur.execute("SELECT type FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
                    (thread_id, ns, checkpoint_id))
        row = cur.fetchone()
        return row is not None and (row[0] or "").startswith(_BLOB_LAYOUT)

    def put(self, config: dict[str, Any], checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> dict[str, Any]:
        """Save a checkpoint and the values of the channel versions it is the first to have
        (``new_versions``); its parent is ``config``'s ``checkpoint_id``.

        Returns:
            The config of the saved checkpoint.
        """
        if not self._has_blobs:
            return super().put(config, checkpoint, metadata, new_versions)
        thread_id = config["configurable"]["thread_id"]
        ns = config["configurable"]["checkpoint_ns"]
        parent_id = config["configurable"].get("checkpoint_id")
        versions = checkpoint["channel_versions"]
        values = checkpoint["channel_values"]
        apart = [ch for ch, v in values.items()  # _stored_apart, inlined: ~25 values per put
                 if (type(v) is list and len(v) >= _BLOB_MIN_ITEMS or type(v) is str and len(v) > _BLOB_MIN_CHARS)
                 and ch in versions and ch not in self.inline_channels]
        stored = {**checkpoint, _APART_KEY: apart}
        if apart:
            stored["channel_values"] = {ch: v for ch, v in values.items() if ch not in apart}
        type_, data = self.serde.dumps_typed(stored)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False).encode("utf-8", "ignore")
        tid = str(thread_id)
        with self.cursor() as cur:
            fresh = [ch for ch in apart if ch in new_versions]
            if len(fresh) < len(apart) and not self._blobs_complete(cur, tid, ns, parent_id):
                fresh = apart  # after a row of the older layout (or none): every value once
            if fresh:
                cur.executemany(_INSERT_BLOBS, [(tid, ns, ch, str(versions[ch]), *self.serde.dumps_typed(values[ch]))
                                                for ch in fresh])
            cur.execute(_INSERT_CHECKPOINT, (tid, ns, checkpoint["id"], parent_id, _BLOB_LAYOUT + type_, data, meta))
            if len(self._last_put) >= _LAST_PUT_MAX:
                self._last_put.clear()
            self._last_put[(tid, ns)] = checkpoint["id"]
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def _forget(self, thread_id: str) -> None:
        with self.lock:
            for key in [k for k in self._last_put if k[0] == str(thread_id)]:
                del self._last_put[key]

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints, writes and blobs."""
        self._forget(thread_id)
        with self.cursor() as cur:
            for table in ("checkpoints", "writes", *(("checkpoint_blobs",) if self._has_blobs else ())):
                cur.execute(f"DELETE FROM {table} WHERE thread_id = ?", (str(thread_id),))  # noqa: S608 (fixed names)

    def keep_latest(self, thread_id: str) -> int:
        """Delete every checkpoint of a thread but the latest of each namespace, their
        writes, and the blobs no kept checkpoint references, in one transaction
        (``kos db prune``).

        Returns:
            Checkpoints deleted.
        """
        self._forget(thread_id)
        with self.cursor() as cur:
            cur.execute(_SELECT + "WHERE thread_id = ?1 AND checkpoint_id IN (SELECT max(checkpoint_id) FROM "
                        "checkpoints WHERE thread_id = ?1 GROUP BY checkpoint_ns)", (str(thread_id),))
            kept = cur.fetchall()
            cur.execute("DELETE FROM checkpoints WHERE thread_id = ?1 AND checkpoint_id NOT IN (SELECT max(checkpoint_id) "
                        "FROM checkpoints WHERE thread_id = ?1 GROUP BY checkpoint_ns)", (str(thread_id),))
            deleted = cur.rowcount
            cur.execute("DELETE FROM writes WHERE thread_id = ?1 AND checkpoint_id NOT IN (SELECT max(checkpoint_id) "
                        "FROM checkpoints WHERE thread_id = ?1 GROUP BY checkpoint_ns)", (str(thread_id),))
            if self._has_blobs:
                referenced = {(ns, ch, str(v)) for _, ns, cid, _, type_, data, _ in kept
                              for ch, v in self._load(cur, str(thread_id), ns, cid, type_, data)["channel_versions"].items()}
                cur.execute("SELECT checkpoint_ns, channel, version FROM checkpoint_blobs WHERE thread_id = ?",
                            (str(thread_id),))
                garbage = [(str(thread_id), *key) for key in cur.fetchall() if tuple(key) not in referenced]
                cur.executemany("DELETE FROM checkpoint_blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? "
                                "AND version = ?", garbage)
        return deleted

    # -- async: each call one hop to the default executor

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
        saver = SqliteSaverInThreads(sqlite3.connect(str(path), check_same_thread=False),
                                     inline_channels=EVERY_STEP_CHANNELS)
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
        saver = open_sqlite_saver(settings)
        try:
            yield saver
        finally:
            saver.close()
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
