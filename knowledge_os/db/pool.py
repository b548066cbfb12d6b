"""The shared asyncpg pool and schema migrations for PostgreSQL.

One pool per process and event loop (asyncpg pools are bound to the loop that made
them): :func:`get_pool` creates it on first use, after applying the schema migrations
once per process and DSN; :func:`close_pool` closes the running loop's pools.

Migrations use **yoyo-migrations**: plain ``.sql`` files in ``knowledge_os/db/migrations``
(with ``.rollback.sql`` twins), a hash-tracked history table and a lock table so that
several workers starting at once apply each migration exactly once. It is small (two
pure-Python dependencies) and needs no ORM; alembic would bring SQLAlchemy and
Python-coded revisions for a handful of ``CREATE TABLE`` statements. Yoyo talks DB-API,
so it runs over psycopg 3 (already required by langgraph-checkpoint-postgres) in a
worker thread; the application itself uses asyncpg.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import weakref
from typing import TYPE_CHECKING
from urllib.parse import quote

from knowledge_os.db.appname import asyncpg_server_settings, psycopg_fallback
from knowledge_os.errors import BackendTimeoutError, BackendUnavailableError, ConfigError
from knowledge_os.settings import Settings

if TYPE_CHECKING:
    import asyncpg

__all__ = ["MIGRATIONS_SOURCE", "close_pool", "get_pool", "redact_dsn", "upgrade"]

logger = logging.getLogger(__name__)

MIGRATIONS_SOURCE = "package:knowledge_os:db/migrations"
MIGRATION_LOCK_TIMEOUT_S = 60

_URI_PASSWORD = re.compile(r"(?<=://)([^:/@]*):([^@]*)@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncpg.Pool]] = (
    weakref.WeakKeyDictionary()
)
_pool_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
_upgraded: set[str] = set()
_upgrade_lock = threading.Lock()


def redact_dsn(dsn: str) -> str:
    """Hide the password of a URI DSN (``user:***@``), a ``?password=`` query parameter,
    or a key/value DSN's ``password=...``."""
    if "://" in dsn:
        return _QUERY_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1:***@", dsn))
    return _KV_PASSWORD.sub(r"\1***", dsn)


def _dsn(settings: Settings) -> str:
    if settings.postgres.dsn is None:
        raise ConfigError(
            "postgres.dsn is not set (KOS_POSTGRES__DSN), but a PostgreSQL backend is selected"
        )
    return settings.postgres.dsn.get_secret_value()


def _yoyo_uri(dsn: str, connect_timeout_s: float) -> str:
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgres", "postgresql"):
        raise ConfigError(
            f"postgres.dsn must be a postgresql:// URI for migrations, got {redact_dsn(dsn)!r}"
        )
    extra = {"connect_timeout": str(max(1, round(connect_timeout_s))), **psycopg_fallback("migrations")}
    for key, value in extra.items():  # yoyo hands the query's keys to psycopg.connect
        if f"{key}=" not in rest:
            rest = f"{rest}{'&' if '?' in rest else '?'}{key}={quote(value)}"
    return f"postgresql+psycopg://{rest}"


def upgrade(settings: Settings) -> list[str]:
    """Apply pending schema migrations to ``settings.postgres.dsn`` (blocking).

    Safe to call from several processes at once (yoyo's lock table serialises them).

    Returns:
        Ids of the migrations applied by this call, in order (empty when up to date).

    Raises:
        ConfigError: no DSN, or the DSN is not a ``postgresql://`` URI.
        BackendUnavailableError: the server refused or did not answer (DSN redacted).
        BackendTimeoutError: another process held the migration lock for 60 s.
    """
    from yoyo import get_backend, read_migrations
    from yoyo.exceptions import LockTimeout

    dsn = _dsn(settings)
    where = redact_dsn(dsn)
    try:
        backend = get_backend(_yoyo_uri(dsn, settings.postgres.connect_timeout_s))
    except ConfigError:
        raise
    except Exception as exc:
        raise BackendUnavailableError(f"PostgreSQL at {where}: cannot connect: {exc}") from exc
    try:
        migrations = read_migrations(MIGRATIONS_SOURCE)
        with backend.lock(timeout=MIGRATION_LOCK_TIMEOUT_S):
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    except LockTimeout as exc:
        raise BackendTimeoutError(f"PostgreSQL at {where}: migration lock timed out") from exc
    except Exception as exc:
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            raise BackendUnavailableError(f"PostgreSQL at {where}: {exc}") from exc
        raise
    finally:
        backend.connection.close()
    applied = [m.id for m in pending]
    if applied:
        logger.info("applied migrations %s to %s", ", ".join(applied), where)
    return applied


async def _ensure_upgraded(settings: Settings, dsn: str) -> None:
    with _upgrade_lock:
        if dsn in _upgraded:
            return
    await asyncio.to_thread(upgrade, settings)
    with _upgrade_lock:
        _upgraded.add(dsn)


async def get_pool(settings: Settings) -> asyncpg.Pool:
    """The shared pool for ``settings.postgres.dsn`` on the running event loop.

    The first call per process and DSN applies the migrations (:func:`upgrade`); the first
    call per loop creates the pool with ``pool_min_size`` / ``pool_max_size`` connections,
    ``connect_timeout_s`` and ``command_timeout_s``; its connections report
    ``application_name`` ``kos memory`` (:mod:`knowledge_os.db.appname`).

    Raises:
        ConfigError: no DSN configured.
        BackendUnavailableError: the server refused (bad credentials, unknown database)
            or did not answer within ``connect_timeout_s``; the DSN is named, password
            redacted.
    """
    import asyncpg

    dsn = _dsn(settings)
    loop = asyncio.get_running_loop()
    lock = _pool_locks.setdefault(loop, asyncio.Lock())
    async with lock:
        pools = _pools.setdefault(loop, {})
        pool = pools.get(dsn)
        if pool is not None and not pool.is_closing():
            return pool
        await _ensure_upgraded(settings, dsn)
        pg = settings.postgres
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min(pg.pool_min_size, pg.pool_max_size),
                max_size=pg.pool_max_size,
                command_timeout=pg.command_timeout_s,
                timeout=pg.connect_timeout_s,
                server_settings=asyncpg_server_settings(dsn, "memory"),
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise BackendUnavailableError(
                f"PostgreSQL at {redact_dsn(dsn)}: cannot open pool: {exc}"
            ) from exc
        pools[dsn] = pool
        logger.debug("opened asyncpg pool for %s", redact_dsn(dsn))
        return pool


async def close_pool() -> None:
    """Close every pool of the running event loop (call at shutdown; idempotent)."""
    loop = asyncio.get_running_loop()
    pools = _pools.pop(loop, {})
    for pool in pools.values():
        await pool.close()
