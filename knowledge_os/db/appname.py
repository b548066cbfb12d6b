"""The ``application_name`` every PostgreSQL connection of ours reports, so that a
connection seen in ``pg_stat_activity`` names its owner.

One name per owner (:data:`APPLICATION_NAMES`). It is a *fallback*, as ``psql`` does it
(libpq's ``fallback_application_name``): an ``application_name`` in ``postgres.dsn`` or
the ``PGAPPNAME`` environment variable wins, so an operator who names a deployment's
connections keeps that name. asyncpg reads neither ``PGAPPNAME`` nor fallbacks, so
:func:`asyncpg_server_settings` applies the same order by hand.

Source of the rules: PostgreSQL 15 manual, "34.1.2 Parameter Key Words"
(``application_name``, ``fallback_application_name``) and "20.8.1 Where to Log"
(``application_name``: at most NAMEDATALEN - 1 = 63 bytes, printable ASCII).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

__all__ = ["APPLICATION_NAMES", "application_name", "asyncpg_server_settings", "psycopg_fallback"]

APPLICATION_NAMES: dict[str, str] = {
    "memory": "kos memory",  # the shared asyncpg pool: episodic memory, dead-letter queue
    "checkpointer": "kos checkpointer",  # LangGraph's PostgreSQL saver
    "migrations": "kos migrations",  # yoyo, while it applies the schema
    "document store": "kos document store",  # db.sync.SyncPool, one per store
    "answer cache": "kos answer cache",
    "shared embeddings": "kos shared embeddings",
    "queue": "kos queue",  # Procrastinate's pool and its LISTEN connection
    "queue schema": "kos queue schema",
    "readiness": "kos readiness",  # kos serve's /readyz probe
}
"""Owner -> ``application_name``; each at most 63 ASCII bytes."""


def application_name(owner: str) -> str:
    """The ``application_name`` of ``owner``'s connections.

    Args:
        owner: A key of :data:`APPLICATION_NAMES`.

    Raises:
        KeyError: an owner not listed (a new connection must be named there).
    """
    return APPLICATION_NAMES[owner]


def psycopg_fallback(owner: str) -> dict[str, str]:
    """Connection keywords for psycopg / libpq: ``{"fallback_application_name": ...}``.

    Pass them to ``psycopg.connect(dsn, **...)``, a pool's ``kwargs``, or append them to a
    URI's query (libpq reads the same key there).
    """
    return {"fallback_application_name": application_name(owner)}


def asyncpg_server_settings(dsn: str, owner: str) -> dict[str, str]:
    """``server_settings`` for asyncpg with libpq's order: the DSN's own
    ``?application_name=`` (asyncpg passes it on itself, so nothing is added), else
    ``PGAPPNAME``, else ``owner``'s name.

    Args:
        dsn: A ``postgresql://`` URI (asyncpg takes no key/value DSNs).
        owner: A key of :data:`APPLICATION_NAMES`.

    Returns:
        ``{}`` or ``{"application_name": name}``.
    """
    if "application_name" in parse_qs(urlsplit(dsn).query):
        return {}
    return {"application_name": os.environ.get("PGAPPNAME") or application_name(owner)}
