"""Vectors for several hosts where no Qdrant server can run (``vectors.backend=postgres_edge``).

Every embedding is stored in PostgreSQL with its payload (``kos_embeddings``, migration
``knowledge_os/db/migrations/0005_shared_embeddings.sql``); each host searches its own
in-process index (qdrant-edge, the embedded default's engine) that it keeps equal to the
shared rows. This is not a distributed vector database: every host holds every vector
(9,609 x 384 float32 is 15 MB) and builds its own HNSW graph; a search never leaves the
host. What is shared is the data, so a corpus ingested once, on any host, is searchable
on all of them.

Keeping up: a counter (``vectors`` in ``kos_corpus_meta``) is bumped by every write
transaction, under its row lock, so writers are serialised and a row's ``seq`` (the count
of the transaction that last wrote it) increases in commit order. A host remembers the
count it has applied (``sync.json`` beside its index) and, at most every
``vectors.shared_check_s`` seconds on a search, reads the counter (one indexed read);
when it moved, it applies the removed ids (``kos_embedding_deletes``) and the rows of
higher ``seq``, then optimises its index if many changed. A new host copies everything
once (a rebuild); a host that wrote the last change applies nothing.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import orjson

from knowledge_os.db.sync import SyncPool
from knowledge_os.errors import BackendError, InputError
from knowledge_os.retrieval.base import VectorFilter, VectorHit, VectorPoint, VectorStore
from knowledge_os.settings import Settings

__all__ = ["SharedVectorStore"]

logger = logging.getLogger(__name__)

_STATE_FILE = "sync.json"
_FETCH_ROWS = 1_000
# Applying more points than this in one sync rebuilds the HNSW graph (optimize) after it.
OPTIMIZE_AFTER_POINTS = 256


class SharedVectorStore:
    """Embeddings in PostgreSQL, searched in a per-host in-process index (module docstring).

    Args:
        settings: ``postgres.*`` and ``vectors.shared_check_s``.
        folder: This host's index folder; ``sync.json`` in it records what was applied.
        make_local: Opens the in-process index in ``folder`` (the factory passes a
            :class:`~knowledge_os.retrieval.vectors.QdrantEdgeVectorStore`).

    Raises:
        ConfigError: ``postgres.dsn`` is not set.
        BackendUnavailableError: PostgreSQL refused or did not answer.

    Attributes:
        dim: Vector size (the local index's).
    """

    def __init__(self, settings: Settings, folder: Path, make_local: Callable[[Path], VectorStore]) -> None:
        self._settings = settings
        self._pool = SyncPool(settings, what="shared embeddings")
        self._lock = threading.RLock()
        self._check_every_s = settings.vectors.shared_check_s
        self._state_path = folder / _STATE_FILE
        self._local: VectorStore | None = None
        try:
            self._store_id = self._store_id_of_database()
            state = self._read_state()
            if state.get("store_id") != self._store_id and folder.exists():
                # another database (or a folder of unknown origin): start the copy afresh
                logger.info("shared embeddings: %s holds another database's index; rebuilding", folder)
                shutil.rmtree(folder)
                state = {}
            folder.mkdir(parents=True, exist_ok=True)
            self._local = make_local(folder)
            self.dim = self._local.dim
            self._applied = int(state.get("applied", 0))
            self._checked_at = float("-inf")
            self.sync()
        except BaseException:
            self.close()
            raise

    # -- bookkeeping ----------------------------------------------------------------------

    def _store_id_of_database(self) -> int:
        """A random id of the database's embeddings, made once: a copy from another
        database is never taken for this one's."""
        with self._pool.connection() as conn:
            conn.execute("INSERT INTO kos_corpus_meta (key, value) VALUES "
                         "('vectors_store_id', floor(random() * 9e18)::bigint) ON CONFLICT (key) DO NOTHING")
            return int(conn.execute("SELECT value FROM kos_corpus_meta WHERE key = 'vectors_store_id'").fetchone()[0])

    def _read_state(self) -> dict:
        try:
            return orjson.loads(self._state_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}

    def _save_state(self) -> None:
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"store_id": self._store_id, "applied": self._applied}))
        tmp.replace(self._state_path)

    def _bump(self, conn) -> int:  # noqa: ANN001 - a psycopg connection in a transaction
        """The next write count; its row lock serialises writers until commit."""
        return int(conn.execute(
            "INSERT INTO kos_corpus_meta (key, value) VALUES ('vectors', 1) "
            "ON CONFLICT (key) DO UPDATE SET value = kos_corpus_meta.value + 1 RETURNING value").fetchone()[0])

    def version(self) -> int:
        """Write transactions on the shared embeddings so far (0: none)."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT value FROM kos_corpus_meta WHERE key = 'vectors'").fetchone()
        return int(row[0]) if row else 0

    # -- writes ---------------------------------------------------------------------------

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Write points to PostgreSQL (one transaction), then to this host's index.

        Raises:
            InputError: a vector has the wrong shape or non-finite values (local check first).
            BackendUnavailableError: PostgreSQL went away (nothing is written locally).
        """
        if not points:
            return
        points = list({p.id: p for p in points}.values())  # an id twice in one batch: the last wins
        for p in points:
            if np.asarray(p.vector).shape != (self.dim,):
                raise InputError(f"point {p.id!r}: vector of shape {np.asarray(p.vector).shape}, expected ({self.dim},)")
        ids = [p.id for p in points]
        with self._lock:
            with self._pool.connection() as conn, conn.transaction():
                seq = self._bump(conn)
                conn.execute(
                    "INSERT INTO kos_embeddings (id, vector, payload, seq) "
                    "SELECT * FROM unnest(%s::text[], %s::bytea[], %s::json[], %s::bigint[]) "
                    "ON CONFLICT (id) DO UPDATE SET vector = EXCLUDED.vector, payload = EXCLUDED.payload, seq = EXCLUDED.seq",
                    (ids, [np.asarray(p.vector, dtype="<f4").tobytes() for p in points],
                     [orjson.dumps(dict(p.payload)).decode() for p in points], [seq] * len(points)),
                )
                conn.execute("DELETE FROM kos_embedding_deletes WHERE id = ANY(%s)", (ids,))
            self._local.upsert(points)
            self._advance(seq)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove points by id, shared and local; unknown ids are ignored."""
        if not ids:
            return
        with self._lock:
            with self._pool.connection() as conn, conn.transaction():
                seq = self._bump(conn)
                conn.execute("DELETE FROM kos_embeddings WHERE id = ANY(%s)", (list(ids),))
                conn.execute(
                    "INSERT INTO kos_embedding_deletes (id, seq) SELECT i, %s FROM unnest(%s::text[]) i "
                    "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq", (seq, list(ids)))
            self._local.delete(ids)
            self._advance(seq)

    def _advance(self, seq: int) -> None:
        """After this host wrote transaction ``seq``: if it had applied every earlier one,
        it is up to date without fetching its own write back."""
        if seq == self._applied + 1:
            self._applied = seq
            self._save_state()

    # -- keeping up -----------------------------------------------------------------------

    def sync(self) -> int:
        """Apply the shared changes this host has not seen (module docstring).

        Returns:
            Points upserted or deleted locally (0 when up to date: one read).

        Raises:
            BackendUnavailableError: PostgreSQL went away (the local index stays as it was).
        """
        with self._lock:
            self._checked_at = time.monotonic()
            target = self.version()
            if target == self._applied:
                return 0
            started = time.perf_counter()
            changed = 0
            with self._pool.connection() as conn:
                gone = [r[0] for r in conn.execute(
                    "SELECT id FROM kos_embedding_deletes WHERE seq > %s AND seq <= %s", (self._applied, target))]
                if gone:
                    self._local.delete(gone)
                    changed += len(gone)
                with conn.transaction(), conn.cursor(name="kos_embeddings_sync") as cur:  # server-side: batches
                    cur.execute("SELECT id, vector, payload FROM kos_embeddings WHERE seq > %s AND seq <= %s "
                                "AND length(vector) = %s", (self._applied, target, 4 * self.dim))
                    while rows := cur.fetchmany(_FETCH_ROWS):
                        self._local.upsert([VectorPoint(id=i, vector=np.frombuffer(v, dtype="<f4"), payload=p)
                                            for i, v, p in rows])
                        changed += len(rows)
            if changed > OPTIMIZE_AFTER_POINTS:
                optimize = getattr(self._local, "optimize", None)
                if optimize is not None:
                    optimize()
            logger.info("shared embeddings: applied %d change(s) (%d -> %d) in %.1f s",
                        changed, self._applied, target, time.perf_counter() - started)
            self._applied = target
            self._save_state()
            return changed

    def search(self, vector: np.ndarray, *, top_k: int, flt: VectorFilter | None = None) -> list[VectorHit]:
        """Search this host's index, after a :meth:`sync` when the last check is older than
        ``vectors.shared_check_s`` (a failed check is logged and the local index used)."""
        if time.monotonic() - self._checked_at >= self._check_every_s:
            try:
                self.sync()
            except BackendError as exc:  # a stale index beats no answer; said in the log
                logger.warning("shared embeddings: could not check for changes (%s); searching the local index", exc)
        return self._local.search(vector, top_k=top_k, flt=flt)

    def optimize(self) -> bool:
        """Build this host's HNSW graph (ingest calls it after a bulk load)."""
        optimize = getattr(self._local, "optimize", None)
        return bool(optimize()) if optimize is not None else False

    def count(self) -> int:
        """Points in the shared store (this host's index may lag until its next sync)."""
        with self._pool.connection() as conn:
            return int(conn.execute("SELECT count(*) FROM kos_embeddings").fetchone()[0])

    def close(self) -> None:
        """Close this host's index and the connections (idempotent)."""
        if self._local is not None:
            self._local.close()
        self._pool.close()
