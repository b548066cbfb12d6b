"""Episodic memory and the dead-letter queue: value objects and async protocols.

Both have a SQLite implementation (embedded default) and a PostgreSQL one (production),
and both pass one conformance suite. Rules from the production-backends issue:
reads return at most 1,000 events; retention 90 days by default; a dead letter gets at
most 3 attempts with backoff ``60 * 2**n`` seconds; error text is cut to 1,000
characters and the stack to 5,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_ERROR_CHARS",
    "MAX_READ_EVENTS",
    "MAX_STACK_CHARS",
    "DeadLetter",
    "DeadLetterQueue",
    "EpisodicEvent",
    "EpisodicMemory",
    "EventType",
    "backoff_s",
]

MAX_READ_EVENTS = 1000
MAX_ATTEMPTS = 3
MAX_ERROR_CHARS = 1000
MAX_STACK_CHARS = 5000

EventType = Literal[
    "run_started",
    "run_completed",
    "error",
    "retry",
    "quality_low",
    "fallback_used",
    "budget_exceeded",
    "cache_hit",
]


def backoff_s(attempts: int) -> int:
    """Delay before the next attempt after ``attempts`` failed ones: ``60 * 2**attempts``."""
    return 60 * 2**attempts


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodicEvent:
    """One event in a run's history.

    Attributes:
        type: Event type (see :data:`EventType`).
        entity_type: What the event is about: ``"run"``, ``"domain"``, ``"document"`` ...
        entity_id: Its id (a run id, a domain name ...).
        metadata: JSON-serialisable details (references, not document bodies).
        created_at: Timezone-aware UTC time; set by the store when None.
        id: Store-assigned id; None before insert.
    """

    type: str
    entity_type: str
    entity_id: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    id: int | None = None


@runtime_checkable
class EpisodicMemory(Protocol):
    async def record(self, event: EpisodicEvent) -> int:
        """Store one event; returns its id."""

    async def record_many(self, events: Sequence[EpisodicEvent]) -> None:
        """Store events in one transaction."""

    async def record_once(self, events: Sequence[EpisodicEvent], *, done_type: str) -> bool:
        """Store ``events`` (at least one) unless the store already holds an event of type
        ``done_type`` for the entity of the last one (its ``entity_type`` and
        ``entity_id``): the events of a run, written again by a retried ``finalize``, go in
        once. Returns True when they were written."""

    async def recent(
        self,
        *,
        limit: int = 100,
        entity_type: str | None = None,
        entity_id: str | None = None,
        types: Sequence[str] | None = None,
        since: datetime | None = None,
    ) -> list[EpisodicEvent]:
        """Newest first; ``limit`` is clamped to 1..MAX_READ_EVENTS."""

    async def errors(self, *, since: datetime | None = None, limit: int = 100) -> list[EpisodicEvent]:
        """Error history (``type == "error"``), newest first."""

    async def purge(self, *, older_than_days: int) -> int:
        """Delete events older than the cut-off; returns how many."""

    async def close(self) -> None: ...


DeadLetterStatus = Literal["pending", "reprocessed", "permanent_failure"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A failed run waiting to be resumed from its checkpoint.

    Attributes:
        id: Store-assigned id.
        run_id, thread_id: The failed run and its LangGraph thread.
        checkpoint_id: Last checkpoint of the thread when it failed (None if none).
        payload: JSON input needed to resume (query, domain, options).
        error: Error text, at most 1,000 characters.
        stack: Traceback, at most 5,000 characters.
        attempts: Failed attempts so far (1 after enqueue).
        status: pending -> reprocessed | permanent_failure.
        next_attempt_at: When it is due (UTC).
    """

    id: int
    run_id: str
    thread_id: str
    checkpoint_id: str | None
    payload: Mapping[str, Any]
    error: str
    stack: str
    attempts: int
    status: str
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime


@runtime_checkable
class DeadLetterQueue(Protocol):
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
        """Record a failed run (attempts=1, due after ``backoff_s(1)``); returns its id."""

    async def claim_due(self, *, limit: int = 10, now: datetime | None = None) -> list[DeadLetter]:
        """Pending letters due at ``now``, oldest first; claimed ones are not returned to
        another caller until released by ``mark_reprocessed`` / ``mark_failed``."""

    async def mark_reprocessed(self, letter_id: int) -> None: ...

    async def mark_failed(self, letter_id: int, *, error: str, stack: str = "") -> DeadLetter:
        """Count a failed attempt; reschedule with backoff, or ``permanent_failure`` at
        ``MAX_ATTEMPTS``. Returns the updated letter."""

    async def get(self, letter_id: int) -> DeadLetter | None: ...

    async def list(self, *, status: str | None = None, limit: int = 100) -> list[DeadLetter]: ...

    async def close(self) -> None: ...
