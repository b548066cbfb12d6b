"""The long-lived objects a run needs, built once per process from :class:`Settings`.

Nodes reach them through ``Context.services`` (``KnowledgeOS`` always passes its own).
Only a run without one (``langgraph dev`` serving ``knowledge_os.graph.builder:graph``)
falls back to the process-wide :func:`get_services`. Building a ``Services`` or a
``KnowledgeOS`` changes no process-wide state. Heavy parts (models, stores) are created
on first use.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

import numpy as np

from knowledge_os.cache.ttl import KeyedCache
from knowledge_os.domains.registry import DomainRegistry
from knowledge_os.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langgraph.cache.base import BaseCache

    from knowledge_os.cache.base import AnswerStore
    from knowledge_os.memory.base import EpisodicMemory
    from knowledge_os.observability.metrics import Metrics
    from knowledge_os.personas.registry import PersonaRegistry
    from knowledge_os.retrieval.base import DocumentStore, Embedder, GraphStore, VectorStore
    from knowledge_os.retrieval.service import QueryEmbedder, RetrievalService

__all__ = ["Services", "get_services", "reset_services"]


class Services:
    """Stores, models, caches and the domain registry for one settings object.

    Args:
        settings: The settings; defaults to ``Settings()`` (environment + kos.yaml).
        chat_model: Override the chat model (unit tests pass a fake).
        embedder: Override the embedder (unit tests pass a fake).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        chat_model: BaseChatModel | None = None,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
        graph_store: GraphStore | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._chat_model = chat_model
        self._chat_model_given = chat_model is not None
        self._embedder = embedder
        self._vector_store = vector_store
        self._graph_store = graph_store
        # Objects the caller passed in belong to the caller: close() closes them but keeps them.
        self._injected = {name for name, obj in (("vector_store", vector_store), ("graph_store", graph_store))
                          if obj is not None}
        self._lock = threading.RLock()
        self._channels: dict[str, str] | None = None
        self._examples: dict[str, np.ndarray] | None = None
        self._memory: EpisodicMemory | None = None
        self._closed_answer_counts: dict[str, tuple[int, int]] = {}
        s = self.settings
        self.domains = DomainRegistry.from_dirs([s.builtin_domains_dir, *s.domains_dirs])
        self.router_cache: KeyedCache[dict] = KeyedCache(
            "router", maxsize=s.router.cache_max_entries, ttl_s=s.router.cache_ttl_s
        )
        self.retrieval_cache: KeyedCache[list] = KeyedCache(
            "retrieval", maxsize=s.cache.retrieval_max_entries, ttl_s=s.cache.retrieval_ttl_s
        )
        self.embedding_cache: KeyedCache = KeyedCache(
            "embedding", maxsize=s.cache.embedding_max_entries, ttl_s=s.cache.retrieval_ttl_s
        )

    # Each accessor builds its object once, under the lock.

    @functools.cached_property
    def docstore(self) -> DocumentStore:
        """The document store of ``storage.documents`` (SQLite by default)."""
        from knowledge_os.retrieval.factory import make_document_store

        with self._lock:
            return make_document_store(self.settings)

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                from knowledge_os.retrieval.factory import make_embedder

                self._embedder = make_embedder(self.settings.embedder)
            return self._embedder

    @property
    def vector_store(self) -> VectorStore:
        with self._lock:
            if self._vector_store is None:
                from knowledge_os.retrieval.factory import make_vector_store

                self._vector_store = make_vector_store(self.settings, self.embedder.dim)
            return self._vector_store

    @property
    def graph_store(self) -> GraphStore:
        with self._lock:
            if self._graph_store is None:
                from knowledge_os.retrieval.factory import make_graph_store

                self._graph_store = make_graph_store(self.settings)
            return self._graph_store

    @property
    def chat_model(self) -> BaseChatModel:
        with self._lock:
            if self._chat_model is None:
                from knowledge_os.llm.factory import make_chat_model

                self._chat_model = make_chat_model(self.settings.llm)
            return self._chat_model

    @functools.cached_property
    def query_embedder(self) -> QueryEmbedder:
        """Query embeddings with their cache; opens no store (routing and the answer
        cache embed the question before anything is retrieved)."""
        from knowledge_os.retrieval.service import QueryEmbedder

        return QueryEmbedder(self.embedder, self.embedding_cache)

    @functools.cached_property
    def personas(self) -> PersonaRegistry:
        """Persona profiles (loaded and checked now) and their index (``<home>/personas``).

        Raises:
            PersonaConfigError: a persona file is wrong (file, key path, problem).
        """
        from knowledge_os.personas.index import index_dir
        from knowledge_os.personas.profiles import load_profiles
        from knowledge_os.personas.registry import PersonaRegistry
        from knowledge_os.personas.tokens import token_counter

        s = self.settings
        count, tokenizer = token_counter(self.chat_model)
        profiles = load_profiles(s.persona_files, count_tokens=count, tokenizer=tokenizer)
        return PersonaRegistry(profiles=profiles, embedder=self.embedder, index_folder=index_dir(s.home),
                               similarity_floor=s.personas.similarity_floor, batch_size=s.embedder.batch_size,
                               query_embed=self.query_embedder.embed)

    @functools.cached_property
    def retrieval(self) -> RetrievalService:
        """The retrieval service, given the stores it uses."""
        from knowledge_os.retrieval.service import RetrievalService

        return RetrievalService(query_embedder=self.query_embedder, docstore=self.docstore,
                                vector_store=self.vector_store, graph_store=self.graph_store,
                                cache=self.retrieval_cache)

    @functools.cached_property
    def metrics(self) -> Metrics:
        from knowledge_os.observability.metrics import Metrics

        return Metrics(cache_stats=self.cache_stats)

    def cache_stats(self) -> dict[str, tuple[int, int]]:
        """Cache name -> (hits, misses) since this object was built: router, retrieval,
        embedding, node, answer_exact, answer_near (the answer cache's counts survive
        :meth:`close`)."""
        stats = {c.name: (c.hits, c.misses) for c in (self.router_cache, self.retrieval_cache, self.embedding_cache)}
        node = self.__dict__.get("node_cache")
        stats["node"] = (getattr(node, "hits", 0), getattr(node, "misses", 0))
        answers = self.__dict__.get("answer_cache")
        for name in ("answer_exact", "answer_near"):
            hits, misses = self._closed_answer_counts.get(name, (0, 0))
            if answers is not None:
                hits, misses = hits + answers.counts[name][0], misses + answers.counts[name][1]
            stats[name] = (hits, misses)
        return stats

    @functools.cached_property
    def node_cache(self) -> BaseCache:
        """LangGraph node cache (results of ``execute``), in memory for the process, at
        most ``cache.node_max_entries`` entries (least recently used out first)."""
        from knowledge_os.cache.node_cache import BoundedMemoryCache

        return BoundedMemoryCache(max_entries=self.settings.cache.node_max_entries)

    @functools.cached_property
    def answer_cache(self) -> AnswerStore:
        """The answer cache of ``storage.answer_cache`` (SQLite by default)."""
        from knowledge_os.cache.factory import make_answer_cache

        return make_answer_cache(self.settings)

    @functools.cached_property
    def domains_fingerprint(self) -> str:
        """Hash of every loaded domain spec: editing a YAML invalidates cached answers."""
        from knowledge_os.cache.keys import cache_key

        return cache_key("answer", {"domains": [d.model_dump(mode="json") for d in self.domains]})

    def channels(self) -> dict[str, str]:
        """Known package/channel names -> channel: the corpus's packages and binary names
        (``DocumentStore.channels``), then the common names of ``corpus.names`` whose
        channel is in the corpus ("kernel" -> linux); cached until :meth:`invalidate`."""
        with self._lock:
            if self._channels is None:
                known = self.docstore.channels()
                corpus = set(known.values())
                for name, channel in self.settings.corpus.names.items():
                    if channel in corpus:
                        known.setdefault(name.lower(), channel)
                self._channels = known
            return self._channels

    def example_embeddings(self) -> dict[str, np.ndarray]:
        """Per domain, the embeddings of its YAML example queries (computed once)."""
        with self._lock:
            if self._examples is None:
                self._examples = {
                    d.name: np.stack([self.query_embedder.embed(e) for e in d.routing.examples])
                    for d in self.domains
                    if d.routing.examples
                }
            return self._examples

    async def episodic_memory(self) -> EpisodicMemory:
        if self._memory is None:
            from knowledge_os.memory.factory import make_episodic_memory

            self._memory = make_episodic_memory(self.settings)
        return self._memory

    def invalidate(self) -> None:
        """Forget derived caches after the corpus changed (ingest)."""
        with self._lock:
            self._channels = None
            self.retrieval_cache.clear()

    def model_name(self) -> str:
        """A stable name of the chat model for cache keys and manifests."""
        llm = self.settings.llm
        if self._chat_model_given:
            return type(self._chat_model).__name__
        if llm.provider == "ollama":
            return f"ollama/{llm.ollama_model}"
        if llm.provider == "openai":
            return f"openai/{llm.openai_model}"
        return f"llamacpp/{llm.model_path.name if llm.model_path else 'smollm2-135m-instruct-q4_1'}"

    def close(self) -> None:
        """Flush and close the stores that were opened.

        Stores built here are dropped and built again on next use; stores passed to the
        constructor are closed but kept (never replaced by a store built from settings).
        """
        with self._lock:
            for name in ("vector_store", "graph_store"):
                store = getattr(self, f"_{name}")
                if store is not None:
                    store.close()
                    if name not in self._injected:
                        setattr(self, f"_{name}", None)
            if "answer_cache" in self.__dict__:
                self._closed_answer_counts = {k: v for k, v in self.cache_stats().items() if k.startswith("answer_")}
            for name in ("docstore", "answer_cache"):
                if name in self.__dict__:
                    self.__dict__.pop(name).close()
            self.__dict__.pop("retrieval", None)  # it holds the stores just closed
            close_embedder = getattr(self._embedder, "close", None)  # an HTTP embedder's connections
            if close_embedder is not None:
                close_embedder()


_default: Services | None = None
_default_lock = threading.Lock()


def get_services() -> Services:
    """The process-wide services for ``Settings()``; built on first call."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Services()
        return _default


def reset_services(services: Services | None = None) -> None:
    """Replace (or drop, with None) the process-wide services; closes the old ones."""
    global _default
    with _default_lock:
        if _default is not None and _default is not services:
            _default.close()
        _default = services
