"""Blocking PostgreSQL access for the stores that are called synchronously: the document
store, the answer cache and the shared embeddings (psycopg 3 with psycopg_pool).

The run's async parts (episodic memory, the dead-letter queue) use the asyncpg pool of
:mod:`knowledge_os.db.pool`; the document store is read from synchronous code (retrieval,
trend statistics, ingest), so it gets a small thread-safe psycopg pool instead. Each pool
checks a connection before lending it, so a server restart costs the calls in flight,
not the process.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from knowledge_os.db.appname import psycopg_fallback
from knowledge_os.db.pool import redact_dsn, upgrade
from knowledge_os.errors import BackendUnavailableError, ConfigError
from knowledge_os.settings import Settings

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["SyncPool", "upgrade_once"]

logger = logging.getLogger(__name__)

_upgraded: set[str] = set()
_upgrade_lock = threading.Lock()


def upgrade_once(settings: Settings) -> None:
    """:func:`~knowledge_os.db.pool.upgrade` the first time this process sees the DSN.

    Raises:
        ConfigError, BackendUnavailableError, BackendTimeoutError: as ``upgrade``.
    """
    if settings.postgres.dsn is None:
        raise ConfigError("postgres.dsn is not set (KOS_POSTGRES__DSN), but a PostgreSQL backend is selected")
    dsn = settings.postgres.dsn.get_secret_value()
    with _upgrade_lock:
        if dsn in _upgraded:
            return
        upgrade(settings)
        _upgraded.add(dsn)


class SyncPool:
    """A psycopg connection pool on ``postgres.dsn`` with the migrations applied.

    Args:
        settings: ``postgres.*`` (DSN, ``pool_max_size``, timeouts).
        what: Names the store in errors and logs, e.g. ``"document store"``, and its
            connections in ``pg_stat_activity`` (a key of
            :data:`knowledge_os.db.appname.APPLICATION_NAMES`).

    Raises:
        ConfigError: no DSN configured.
        BackendUnavailableError: the server refused or did not answer within
            ``postgres.connect_timeout_s`` (the DSN named, password redacted).
        KeyError: ``what`` is not a key of ``APPLICATION_NAMES``.
    """

    def __init__(self, settings: Settings, *, what: str) -> None:
        import psycopg_pool

        upgrade_once(settings)
        pg = settings.postgres
        dsn = pg.dsn.get_secret_value()  # type: ignore[union-attr]  # upgrade_once checked it
        self.what = what
        self.where = redact_dsn(dsn)
        timeout_ms = round(pg.command_timeout_s * 1000)

        def configure(conn: psycopg.Connection) -> None:  # each new connection: postgres.command_timeout_s
            conn.execute(f"SET statement_timeout = {timeout_ms}")

        self._pool: psycopg_pool.ConnectionPool = psycopg_pool.ConnectionPool(
            dsn, min_size=1, max_size=max(1, min(pg.pool_max_size, 4)), open=False,
            kwargs={"connect_timeout": max(1, round(pg.connect_timeout_s)), "autocommit": True,
                    **psycopg_fallback(what)},  # pg_stat_activity: "kos document store", ...
            check=psycopg_pool.ConnectionPool.check_connection, timeout=pg.connect_timeout_s,
            configure=configure, name=f"kos {what}",
        )
        self._lent: Counter[int] = Counter()  # thread id -> connections it holds now
        self._lent_changed = threading.Condition()
        self._closing = False
        self._lent_wait_s = pg.command_timeout_s
        self._worker_wait_s = pg.connect_timeout_s + pg.command_timeout_s
        try:
            self._pool.open(wait=True, timeout=pg.connect_timeout_s)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close(timeout=self._worker_wait_s)
            raise BackendUnavailableError(f"{what}: PostgreSQL at {self.where} did not answer: {exc}") from exc
        logger.debug("%s: PostgreSQL pool on %s", what, self.where)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection in autocommit mode (use ``conn.transaction()`` for several
        statements); errors of the server or the network become
        :class:`BackendUnavailableError` naming the store.

        Raises:
            BackendUnavailableError: also once :meth:`close` has begun.
        """
        import psycopg
        import psycopg_pool

        me = threading.get_ident()
        with self._lent_changed:
            if self._closing:
                raise BackendUnavailableError(f"{self.what}: the PostgreSQL pool on {self.where} is closed")
            self._lent[me] += 1
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            raise BackendUnavailableError(f"{self.what}: no PostgreSQL connection to {self.where}: {exc}") from exc
        except psycopg.OperationalError as exc:
            raise BackendUnavailableError(f"{self.what}: PostgreSQL at {self.where}: {exc}") from exc
        finally:
            with self._lent_changed:
                self._lent[me] -= 1
                if not self._lent[me]:
                    del self._lent[me]
                self._lent_changed.notify_all()

    def close(self) -> None:
        """Close every connection; return once they are closed (idempotent).

        New :meth:`connection` calls fail at once. Connections other threads still hold
        are waited for, up to ``postgres.command_timeout_s`` (the longest one statement
        may run); one held longer is logged and closed when its thread returns it.
        Connections the pool's workers are opening are waited for as well, up to
        ``connect_timeout_s + command_timeout_s`` (connect, then the ``SET`` of each new
        connection), and closed. psycopg_pool's own ``close()`` closes only the idle
        connections and gives its workers 5 s (psycopg_pool 3.3 ``ConnectionPool.close``).
        """
        me = threading.get_ident()
        with self._lent_changed:
            self._closing = True
            if not self._lent_changed.wait_for(lambda: self._others_lent(me) == 0, timeout=self._lent_wait_s):
                logger.warning("%s: %d PostgreSQL connection(s) still in use %.0f s after close(); each closes "
                               "when returned", self.what, self._others_lent(me), self._lent_wait_s)
        self._pool.close(timeout=self._worker_wait_s)

    def _others_lent(self, me: int) -> int:
        return sum(n for thread, n in self._lent.items() if thread != me)
