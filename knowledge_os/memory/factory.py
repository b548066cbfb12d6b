"""Pick the episodic memory and dead-letter queue from ``settings.storage.memory``."""

from __future__ import annotations

import logging

from knowledge_os.errors import UnknownNameError
from knowledge_os.memory.base import DeadLetterQueue, EpisodicMemory
from knowledge_os.settings import Settings

__all__ = ["MEMORY_BACKENDS", "make_dead_letter_queue", "make_episodic_memory"]

logger = logging.getLogger(__name__)

MEMORY_BACKENDS = ("sqlite", "postgres")


def make_episodic_memory(settings: Settings) -> EpisodicMemory:
    """Build the configured episodic memory.

    ``sqlite``: tables in ``settings.sqlite_path`` (parent folder created).
    ``postgres``: the shared asyncpg pool on ``settings.postgres.dsn`` (opened, and the
    schema migrated, on first use).

    Raises:
        UnknownNameError: ``settings.storage.memory`` is not one of :data:`MEMORY_BACKENDS`.
        BackendUnavailableError: the SQLite file cannot be opened.
    """
    backend = settings.storage.memory
    if backend == "sqlite":
        from knowledge_os.memory.sqlite import SqliteEpisodicMemory

        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteEpisodicMemory(settings.sqlite_path)
    if backend == "postgres":
        from knowledge_os.memory.postgres import PostgresEpisodicMemory

        return PostgresEpisodicMemory(settings)
    raise UnknownNameError("memory backend", str(backend), MEMORY_BACKENDS)


def make_dead_letter_queue(settings: Settings) -> DeadLetterQueue:
    """Build the configured dead-letter queue (same backends and errors as
    :func:`make_episodic_memory`); claims are leased for
    ``settings.storage.dead_letter_lease_s`` seconds."""
    backend = settings.storage.memory
    lease_s = settings.storage.dead_letter_lease_s
    if backend == "sqlite":
        from knowledge_os.memory.sqlite import SqliteDeadLetterQueue

        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteDeadLetterQueue(settings.sqlite_path, lease_s=lease_s)
    if backend == "postgres":
        from knowledge_os.memory.postgres import PostgresDeadLetterQueue

        return PostgresDeadLetterQueue(settings, lease_s=lease_s)
    raise UnknownNameError("memory backend", str(backend), MEMORY_BACKENDS)
