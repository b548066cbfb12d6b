"""The document store: SQLite tables for documents, an FTS5 index and an exact entity index.

Tables (in ``Settings.sqlite_path``):

* ``documents`` — one row per :class:`~knowledge_os.retrieval.base.Document`, with the
  file it came from (``origin``; added to older files on open).
* ``documents_fts`` — FTS5 (unicode61, diacritics folded) over title and text, kept in
  step by triggers; ranked by BM25.
* ``doc_entities`` — (entity, doc_id): exact lookup of CVE ids, bug numbers, packages.
* ``package_aliases`` — binary package folder name -> source package (``libc6`` -> ``glibc``).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import orjson

from knowledge_os._sqlite import open_sqlite
from knowledge_os.retrieval.base import Document, VectorFilter

__all__ = ["DocumentStore", "SqliteDocumentStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    ts INTEGER NOT NULL,
    source TEXT NOT NULL,
    metadata TEXT NOT NULL,
    entities TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS documents_channel_ts ON documents(channel, ts);
CREATE INDEX IF NOT EXISTS documents_ts ON documents(ts);
-- pending_count(), once per run: without it a scan of every body (~4 ms at 9,600 entries).
CREATE INDEX IF NOT EXISTS documents_pending ON documents(id) WHERE content_hash = '';
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    title, text, content='documents', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS documents_ai AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, text)
    VALUES ('delete', old.rowid, old.title, old.text);
END;
CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, text)
    VALUES ('delete', old.rowid, old.title, old.text);
    INSERT INTO documents_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TABLE IF NOT EXISTS doc_entities (
    entity TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (entity, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_entities_doc ON doc_entities(doc_id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS package_aliases (
    alias TEXT PRIMARY KEY,
    channel TEXT NOT NULL
) WITHOUT ROWID;
"""

_WORD_RE = re.compile(r"[\w][\w.+-]*", re.UNICODE)
# Question words that match thousands of entries and carry no topic: leaving them out of
# the BM25 query keeps its posting lists short (benchmarks/bench_retrieval.py).
LEXICAL_STOPWORDS = frozenset("""
a about after all an and any are as at be been by can change changed changes did do does
for from has have how in into is it its last new of on or over since so that the this to
up was were what when where which who why will with within year years month months week
quarter package packages upload uploads version versions debian recent recently
и в во на с со по за о об от до что как какие какой какая какое кто где когда почему
ли же это этом этот эта году год месяц месяца квартал квартале изменилось изменения
нового новое пакет пакета версия версии
""".split())


def _row_to_doc(row: sqlite3.Row) -> Document:
    return Document(
        id=row["id"],
        channel=row["channel"],
        title=row["title"],
        text=row["text"],
        ts=row["ts"],
        source=row["source"],
        metadata=orjson.loads(row["metadata"]),
        entities=tuple(orjson.loads(row["entities"])),
        content_hash=row["content_hash"],
        origin=row["origin"],
    )


def _filter_sql(flt: VectorFilter | None, alias: str = "d") -> tuple[str, list[object]]:
    if flt is None or flt.is_empty():
        return "", []
    clauses: list[str] = []
    args: list[object] = []
    if flt.channels:
        clauses.append(f"{alias}.channel IN ({','.join('?' * len(flt.channels))})")
        args.extend(flt.channels)
    if flt.sources:
        clauses.append(f"{alias}.source IN ({','.join('?' * len(flt.sources))})")
        args.extend(flt.sources)
    if flt.ts_from is not None:
        clauses.append(f"{alias}.ts >= ?")
        args.append(flt.ts_from)
    if flt.ts_to is not None:
        clauses.append(f"{alias}.ts < ?")
        args.append(flt.ts_to)
    return " AND " + " AND ".join(clauses), args


class SqliteDocumentStore:
    """Documents with full-text and exact-entity lookup in SQLite (the
    :class:`~knowledge_os.retrieval.base.DocumentStore` protocol). Thread-safe within a
    process.

    Args:
        path: SQLite file (created with its folder), or ``":memory:"``.
    """

    def __init__(self, path: Path | str) -> None:
        self._db = open_sqlite(path, schema=_SCHEMA, what="document store")
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(documents)")}
        if "origin" not in columns:  # a file from before origins were kept
            self._db.execute("ALTER TABLE documents ADD COLUMN origin TEXT NOT NULL DEFAULT ''")
        self._db.execute("CREATE INDEX IF NOT EXISTS documents_origin ON documents(origin)")

    # -- writes ---------------------------------------------------------------------------

    def upsert(self, docs: Sequence[Document]) -> None:
        """Insert or replace documents and their entity rows in one transaction."""
        rows = [
            (
                d.id, d.channel, d.title, d.text, d.ts, d.source,
                orjson.dumps(dict(d.metadata)).decode(), orjson.dumps(list(d.entities)).decode(),
                d.content_hash, d.origin,
            )
            for d in docs
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    """INSERT INTO documents(id, channel, title, text, ts, source, metadata,
                                             entities, content_hash, origin)
                       VALUES (?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT(id) DO UPDATE SET channel=excluded.channel,
                         title=excluded.title, text=excluded.text, ts=excluded.ts,
                         source=excluded.source, metadata=excluded.metadata,
                         entities=excluded.entities, content_hash=excluded.content_hash,
                         origin=excluded.origin""",
                    rows,
                )
                self._db.executemany(
                    "DELETE FROM doc_entities WHERE doc_id = ?", [(d.id,) for d in docs]
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO doc_entities(entity, doc_id) VALUES (?, ?)",
                    [(e, d.id) for d in docs for e in d.entities],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def set_origin(self, ids: Sequence[str], origin: str) -> None:
        """Record ``origin`` for stored documents (unchanged ones re-read from a file)."""
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = list(ids[i : i + 500])
                self._db.execute(
                    f"UPDATE documents SET origin = ? WHERE origin != ? AND id IN ({','.join('?' * len(chunk))})",
                    [origin, origin, *chunk],
                )

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents (their full-text and entity rows too) in one transaction;
        aliases of channels left without documents go as well. Unknown ids are ignored."""
        rows = [(i,) for i in ids]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("DELETE FROM doc_entities WHERE doc_id = ?", rows)
                self._db.executemany("DELETE FROM documents WHERE id = ?", rows)
                self._db.execute(
                    "DELETE FROM package_aliases WHERE channel NOT IN (SELECT channel FROM documents)"
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def add_aliases(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record ``(alias, channel)`` pairs, e.g. binary package -> source package."""
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO package_aliases(alias, channel) VALUES (?, ?)", list(pairs)
            )

    # -- reads ----------------------------------------------------------------------------

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """``{id: content_hash}`` for the ids that are stored."""
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                q = f"SELECT id, content_hash FROM documents WHERE id IN ({','.join('?' * len(chunk))})"
                out.update({r[0]: r[1] for r in self._db.execute(q, chunk)})
        return out

    def ids_in_scope(self, patterns: Sequence[str]) -> set[str]:
        """Ids of documents whose origin matches any SQLite GLOB pattern (see
        :func:`~knowledge_os.retrieval.sources.origin_scope`; ``*`` also matches ``/``)."""
        out: set[str] = set()
        with self._lock:
            for pattern in patterns:
                out.update(r[0] for r in self._db.execute(
                    "SELECT id FROM documents WHERE origin GLOB ?", (pattern,)))
        return out

    def get(self, ids: Sequence[str]) -> list[Document]:
        """Documents for ``ids`` in the given order; unknown ids are left out."""
        if not ids:
            return []
        found: dict[str, Document] = {}
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = list(ids[i : i + 500])
                q = f"SELECT * FROM documents WHERE id IN ({','.join('?' * len(chunk))})"
                found.update({r["id"]: _row_to_doc(r) for r in self._db.execute(q, chunk)})
        return [found[i] for i in ids if i in found]

    def by_entities(
        self, entities: Sequence[str], *, flt: VectorFilter | None = None, limit: int = 50
    ) -> list[str]:
        """Ids of documents linked to any of ``entities`` (exact match), newest first."""
        if not entities:
            return []
        where, args = _filter_sql(flt)
        q = (
            "SELECT DISTINCT d.id, d.ts FROM doc_entities e JOIN documents d ON d.id = e.doc_id "
            f"WHERE e.entity IN ({','.join('?' * len(entities))}){where} "
            "ORDER BY d.ts DESC, d.id LIMIT ?"
        )
        with self._lock:
            return [r[0] for r in self._db.execute(q, [*entities, *args, limit])]

    def search_text(
        self, query: str, *, flt: VectorFilter | None = None, limit: int = 40
    ) -> list[tuple[str, float]]:
        """BM25 full-text search: ``[(doc_id, score)]``, best first; score = -bm25 (>0).

        The query's words, less :data:`LEXICAL_STOPWORDS`, are OR-ed; each is quoted, so
        FTS5 syntax in user text is inert.
        """
        words = [w for w in _WORD_RE.findall(query.lower()) if len(w) > 1 and w not in LEXICAL_STOPWORDS]
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))
        where, args = _filter_sql(flt)
        q = (
            "SELECT d.id, bm25(documents_fts) AS rank FROM documents_fts "
            "JOIN documents d ON d.rowid = documents_fts.rowid "
            f"WHERE documents_fts MATCH ?{where} ORDER BY rank LIMIT ?"
        )
        with self._lock:
            return [(r[0], -float(r[1])) for r in self._db.execute(q, [match, *args, limit])]

    def newest(self, flt: VectorFilter | None = None, *, limit: int = 10) -> list[str]:
        """Ids of the ``limit`` newest documents matching ``flt``, newest first (ties by
        id); a package filter reads the ``documents_channel_ts`` index."""
        where, args = _filter_sql(flt)
        with self._lock:
            return [r[0] for r in self._db.execute(
                f"SELECT d.id FROM documents d WHERE 1=1{where} ORDER BY d.ts DESC, d.id LIMIT ?", [*args, limit])]

    def iter_documents(self, flt: VectorFilter | None = None) -> Iterator[Document]:
        """Every document matching ``flt``, oldest first (for statistics)."""
        where, args = _filter_sql(flt)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM documents d WHERE 1=1{where} ORDER BY d.ts, d.id", args
            ).fetchall()
        for r in rows:
            yield _row_to_doc(r)

    def channels(self) -> dict[str, str]:
        """Known names -> channel: every channel maps to itself, plus the aliases."""
        with self._lock:
            out = {r[0]: r[0] for r in self._db.execute("SELECT DISTINCT channel FROM documents")}
            for alias, channel in self._db.execute("SELECT alias, channel FROM package_aliases"):
                out.setdefault(alias, channel)
        return out

    def bump_generation(self) -> int:
        """Count one more change of the corpus (called by ingest when it wrote anything)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES ('generation', 1) "
                "ON CONFLICT(key) DO UPDATE SET value = value + 1"
            )
            return self.generation()

    def generation(self) -> int:
        """How many ingests changed the corpus so far (part of node-cache keys)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM documents").fetchone()[0])

    def pending_count(self) -> int:
        """Documents whose ingest has not finished: written by ingest's text stage with an
        empty content hash, their vectors still to come (knowledge_os/retrieval/ingest.py).
        0 when every document is searchable by every retriever."""
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM documents WHERE content_hash = ''").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


DocumentStore = SqliteDocumentStore
"""The embedded default's name before the protocol existed (kept for existing imports)."""
