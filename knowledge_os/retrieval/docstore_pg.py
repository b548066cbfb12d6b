"""The document store in PostgreSQL: one corpus for every host.

Same contract as the SQLite store (:class:`~knowledge_os.retrieval.base.DocumentStore`;
``tests/integration/test_docstore_conformance.py`` runs both). Tables (migration
``knowledge_os/db/migrations/0003_documents.sql``, applied by ``kos db upgrade`` or on
first open): ``kos_documents`` (rows, a ``tsvector`` and an ``ids`` array, both
GIN-indexed), ``kos_doc_entities``, ``kos_package_aliases``, ``kos_corpus_meta``.

Full-text search keeps FTS5's behaviour, the reference:

* **Tokens** are FTS5 ``unicode61 remove_diacritics 2`` tokens, cut here in Python
  (:func:`fts_tokens`: runs of letters and digits, lower-case, diacritics folded) and
  stored with their positions, so PostgreSQL's own parser, which reads
  ``CVE-2024-6387`` as ``cve``, ``-2024``, ``-6387``, never sees the text.
* **Query words** are :data:`~knowledge_os.retrieval.docstore.LEXICAL_STOPWORDS`-free
  words OR-ed; a word with inner punctuation (``CVE-2024-6387``, ``3.0.11-1``) is the
  phrase of its tokens (``'cve' <-> '2024' <-> '6387'``), as a quoted FTS5 string is: it
  matches that id and never ``CVE-2024-6388``.
* **Ranking** is BM25 as FTS5's ``bm25()`` computes it (k1 = 1.2, b = 0.75, title and
  text one field): ``ts_rank_cd`` with every weight 1 and no normalisation is a term's
  frequency in the entry (a phrase's too), each term's document frequency is counted on
  the GIN index, the entry's length is ``n_tokens``. ``ts_rank_cd`` alone has no inverse
  document frequency nor BM25's length normalisation: a word common to thousands of
  entries, or one long kernel changelog, would outweigh the id that names the entry.
  A word that is a CVE id or a bug number the entry names (the ``ids`` array: whole
  tokens, exact) counts once more.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from knowledge_os.db.sync import SyncPool
from knowledge_os.retrieval.base import Document, VectorFilter
from knowledge_os.retrieval.docstore import _WORD_RE, LEXICAL_STOPWORDS
from knowledge_os.retrieval.entities import CVE_RE
from knowledge_os.settings import Settings

__all__ = ["PostgresDocumentStore", "fts_tokens", "glob_to_regex"]

_TOKEN_RE = re.compile(r"[^\W_]+")
_BUG_RE = re.compile(r"\d{3,7}")
_ID_KINDS = ("cve", "bug")
# PostgreSQL limits (documentation, "Text Search Types"): a position is at most 16,383,
# a lexeme at most 2,047 bytes; positions beyond the first 256 of a lexeme are dropped.
_MAX_POS = 16_383
_MAX_LEXEME_BYTES = 2_046
_MAX_POSITIONS = 256
# BM25 parameters of FTS5's bm25() (SQLite documentation, "The bm25() function").
BM25_K1 = 1.2
BM25_B = 0.75
_COLUMNS = "id, channel, title, text, ts, source, metadata, entities, content_hash, origin"


def fts_tokens(text: str) -> list[str]:
    """Tokens as FTS5's ``unicode61 remove_diacritics 2`` cuts them (approximately:
    Unicode letters and digits, the rest separators), lower-cased, diacritics removed.

    >>> fts_tokens("Fix CVE-2024-6387 (Closes: #1055473), café")
    ['fix', 'cve', '2024', '6387', 'closes', '1055473', 'cafe']
    """
    text = text.lower()
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _TOKEN_RE.findall(text)


def _tsvector(title: str, text: str) -> tuple[str, int]:
    """The ``tsvector`` literal of title then text (each token with its positions) and
    the number of tokens."""
    positions: dict[str, list[int]] = {}
    tokens = [*fts_tokens(title), *fts_tokens(text)]
    for pos, token in enumerate(tokens, start=1):
        if len(token.encode()) <= _MAX_LEXEME_BYTES:
            seen = positions.setdefault(token, [])
            p = min(pos, _MAX_POS)
            if len(seen) < _MAX_POSITIONS and (not seen or seen[-1] != p):
                seen.append(p)
    return " ".join(f"'{t}':{','.join(map(str, ps))}" for t, ps in positions.items()), len(tokens)


def _ids(entities: Sequence[str]) -> list[str]:
    """The whole ids an entry names: ``cve:CVE-2024-6387`` -> ``cve-2024-6387``,
    ``bug:1055473`` -> ``1055473``."""
    out = []
    for e in entities:
        kind, _, key = e.partition(":")
        if kind in _ID_KINDS:
            out.append(key.lower())
    return out


def _query_terms(query: str) -> list[tuple[str, str]]:
    """``[(word, tsquery)]`` for the query's words (stop words and 1-character words out),
    each word once; a word of several tokens becomes their phrase."""
    words = [w for w in _WORD_RE.findall(query.lower()) if len(w) > 1 and w not in LEXICAL_STOPWORDS]
    terms = []
    for word in dict.fromkeys(words):
        tokens = [t for t in fts_tokens(word) if len(t.encode()) <= _MAX_LEXEME_BYTES]
        if tokens:
            terms.append((word, " <-> ".join(f"'{t}'" for t in tokens)))
    return terms


def _is_id(word: str) -> bool:
    return bool(CVE_RE.fullmatch(word) or _BUG_RE.fullmatch(word))


def glob_to_regex(pattern: str) -> str:
    """A SQLite GLOB pattern (``*``, ``?``, ``[...]``, case-sensitive, ``*`` matching
    ``/`` too) as an anchored POSIX regular expression for PostgreSQL's ``~``.

    >>> glob_to_regex("/usr/share/doc/*/changelog.Debian.gz")
    '^/usr/share/doc/.*/changelog\\\\.Debian\\\\.gz$'
    """
    out = ["^"]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            if len(body) == 1 and not negate:  # origin_scope's escape of one character: [*]
                out.append(re.escape(body))
            else:
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return "".join(out)


def _filter_sql(flt: VectorFilter | None) -> tuple[str, list[object]]:
    if flt is None or flt.is_empty():
        return "", []
    clauses: list[str] = []
    args: list[object] = []
    if flt.channels:
        clauses.append("d.channel = ANY(%s)")
        args.append(list(flt.channels))
    if flt.sources:
        clauses.append("d.source = ANY(%s)")
        args.append(list(flt.sources))
    if flt.ts_from is not None:
        clauses.append("d.ts >= %s")
        args.append(flt.ts_from)
    if flt.ts_to is not None:
        clauses.append("d.ts < %s")
        args.append(flt.ts_to)
    return " AND " + " AND ".join(clauses), args


def _row_to_doc(row: tuple[Any, ...]) -> Document:
    doc_id, channel, title, text, ts, source, metadata, entities, content_hash, origin = row
    return Document(id=doc_id, channel=channel, title=title, text=text, ts=int(ts), source=source,
                    metadata=metadata, entities=tuple(entities), content_hash=content_hash, origin=origin)


class PostgresDocumentStore:
    """Documents, full-text and exact-entity lookup in PostgreSQL (see the module
    docstring). Thread-safe: each call borrows a connection from a small pool.

    Args:
        settings: ``postgres.*``; the migrations are applied on first open per process.

    Raises:
        ConfigError: ``postgres.dsn`` is not set.
        BackendUnavailableError: the server refused or did not answer (also from every
            method, when the server goes away).
    """

    def __init__(self, settings: Settings) -> None:
        self._pool = SyncPool(settings, what="document store")

    # -- writes ---------------------------------------------------------------------------

    def upsert(self, docs: Sequence[Document]) -> None:
        """Insert or replace documents and their entity rows in one transaction."""
        if not docs:
            return
        rows = [
            (d.id, d.channel, d.title, d.text, d.ts, d.source, orjson.dumps(dict(d.metadata)).decode(),
             list(d.entities), d.content_hash, d.origin, *_tsvector(d.title, d.text), _ids(d.entities))
            for d in docs
        ]
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                f"""INSERT INTO kos_documents ({_COLUMNS}, tsv, n_tokens, ids)
                    VALUES (%s, %s, %s, %s, %s, %s, %s::json, %s, %s, %s, %s::tsvector, %s, %s)
                    ON CONFLICT (id) DO UPDATE SET channel = EXCLUDED.channel, title = EXCLUDED.title,
                      text = EXCLUDED.text, ts = EXCLUDED.ts, source = EXCLUDED.source,
                      metadata = EXCLUDED.metadata, entities = EXCLUDED.entities,
                      content_hash = EXCLUDED.content_hash, origin = EXCLUDED.origin,
                      tsv = EXCLUDED.tsv, n_tokens = EXCLUDED.n_tokens, ids = EXCLUDED.ids""",
                rows,
            )
            cur.execute("DELETE FROM kos_doc_entities WHERE doc_id = ANY(%s)", ([d.id for d in docs],))
            pairs = list(dict.fromkeys((e, d.id) for d in docs for e in d.entities))
            if pairs:
                cur.execute(
                    "INSERT INTO kos_doc_entities (entity, doc_id) SELECT * FROM unnest(%s::text[], %s::text[]) "
                    "ON CONFLICT DO NOTHING",
                    ([e for e, _ in pairs], [i for _, i in pairs]),
                )

    def set_origin(self, ids: Sequence[str], origin: str) -> None:
        """Record ``origin`` for stored documents (unchanged ones re-read from a file)."""
        if ids:
            with self._pool.connection() as conn:
                conn.execute("UPDATE kos_documents SET origin = %s WHERE origin <> %s AND id = ANY(%s)",
                             (origin, origin, list(ids)))

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents (their full-text and entity rows too) in one transaction;
        aliases of channels left without documents go as well. Unknown ids are ignored."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM kos_documents WHERE id = ANY(%s)", (list(ids),))
            conn.execute("DELETE FROM kos_package_aliases a WHERE NOT EXISTS "
                         "(SELECT 1 FROM kos_documents d WHERE d.channel = a.channel)")

    def add_aliases(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record ``(alias, channel)`` pairs, e.g. binary package -> source package; a
        known alias is pointed at the new channel."""
        rows = list(dict((a, c) for a, c in pairs).items())  # the last pair of an alias wins
        if rows:
            with self._pool.connection() as conn:
                conn.execute(
                    "INSERT INTO kos_package_aliases (alias, channel) SELECT * FROM unnest(%s::text[], %s::text[]) "
                    "ON CONFLICT (alias) DO UPDATE SET channel = EXCLUDED.channel",
                    ([a for a, _ in rows], [c for _, c in rows]),
                )

    # -- reads ----------------------------------------------------------------------------

    def hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """``{id: content_hash}`` for the ids that are stored."""
        if not ids:
            return {}
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT id, content_hash FROM kos_documents WHERE id = ANY(%s)",
                                (list(ids),)).fetchall()
        return dict(rows)

    def ids_in_scope(self, patterns: Sequence[str]) -> set[str]:
        """Ids of documents whose origin matches any SQLite GLOB pattern (see
        :func:`~knowledge_os.retrieval.sources.origin_scope`; ``*`` also matches ``/``),
        translated by :func:`glob_to_regex`."""
        if not patterns:
            return set()
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT id FROM kos_documents WHERE origin ~ ANY(%s)",
                                ([glob_to_regex(p) for p in patterns],)).fetchall()
        return {r[0] for r in rows}

    def get(self, ids: Sequence[str]) -> list[Document]:
        """Documents for ``ids`` in the given order; unknown ids are left out."""
        if not ids:
            return []
        with self._pool.connection() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM kos_documents WHERE id = ANY(%s)",
                                (list(ids),)).fetchall()
        found = {r[0]: _row_to_doc(r) for r in rows}
        return [found[i] for i in ids if i in found]

    def by_entities(
        self, entities: Sequence[str], *, flt: VectorFilter | None = None, limit: int = 50
    ) -> list[str]:
        """Ids of documents linked to any of ``entities`` (exact match), newest first
        (ties by id, byte order)."""
        if not entities:
            return []
        where, args = _filter_sql(flt)
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT d.id FROM kos_documents d WHERE EXISTS (SELECT 1 FROM kos_doc_entities e "
                f"WHERE e.doc_id = d.id AND e.entity = ANY(%s)){where} "
                'ORDER BY d.ts DESC, d.id COLLATE "C" LIMIT %s',
                [list(entities), *args, limit],
            ).fetchall()
        return [r[0] for r in rows]

    def search_text(
        self, query: str, *, flt: VectorFilter | None = None, limit: int = 40
    ) -> list[tuple[str, float]]:
        """BM25 full-text search (module docstring): ``[(doc_id, score)]``, best first
        (ties by id), score > 0.

        The query's words, less :data:`LEXICAL_STOPWORDS`, are OR-ed; the tsquery is built
        here from tokens, so tsquery syntax in user text is inert.
        """
        terms = _query_terms(query)
        if not terms:
            return []
        with self._pool.connection() as conn:
            counts = conn.execute(
                "SELECT count(*), coalesce(avg(n_tokens), 1) FROM kos_documents"
            ).fetchone() + conn.execute(
                "SELECT " + ", ".join("(SELECT count(*) FROM kos_documents WHERE tsv @@ %s::tsquery)" for _ in terms),
                [q for _, q in terms],
            ).fetchone()
            n, avgdl = int(counts[0]), max(float(counts[1]), 1.0)
            # FTS5: idf = log((N - df + 0.5) / (df + 0.5)), at least 1e-6
            scored = [(w, q, max(math.log((n - df + 0.5) / (df + 0.5)), 1e-6))
                      for (w, q), df in zip(terms, counts[2:]) if df > 0]
            if not scored:
                return []
            parts, args = [], []
            for word, q, idf in scored:
                tf = "ts_rank_cd('{1,1,1,1}', d.tsv, %s::tsquery, 0)"
                if _is_id(word):
                    tf = f"({tf} + (d.ids @> ARRAY[%s])::int)"
                parts.append(f"%s * {tf} * {BM25_K1 + 1} / ({tf} + {BM25_K1} * "
                             f"(1 - {BM25_B} + {BM25_B} * d.n_tokens / %s::float8))")
                targs = [q, word] if _is_id(word) else [q]
                args += [idf, *targs, *targs, avgdl]
            where, fargs = _filter_sql(flt)
            rows = conn.execute(
                f"SELECT d.id, {' + '.join(parts)} AS score FROM kos_documents d "
                f"WHERE d.tsv @@ %s::tsquery{where} "
                'ORDER BY score DESC, d.id COLLATE "C" LIMIT %s',
                [*args, " | ".join(f"({q})" for _, q, _ in scored), *fargs, limit],
            ).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    def newest(self, flt: VectorFilter | None = None, *, limit: int = 10) -> list[str]:
        """Ids of the ``limit`` newest documents matching ``flt``, newest first (ties by
        id, byte order)."""
        where, args = _filter_sql(flt)
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT d.id FROM kos_documents d WHERE TRUE{where} "
                'ORDER BY d.ts DESC, d.id COLLATE "C" LIMIT %s', [*args, limit],
            ).fetchall()
        return [r[0] for r in rows]

    def iter_documents(self, flt: VectorFilter | None = None) -> Iterator[Document]:
        """Every document matching ``flt``, oldest first (ties by id, byte order)."""
        where, args = _filter_sql(flt)
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM kos_documents d WHERE TRUE{where} "
                'ORDER BY d.ts, d.id COLLATE "C"', args,
            ).fetchall()
        for r in rows:
            yield _row_to_doc(r)

    def channels(self) -> dict[str, str]:
        """Known names -> channel: every channel maps to itself, plus the aliases."""
        with self._pool.connection() as conn:
            out = {r[0]: r[0] for r in conn.execute("SELECT DISTINCT channel FROM kos_documents")}
            for alias, channel in conn.execute("SELECT alias, channel FROM kos_package_aliases"):
                out.setdefault(alias, channel)
        return out

    def bump_generation(self) -> int:
        """Count one more change of the corpus (ingest, when it wrote anything); every host
        reads the new generation at its next run. Returns it."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO kos_corpus_meta (key, value) VALUES ('generation', 1) "
                "ON CONFLICT (key) DO UPDATE SET value = kos_corpus_meta.value + 1 RETURNING value"
            ).fetchone()
        return int(row[0])

    def generation(self) -> int:
        """How many ingests changed the corpus so far (part of the answer-cache scope)."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT value FROM kos_corpus_meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        """Number of documents."""
        with self._pool.connection() as conn:
            return int(conn.execute("SELECT count(*) FROM kos_documents").fetchone()[0])

    def pending_count(self) -> int:
        """Documents whose ingest has not finished: written by ingest's text stage with an
        empty content hash, their vectors still to come (knowledge_os/retrieval/ingest.py).
        0 when every document is searchable by every retriever."""
        with self._pool.connection() as conn:
            return int(conn.execute("SELECT count(*) FROM kos_documents WHERE content_hash = ''").fetchone()[0])

    def close(self) -> None:
        """Close the pool's connections (idempotent)."""
        self._pool.close()
