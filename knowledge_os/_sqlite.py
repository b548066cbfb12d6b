"""Opening the embedded SQLite stores, one way for all of them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from knowledge_os.errors import BackendUnavailableError

__all__ = ["open_sqlite"]


def open_sqlite(path: Path | str, *, schema: str, what: str, busy_timeout_s: float = 30.0) -> sqlite3.Connection:
    """A connection for use from several threads (callers serialise with a lock), in
    autocommit mode (explicit BEGIN/COMMIT), WAL journal, ``synchronous=NORMAL``, with
    ``schema`` applied. The parent folder is created.

    Raises:
        BackendUnavailableError: the file cannot be opened or the schema applied; the
            message names ``what`` and the path.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(schema)
    except sqlite3.Error as exc:
        raise BackendUnavailableError(f"cannot open {what} {path}: {exc}") from exc
    return conn
