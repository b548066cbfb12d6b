"""Ingest as a Procrastinate job (``kos ingest --queue``): any ``kos worker`` reads the
files and writes the shared stores, and every host sees the new corpus at its next run.

A job of :data:`INGEST_TASK` carries the paths to read (absolute, as the enqueuing host
names them: they must exist on the worker's host, e.g. a shared mount or the Debian doc
folder every host has) or none for the default corpus. ``lock = "kos-ingest"`` runs one
ingest at a time across all workers; the retry policy is the runs' (ingest is idempotent:
a retried job skips what the failed one wrote, by content hash). With the shared stores
(``storage.documents=postgres``, ``vectors.backend=postgres_edge``) the other hosts then
read the new corpus generation (the answer-cache scope holds it, so no answer of the old
corpus is served) and copy the new embeddings into their index on their next search.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import procrastinate

if TYPE_CHECKING:
    from knowledge_os.api import KnowledgeOS

__all__ = ["INGEST_LOCK", "INGEST_TASK", "QueuedIngest", "aenqueue_ingest", "register_ingest_task"]

logger = logging.getLogger(__name__)

INGEST_TASK = "kos.ingest"
INGEST_LOCK = "kos-ingest"


@dataclass(frozen=True, slots=True)
class QueuedIngest:
    """An ingest put on the queue.

    Attributes:
        job_id: The Procrastinate job id.
        paths: The absolute paths the worker reads; empty: the default corpus.
    """

    job_id: int
    paths: tuple[str, ...]


def register_ingest_task(app: procrastinate.App, kos: Callable[[], KnowledgeOS], *, queue: str,
                         retry: procrastinate.BaseRetryStrategy) -> None:
    """Register :data:`INGEST_TASK` on ``app``: ``kos().ingest(paths or None)`` in a
    worker thread (ingest blocks), returning the report as a dict."""

    @app.task(name=INGEST_TASK, queue=queue, retry=retry, pass_context=True)
    async def ingest(context: procrastinate.JobContext, *, paths: list[str]) -> dict[str, Any]:
        runner = kos()
        report = await asyncio.to_thread(runner.ingest, paths or None)
        data = report.as_dict()
        logger.info("ingest job %s done by worker %s: %d documents (new %d, updated %d, removed %d), "
                    "%d problem(s)", context.job.id, context.worker_name, data["documents"], data["new"],
                    data["updated"], data["removed"], len(report.problems))
        return data


async def aenqueue_ingest(app: procrastinate.App, paths: Sequence[Path | str] | None = None) -> QueuedIngest:
    """Put "ingest ``paths``" (None or empty: the default corpus) on the queue; the app
    must be open and :data:`INGEST_TASK` registered (``make_app`` does)."""
    absolute = tuple(str(Path(p).absolute()) for p in paths or ())
    job_id = await app.tasks[INGEST_TASK].configure(lock=INGEST_LOCK).defer_async(paths=list(absolute))
    return QueuedIngest(job_id=job_id, paths=absolute)
