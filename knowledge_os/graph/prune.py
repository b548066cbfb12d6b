"""Prune the checkpoint database (``kos db prune``).

Every node of every run writes a checkpoint, so a thread's checkpoints grow with each run.
A finished thread (nothing left to run) needs only its latest checkpoint: it holds the
state a continuation or ``kos run --thread`` reads. So:

- a finished thread whose latest checkpoint is older than ``older_than_days`` is deleted;
- any other finished thread keeps only its latest checkpoint;
- an interrupted thread (a next node is pending) is kept whole: ``kos resume`` needs it.

Both savers store each channel value once per version (SQLite:
:class:`knowledge_os.graph.checkpointer.SqliteSaverInThreads`), so keeping the latest also
deletes the values no kept checkpoint references: SQLite through the saver's
``keep_latest``, PostgreSQL through its own ``aprune(strategy="keep_latest")``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from knowledge_os.graph.builder import builder
from knowledge_os.graph.checkpointer import open_checkpointer
from knowledge_os.settings import Settings

__all__ = ["PruneReport", "prune_checkpoints"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneReport:
    """What :func:`prune_checkpoints` did.

    Attributes:
        threads_pruned: Finished threads cut down to their latest checkpoint.
        threads_deleted: Finished threads idle past the retention, deleted.
        threads_kept: Interrupted threads left whole.
        checkpoints_deleted: Checkpoints removed in all.
    """

    threads_pruned: int = 0
    threads_deleted: int = 0
    threads_kept: int = 0
    checkpoints_deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def _counts(saver: Any, kind: str) -> dict[str, int]:
    """Checkpoints per thread id."""
    sql = "SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id"
    if kind == "sqlite":
        def read() -> list[tuple[str, int]]:
            with saver.cursor(transaction=False) as cur:
                return cur.execute(sql).fetchall()

        return {str(t): int(n) for t, n in await asyncio.to_thread(read)}
    cur = await saver.conn.execute(sql)  # open_checkpointer's saver holds one psycopg connection (dict rows)
    return {str(r["thread_id"]): int(r["count"]) for r in await cur.fetchall()}


async def prune_checkpoints(settings: Settings, *, older_than_days: int | None = None,
                            now: datetime | None = None) -> PruneReport:
    """Prune the configured checkpointer's database (see the module docstring).

    Args:
        settings: Picks the checkpointer (``storage.checkpointer``).
        older_than_days: Retention of finished threads, days >= 1; default
            ``storage.checkpoint_retention_days``.
        now: The present (UTC); None = now. For tests.

    Returns:
        The counts; all zero for the in-memory checkpointer (it lives with the process).

    Raises:
        ValueError: ``older_than_days`` < 1.
        ConfigError, BackendUnavailableError: as :func:`open_checkpointer`.
    """
    days = older_than_days if older_than_days is not None else settings.storage.checkpoint_retention_days
    if days < 1:
        raise ValueError(f"older_than_days must be >= 1, got {days}")
    kind = settings.storage.checkpointer
    if kind == "memory":
        return PruneReport()
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    pruned = deleted = kept = 0
    async with open_checkpointer(settings) as saver:
        graph = builder.compile(checkpointer=saver)
        before = await _counts(saver, kind)
        for thread_id in sorted(before):
            config = {"configurable": {"thread_id": thread_id}}
            snapshot = await graph.aget_state(config)
            if snapshot.next:
                kept += 1
                continue
            latest = await saver.aget_tuple(config)
            ts = datetime.fromisoformat(latest.checkpoint["ts"]) if latest is not None else None
            if ts is not None and ts < cutoff:
                await saver.adelete_thread(thread_id)
                deleted += 1
            elif before[thread_id] > 1:
                if kind == "sqlite":
                    await asyncio.to_thread(saver.keep_latest, thread_id)
                else:
                    await saver.aprune([thread_id], strategy="keep_latest")
                pruned += 1
        after = await _counts(saver, kind)
    removed = sum(before.values()) - sum(after.values())
    logger.info("pruned checkpoints: %d thread(s) cut to the latest, %d deleted, %d interrupted kept, "
                "%d checkpoint(s) removed", pruned, deleted, kept, removed)
    return PruneReport(threads_pruned=pruned, threads_deleted=deleted, threads_kept=kept,
                       checkpoints_deleted=removed)
