"""The qdrant-client vector store: a Qdrant server (``url``) or local mode (``path``).

Semantics are those of :mod:`knowledge_os.retrieval.vectors`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_os.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
)
from knowledge_os.retrieval._vector_common import (
    _UPSERT_BATCH,
    INDEXED_FIELDS,
    _build_filter,
    _check_top_k,
    _check_vector,
    _hit,
    _payload,
    full_scan_threshold_kb,
    point_id,
)
from knowledge_os.retrieval.base import VectorFilter, VectorHit, VectorPoint
from knowledge_os.settings import VectorSettings

__all__ = ["QdrantVectorStore"]

logger = logging.getLogger(__name__)


def _translate_client_error(exc: Exception, where: str, timeout_s: float) -> BackendError:
    """Map qdrant-client / httpx errors to the Knowledge OS hierarchy."""
    import httpx
    from qdrant_client.http.exceptions import (
        ResponseHandlingException,
        UnexpectedResponse,
    )

    source = exc.source if isinstance(exc, ResponseHandlingException) else exc
    if isinstance(source, httpx.TimeoutException):
        return BackendTimeoutError(f"Qdrant at {where} did not answer within {timeout_s} s")
    if isinstance(source, (httpx.TransportError, ConnectionError)):
        return BackendUnavailableError(f"Qdrant at {where} is unreachable: {source}")
    if isinstance(exc, UnexpectedResponse) and exc.status_code in (502, 503, 504):
        return BackendUnavailableError(f"Qdrant at {where} answered {exc.status_code}")
    return BackendError(f"Qdrant at {where} failed: {exc}")


class QdrantVectorStore:
    """Qdrant through ``qdrant-client``: a server (``url``) or local mode (``path``).

    The collection is created on first use (cosine distance) with payload indexes on
    ``channel``, ``source`` (keyword) and ``ts`` (integer) -- on a server; local mode has
    no payload indexes and searches exactly, in Python. Local mode allows one client per
    folder per process and warns above 20k points: that warning is turned into one log
    line here (see the module docstring of ``qdrant_client.local``).

    Attributes:
        dim: Vector size.
        collection: Collection name.
    """

    def __init__(
        self,
        settings: VectorSettings,
        path: Path | str | None,
        dim: int,
        *,
        collection: str | None = None,
    ) -> None:
        """Connect (or open the local folder) and ensure the collection exists.

        Args:
            settings: The ``vectors`` settings section (``url``, ``api_key``, ``hnsw_ef``,
                ``timeout_s``, ``collection``).
            path: Local-mode folder, used when ``settings.url`` is unset (created if missing).
            dim: Vector size; must match an existing collection's.
            collection: Overrides ``settings.collection``.

        Raises:
            ConfigError: no ``url`` and no ``path``; ``dim`` differs from the collection's;
                the local folder is already open in this process.
            BackendUnavailableError / BackendTimeoutError: the server did not answer.
        """
        from qdrant_client import QdrantClient, models

        self._models = models
        self.dim = dim
        self.collection = collection or settings.collection
        self.hnsw_ef = settings.hnsw_ef
        self._timeout_s = settings.timeout_s
        self._local = settings.url is None
        self._large_warning_logged = False
        if self._local:
            if path is None:
                raise ConfigError("vectors: set vectors.url (server) or pass a local path")
            Path(path).mkdir(parents=True, exist_ok=True)
            self._where = f"local:{path}"
            try:
                self._client = QdrantClient(path=str(path))
            except RuntimeError as exc:
                raise ConfigError(f"vector folder {path}: {exc}") from exc
        else:
            self._where = str(settings.url)
            api_key = settings.api_key.get_secret_value() if settings.api_key else None
            self._client = QdrantClient(
                url=settings.url,
                api_key=api_key,
                timeout=max(1, round(settings.timeout_s)),
                check_compatibility=False,
            )
        self._call(self._ensure_collection, settings)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import httpx
        from qdrant_client.http.exceptions import ApiException

        try:
            return fn(*args, **kwargs)
        except (ApiException, httpx.HTTPError, OSError) as exc:
            raise _translate_client_error(exc, self._where, self._timeout_s) from exc

    def _ensure_collection(self, settings: VectorSettings) -> None:
        models = self._models
        client = self._client
        if client.collection_exists(self.collection):
            params = client.get_collection(self.collection).config.params.vectors
            size = params.size if isinstance(params, models.VectorParams) else None
            if size is not None and size != self.dim:
                raise ConfigError(
                    f"Qdrant collection {self.collection!r} at {self._where} holds {size}-d "
                    f"vectors but the embedder gives {self.dim}-d; use another collection"
                )
            return
        client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=self.dim, distance=models.Distance.COSINE),
            hnsw_config=models.HnswConfigDiff(
                m=settings.hnsw_m,
                ef_construct=settings.hnsw_ef_construct,
                full_scan_threshold=full_scan_threshold_kb(
                    settings.exact_filter_max_points, self.dim
                ),
            ),
        )
        if not self._local:  # local mode ignores payload indexes (and warns)
            kinds = {
                "keyword": models.PayloadSchemaType.KEYWORD,
                "integer": models.PayloadSchemaType.INTEGER,
            }
            for field, kind in INDEXED_FIELDS.items():
                client.create_payload_index(self.collection, field, field_schema=kinds[kind])
        logger.info(
            "created Qdrant collection %s at %s (dim %d)", self.collection, self._where, self.dim
        )

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points by document id (waits for the write).

        Raises:
            InputError: a vector has the wrong shape or non-finite values.
            BackendUnavailableError / BackendTimeoutError / BackendError: the server failed.
        """
        models = self._models
        structs = [
            models.PointStruct(
                id=point_id(p.id),
                vector=_check_vector(p.vector, self.dim, f"point {p.id!r}").tolist(),
                payload=_payload(p),
            )
            for p in points
        ]
        for start in range(0, len(structs), _UPSERT_BATCH):
            chunk = structs[start : start + _UPSERT_BATCH]
            if self._local:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    self._call(self._client.upsert, self.collection, points=chunk, wait=True)
                self._log_local_warnings(caught)
            else:
                self._call(self._client.upsert, self.collection, points=chunk, wait=True)

    def _log_local_warnings(self, caught: list[warnings.WarningMessage]) -> None:
        for w in caught:
            if "Local mode is not recommended" in str(w.message):
                if not self._large_warning_logged:
                    self._large_warning_logged = True
                    logger.warning(
                        "Qdrant local mode at %s holds over 20k points; searches are exact "
                        "and slow. Use vectors.backend=qdrant_edge or a Qdrant server.",
                        self._where,
                    )
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def search(
        self, vector: np.ndarray, *, top_k: int, flt: VectorFilter | None = None
    ) -> list[VectorHit]:
        """Nearest neighbours via ``query_points``; same contract as the edge store."""
        _check_top_k(top_k)
        response = self._call(
            self._client.query_points,
            self.collection,
            query=_check_vector(vector, self.dim, "query").tolist(),
            query_filter=_build_filter(flt, self._models, self._models.Range),
            limit=top_k,
            with_payload=True,
            # Local mode is exact and warns about search_params; a server uses HNSW.
            search_params=None if self._local else self._search_params(top_k, flt),
        )
        return [_hit(p.payload, p.score) for p in response.points]

    def _search_params(self, top_k: int, flt: VectorFilter | None) -> Any:
        models = self._models
        filtered = flt is not None and not flt.is_empty()
        return models.SearchParams(
            hnsw_ef=max(self.hnsw_ef, top_k),
            acorn=models.AcornSearchParams(enable=True) if filtered else None,
        )

    def delete(self, ids: Sequence[str]) -> None:
        """Remove points by document id; unknown ids are ignored."""
        if not ids:
            return
        selector = self._models.PointIdsList(points=[point_id(i) for i in ids])
        self._call(self._client.delete, self.collection, points_selector=selector, wait=True)

    def count(self) -> int:
        """Number of points (exact)."""
        return int(self._call(self._client.count, self.collection, exact=True).count)

    def optimize(self) -> bool:
        """No-op: a server optimises by itself; local mode has no index. Returns False."""
        return False

    def close(self) -> None:
        """Release the client (local mode: flush and unlock the folder)."""
        self._client.close()


