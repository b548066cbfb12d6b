"""Choose the checkpointer from settings: SQLite (default), PostgreSQL, or in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from knowledge_os.errors import BackendUnavailableError, ConfigError, UnknownNameError
from knowledge_os.settings import Settings

__all__ = ["CHECKPOINTERS", "open_checkpointer"]

CHECKPOINTERS = ("sqlite", "postgres", "memory")
_MEMORY_SAVER = InMemorySaver()  # one per process, so threads survive between runs


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

        from knowledge_os.db.pool import redact_dsn

        try:
            cm = AsyncPostgresSaver.from_conn_string(dsn.get_secret_value())
            saver = await cm.__aenter__()
            await saver.setup()
        except Exception as exc:
            raise BackendUnavailableError(f"PostgreSQL checkpointer at {redact_dsn(dsn.get_secret_value())}: {exc}") from exc
        try:
            yield saver
        finally:
            await cm.__aexit__(None, None, None)
    else:
        raise UnknownNameError("checkpointer", kind, CHECKPOINTERS)

