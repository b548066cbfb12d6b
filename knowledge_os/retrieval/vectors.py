"""Vector stores over Qdrant: in-process (qdrant-edge) and qdrant-client (server or local).

Both implement :class:`knowledge_os.retrieval.base.VectorStore` with the same semantics:

- Cosine similarity; scores in [-1, 1], best first.
- Document ids are arbitrary strings; Qdrant point ids must be integers or UUIDs, so each
  id maps to ``uuid5(POINT_ID_NAMESPACE, id)`` and the original id is kept in the payload
  key ``doc_id`` (stripped again from :attr:`VectorHit.payload`).
- Payload keys ``channel`` (keyword), ``ts`` (integer, Unix seconds) and ``source``
  (keyword) are indexed and filterable through :class:`VectorFilter`; any other payload
  keys are stored as given (JSON-compatible values).

:class:`QdrantEdgeVectorStore` (default) runs the Qdrant engine in-process via
``qdrant-edge-py`` (a beta API): one shard per collection, HNSW built by :meth:`optimize`.
:class:`QdrantVectorStore` uses ``qdrant-client``: a Qdrant server when ``url`` is set,
otherwise local mode (``path=``: exact search in Python; fine below ~20k points).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_os.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
)
from knowledge_os.retrieval._qdrant_client import QdrantVectorStore
from knowledge_os.retrieval._vector_common import (
    _UPSERT_BATCH,
    INDEXED_FIELDS,
    POINT_ID_NAMESPACE,
    _build_filter,
    _check_top_k,
    _check_vector,
    _hit,
    _payload,
    full_scan_threshold_kb,
    point_id,
)
from knowledge_os.retrieval.base import (
    VectorFilter,
    VectorHit,
    VectorPoint,
    VectorStore,
)

__all__ = [
    "POINT_ID_NAMESPACE",
    "QdrantEdgeVectorStore",
    "QdrantVectorStore",
    "full_scan_threshold_kb",
    "point_id",
]

logger = logging.getLogger(__name__)

class QdrantEdgeVectorStore:
    """The Qdrant engine in-process (``qdrant-edge-py``), one shard per collection.

    Files live under ``path / collection`` (segments, WAL, ``edge_config.json``); reopening
    the same folder restores every point. New points land in appendable (plain, exact)
    segments; :meth:`optimize` merges them and builds the HNSW graph (Qdrant builds it for
    segments above its indexing threshold, ~10 MB of vectors: ~6.5k points at 384-d), so
    bulk loaders call it once at the end. Unfiltered searches walk HNSW; filtered ones
    matching fewer than ``exact_filter_max_points`` are exact via the payload indexes,
    larger ones use filtered HNSW with ACORN.

    Processes take turns. The engine locks its write-ahead log, so a shard can be open in
    one process at a time (a second ``load`` fails with "Can't init WAL: WouldBlock"). A
    call therefore opens the shard under an exclusive file lock (``path / <collection>.lock``,
    ``flock``; the holder's pid is written in it) and keeps it open while no other process
    asks for it: a waiter holds a shared lock on ``<collection>.want`` while it waits, and
    the holder gives the shard back after its current call when it sees one, or after
    ``keep_open_s`` without calls (a watcher thread). A burst of calls can keep the turn
    with :meth:`hold`. A waiting process logs one WARNING naming the holder after
    ``_NOTICE_AFTER_S`` and gives up after ``lock_timeout_s``. Six concurrent readers and
    a writer all finish (tests/integration/test_vector_processes.py); the locks die with
    their process, and the engine's WAL recovers what a killed writer had logged. A
    handover costs one open and close of the shard (hundreds of milliseconds at 9,600
    points on a busy machine: benchmarks/bench_vectors.py, row "a handover").
    Calls within one process are serialised by a lock.

    Attributes:
        dim: Vector size.
        path: The shard folder.
        lock_timeout_s: Longest wait for another process's turn, seconds.
    """

    def __init__(
        self,
        path: Path | str,
        collection: str,
        dim: int,
        hnsw_ef: int = 64,
        *,
        hnsw_m: int = 16,
        hnsw_ef_construct: int = 100,
        exact_filter_max_points: int = 20_000,
        acorn: bool = True,
        lock_timeout_s: float = 120.0,
        keep_open_s: float = 2.0,
    ) -> None:
        """Open the shard at ``path / collection``, creating it if absent.

        Args:
            path: Parent folder (created if missing).
            collection: Collection name; the shard's folder name.
            dim: Vector size, >= 1; must match an existing shard's.
            hnsw_ef: Search-time beam width (higher: better recall, slower).
            hnsw_m: HNSW edges per node.
            hnsw_ef_construct: Build-time beam width.
            exact_filter_max_points: Filtered searches matching fewer points are exact.
            acorn: Use ACORN for filtered HNSW searches (better recall under filters).
            lock_timeout_s: Longest wait for another process's turn, seconds (> 0).
            keep_open_s: An uncontested shard is closed after this many idle seconds.

        Raises:
            ConfigError: ``dim`` differs from the existing shard's, or qdrant-edge-py is
                not installed.
            BackendTimeoutError: another process kept the shard past ``lock_timeout_s``.
            BackendUnavailableError: the shard cannot be opened.
        """
        try:
            import qdrant_edge as qe
        except ImportError as exc:
            raise ConfigError(
                "vectors.backend=qdrant_edge needs qdrant-edge-py: pip install qdrant-edge-py"
            ) from exc
        if dim < 1:
            raise ConfigError(f"vector dim must be >= 1, got {dim}")
        if lock_timeout_s <= 0:
            raise ConfigError(f"vector store lock_timeout_s must be > 0, got {lock_timeout_s}")
        self._qe = qe
        self.dim = dim
        self.hnsw_ef = hnsw_ef
        self.acorn = acorn
        self.lock_timeout_s = lock_timeout_s
        self.keep_open_s = keep_open_s
        self.path = Path(path) / collection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.parent / f"{collection}.lock"
        self._want_path = self.path.parent / f"{collection}.want"
        self._lock = threading.RLock()
        self._depth = 0  # nesting of hold()
        self._fd: int | None = None  # the turn (exclusive lock), while the shard is open
        self._want_fd: int | None = None
        self._last_used = 0.0
        self._watcher: threading.Thread | None = None
        self._shard: Any = None
        self._dirty = False
        self._closed = False
        self._config: Any = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(
                m=hnsw_m,
                ef_construct=hnsw_ef_construct,
                full_scan_threshold=full_scan_threshold_kb(exact_filter_max_points, dim),
            ),
        )
        with self.hold():  # the first open checks the config (dim) and writes it
            self._ensure_payload_indexes()
            logger.debug("qdrant-edge shard %s open (%d points)", self.path, self._count())

    # -- taking turns ---------------------------------------------------------------------

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the turn (the shard open, other processes waiting) for the calls inside.

        Re-entrant. Each call holds it by itself; use it around a burst of calls.

        Raises:
            BackendTimeoutError: another process kept the shard past ``lock_timeout_s``.
            BackendUnavailableError: the store was closed, or the shard cannot be opened.
        """
        with self._lock:
            if self._closed:
                raise BackendUnavailableError(f"vector store {self.path} is closed")
            if self._shard is None:
                self._take_turn()
                try:
                    self._open()
                except BaseException:
                    self._end_turn()
                    raise
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                self._last_used = time.monotonic()
                if self._depth == 0:
                    self._after_turn()

    def _after_turn(self) -> None:
        """Give the shard back now if another process waits; else let the watcher do it."""
        if self._contested():
            self._release()
        elif self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(target=self._watch, name=f"kos-vectors-{self.path.name}", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while True:
            time.sleep(_WATCH_EVERY_S)
            with self._lock:
                if self._shard is None:
                    return
                if self._depth:
                    continue
                try:
                    if self._contested() or time.monotonic() - self._last_used >= self.keep_open_s:
                        self._release()
                        return
                except Exception:  # never let a watcher thread die noisily; the next call retries
                    logger.exception("vector store %s: releasing the shard failed", self.path)
                    return

    def _contested(self) -> bool:
        """True if another process waits for the shard (holds a shared lock on ``.want``)."""
        if self._want_fd is None:
            self._want_fd = os.open(self._want_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._want_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._want_fd, fcntl.LOCK_UN)
        return False

    def _take_turn(self) -> None:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._wait_for_turn(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def _wait_for_turn(self, fd: int) -> None:
        """Block until ``fd``'s exclusive lock is ours, showing the holder that we wait."""
        want = os.open(self._want_path, os.O_RDWR | os.O_CREAT, 0o644)
        started = time.monotonic()
        noticed = False
        pause = 0.01
        try:
            fcntl.flock(want, fcntl.LOCK_SH)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - started
                    if waited >= self.lock_timeout_s:
                        holder = _holder(fd)
                        os.close(fd)
                        raise BackendTimeoutError(
                            f"vector store {self.path} is in use by process {holder}; gave up after "
                            f"{self.lock_timeout_s:.1f} s (vectors.lock_timeout_s)"
                        ) from None
                    if not noticed and waited >= _NOTICE_AFTER_S:
                        noticed = True
                        logger.warning(
                            "vector store %s is in use by process %s; waiting up to %.0f s for its turn",
                            self.path, _holder(fd), self.lock_timeout_s,
                        )
                    time.sleep(pause)
                    pause = min(pause * 2, 0.1)
        finally:
            os.close(want)  # drops the shared lock
        if noticed:
            logger.warning("vector store %s: got its turn after %.1f s", self.path, time.monotonic() - started)

    def _end_turn(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        qe = self._qe
        config = self._config
        try:
            if (self.path / "edge_config.json").exists():
                self._shard = qe.EdgeShard.load(str(self.path), config)
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self._shard = qe.EdgeShard.create(str(self.path), config)
        except Exception as exc:  # qdrant-edge raises plain Exception
            message = str(exc)
            if "incompatible" in message.lower():
                raise ConfigError(
                    f"vector store {self.path}: {message}; the embedder's dim is {self.dim}. "
                    "Use another collection or re-ingest into an empty folder."
                ) from exc
            raise BackendUnavailableError(f"cannot open qdrant-edge shard {self.path}: {message}") from exc
        self._config = None  # checked and written once; later opens read it from disk

    def _release(self) -> None:
        try:
            if self._shard is not None:
                if self._dirty:
                    self._shard.flush()
                    self._dirty = False
                self._shard.close()
        finally:
            self._shard = None
            self._end_turn()

    # -- the VectorStore protocol -----------------------------------------------------------

    def _ensure_payload_indexes(self) -> None:
        qe = self._qe
        kinds = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer}
        existing = set(self._shard.info().payload_schema)
        for field, kind in INDEXED_FIELDS.items():
            if field not in existing:
                self._update(qe.UpdateOperation.create_field_index(field, kinds[kind]))

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points by document id.

        Args:
            points: Points with vectors of shape (dim,); payload values JSON-compatible.

        Raises:
            InputError: a vector has the wrong shape or non-finite values.
            BackendError: the engine rejected the update.
            BackendTimeoutError: another process kept the shard past ``lock_timeout_s``.
        """
        qe = self._qe
        built = [
            qe.Point(
                id=point_id(p.id),
                vector=_check_vector(p.vector, self.dim, f"point {p.id!r}"),
                payload=_payload(p),
            )
            for p in points
        ]
        if not built:
            return
        with self.hold():
            for start in range(0, len(built), _UPSERT_BATCH):
                chunk = built[start : start + _UPSERT_BATCH]
                self._update(qe.UpdateOperation.upsert_points(chunk))

    def _update(self, operation: Any) -> None:
        self._dirty = True
        try:
            self._shard.update(operation)
        except Exception as exc:
            raise BackendError(f"qdrant-edge update failed on {self.path}: {exc}") from exc

    def search(
        self, vector: np.ndarray, *, top_k: int, flt: VectorFilter | None = None
    ) -> list[VectorHit]:
        """Approximate nearest neighbours (HNSW with ``ef = max(hnsw_ef, top_k)``).

        Args:
            vector: Query of shape (dim,); need not be normalised.
            top_k: Maximum hits, >= 1.
            flt: Payload filter; None or empty = all points.

        Returns:
            Up to ``top_k`` hits, best first; ``score`` is cosine similarity.

        Raises:
            InputError: bad vector shape or ``top_k`` < 1.
            BackendTimeoutError: another process kept the shard past ``lock_timeout_s``.
        """
        _check_top_k(top_k)
        qe = self._qe
        condition = _build_filter(flt, qe, qe.RangeFloat)
        acorn = qe.AcornSearchParams(enable=True) if condition and self.acorn else None
        request = qe.QueryRequest(
            limit=top_k,
            query=qe.Query.Nearest(_check_vector(vector, self.dim, "query")),
            filter=condition,
            with_payload=True,
            params=qe.SearchParams(hnsw_ef=max(self.hnsw_ef, top_k), acorn=acorn),
        )
        with self.hold():
            try:
                scored = self._shard.query(request)
            except Exception as exc:
                raise BackendError(f"qdrant-edge query failed on {self.path}: {exc}") from exc
        return [_hit(s.payload, s.score) for s in scored]

    def delete(self, ids: Sequence[str]) -> None:
        """Remove points by document id; unknown ids are ignored."""
        if not ids:
            return
        with self.hold():
            self._update(self._qe.UpdateOperation.delete_points([point_id(i) for i in ids]))

    def count(self) -> int:
        """Number of points (exact)."""
        with self.hold():
            return self._count()

    def _count(self) -> int:
        return int(self._shard.count(self._qe.CountRequest(exact=True)))

    def flush(self) -> None:
        """Write pending changes to disk (the WAL already makes them durable; every turn
        that wrote ends with a flush)."""
        with self.hold():
            self._shard.flush()

    def optimize(self) -> bool:
        """Merge segments and build the HNSW index; blocks until done.

        Call once after a bulk upsert (ingest does). Takes seconds per 10k points; other
        processes wait for it.

        Returns:
            True if any segment was rebuilt.
        """
        with self.hold():
            changed = bool(self._shard.optimize())
            self._dirty = True
            info = self._shard.info()
        logger.info(
            "qdrant-edge %s optimized: %d points, %d indexed (HNSW), %d segments",
            self.path,
            info.points_count,
            info.indexed_vectors_count,
            info.segments_count,
        )
        return changed

    def close(self) -> None:
        """Give the shard back (flushed) and release the store; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._shard is not None:
                self._release()
            if self._want_fd is not None:
                os.close(self._want_fd)
                self._want_fd = None


#: Seconds a process waits for another's turn before it says so (WARNING).
_NOTICE_AFTER_S = 0.5
#: How often the watcher thread of an idle, open shard looks for waiters, seconds.
_WATCH_EVERY_S = 0.05


def _holder(fd: int) -> str:
    """The pid written in a lock file by its holder, or ``"unknown"``."""
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"


# --------------------------------------------------------------------------- qdrant-client
