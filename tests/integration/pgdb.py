"""A PostgreSQL database of the tests' own on the test server (``KOS_TEST_POSTGRES_DSN``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from tests.integration.conftest import require_service_env

__all__ = ["SHARED_TABLES", "empty_tables", "own_database"]

# The tables the shared stores write (documents, answer cache, shared embeddings).
SHARED_TABLES = ("kos_documents", "kos_doc_entities", "kos_package_aliases", "kos_corpus_meta",
                 "kos_answer_cache")


def own_database(suffix: str) -> str:
    """The test server's DSN with the database ``<db>_<suffix>``, created when missing;
    skips (fails under CI) when ``KOS_TEST_POSTGRES_DSN`` is unset."""
    import psycopg

    base = require_service_env("KOS_TEST_POSTGRES_DSN")
    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/') or 'postgres'}_{suffix}"
    with psycopg.connect(base, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def empty_tables(dsn: str, tables: tuple[str, ...] = SHARED_TABLES) -> None:
    """Apply the migrations to ``dsn`` and empty ``tables`` (those that exist)."""
    import psycopg

    from knowledge_os.db.sync import upgrade_once
    from knowledge_os.settings import Settings

    upgrade_once(Settings(postgres={"dsn": dsn}))
    with psycopg.connect(dsn, autocommit=True) as conn:
        present = [t for t in tables if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is not None]
        if present:
            conn.execute(f"TRUNCATE {', '.join(present)}")
