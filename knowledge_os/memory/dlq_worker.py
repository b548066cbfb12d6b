"""Work the dead-letter queue: claim due letters, resume each, record the outcome.

The resume callable (``knowledge_os.api.resume_dead_letter`` in the CLI) resumes the
failed run from its checkpoint; this module only does the retry bookkeeping: success ->
``mark_reprocessed``; an exception -> ``mark_failed`` (rescheduled with backoff
``60 * 2**attempts`` s, or ``permanent_failure`` at 3 attempts).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from knowledge_os.memory.base import DeadLetter, DeadLetterQueue

if TYPE_CHECKING:
    from knowledge_os.observability.metrics import Metrics

__all__ = ["work_due"]

logger = logging.getLogger(__name__)


async def work_due(
    queue: DeadLetterQueue,
    resume: Callable[[DeadLetter], Awaitable[None]],
    *,
    limit: int = 10,
    now: datetime | None = None,
    metrics: Metrics | None = None,
) -> dict[str, int]:
    """Claim up to ``limit`` due letters and resume them one after another.

    Args:
        queue: The dead-letter queue.
        resume: Resumes one letter's run; raising means the attempt failed.
        limit: Most letters claimed, 1..1,000.
        now: Claim time (UTC); None = now. For tests and replays.
        metrics: Counts reprocessed letters and permanent failures there, if given.

    Returns:
        Counts: ``{"claimed", "reprocessed", "rescheduled", "permanent_failure"}``.

    Raises:
        BackendError: the queue itself failed (a resume failure never propagates).
    """
    counts = {"claimed": 0, "reprocessed": 0, "rescheduled": 0, "permanent_failure": 0}
    letters = await queue.claim_due(limit=limit, now=now)
    counts["claimed"] = len(letters)
    for letter in letters:
        try:
            await resume(letter)
        except Exception as exc:  # noqa: BLE001 - any failure of the resumed run is recorded
            error = f"{type(exc).__name__}: {exc}"
            updated = await queue.mark_failed(letter.id, error=error, stack=traceback.format_exc())
            key = "permanent_failure" if updated.status == "permanent_failure" else "rescheduled"
            counts[key] += 1
            if metrics is not None and key == "permanent_failure":
                metrics.observe_dead_letter("permanent_failure")
            logger.warning(
                "dead letter %d (run %s) failed attempt %d: %s -> %s",
                letter.id,
                letter.run_id,
                updated.attempts,
                type(exc).__name__,
                updated.status,
            )
        else:
            await queue.mark_reprocessed(letter.id)
            counts["reprocessed"] += 1
            if metrics is not None:
                metrics.observe_dead_letter("reprocessed")
            logger.info("dead letter %d (run %s) reprocessed", letter.id, letter.run_id)
    return counts
