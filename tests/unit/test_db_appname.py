"""Every PostgreSQL connection of ours names its owner in ``pg_stat_activity``, unless the
DSN or ``PGAPPNAME`` names it (libpq's order)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from knowledge_os.db.appname import APPLICATION_NAMES, application_name, asyncpg_server_settings, psycopg_fallback


def test_names_are_distinct_and_fit_in_pg_stat_activity() -> None:
    names = list(APPLICATION_NAMES.values())
    assert len(set(names)) == len(names)
    # NAMEDATALEN - 1 bytes, printable ASCII (PostgreSQL 15, "application_name"); longer is cut
    assert all(len(n.encode()) <= 63 and n.isascii() and n.isprintable() for n in names), names


def test_an_unlisted_owner_is_an_error() -> None:
    with pytest.raises(KeyError):
        application_name("somebody")


def test_psycopg_gets_a_fallback_the_dsn_overrides() -> None:
    assert psycopg_fallback("checkpointer") == {"fallback_application_name": "kos checkpointer"}
    # libpq resolves application_name > PGAPPNAME > fallback_application_name at connect time
    info = psycopg.conninfo.conninfo_to_dict(make_conninfo("postgresql://u@h/db?application_name=ops",
                                                           **psycopg_fallback("checkpointer")))
    assert (info["application_name"], info["fallback_application_name"]) == ("ops", "kos checkpointer")


def test_asyncpg_follows_libpqs_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGAPPNAME", raising=False)
    assert asyncpg_server_settings("postgresql://u@h/db", "memory") == {"application_name": "kos memory"}
    assert asyncpg_server_settings("postgresql://u@h/db?sslmode=disable&application_name=ops", "memory") == {}
    monkeypatch.setenv("PGAPPNAME", "worker-7")
    assert asyncpg_server_settings("postgresql://u@h/db", "memory") == {"application_name": "worker-7"}
