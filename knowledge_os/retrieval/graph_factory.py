"""Pick the graph store from settings (``settings.graph.backend``)."""

from __future__ import annotations

import logging

from knowledge_os.errors import UnknownNameError
from knowledge_os.retrieval.base import GraphStore
from knowledge_os.settings import Settings

__all__ = ["GRAPH_BACKENDS", "make_graph_store"]

logger = logging.getLogger(__name__)

GRAPH_BACKENDS = ("sqlite", "neo4j")


def make_graph_store(settings: Settings) -> GraphStore:
    """Build the configured graph store.

    ``sqlite``: :class:`SqliteGraphStore` in ``settings.sqlite_path`` (parent folder
    created). ``neo4j``: :class:`Neo4jGraphStore` on ``settings.graph.neo4j_uri``, with
    basic auth when ``neo4j_password`` is set, none otherwise. Client libraries are
    imported inside their branch.

    Raises:
        UnknownNameError: ``settings.graph.backend`` is not one of :data:`GRAPH_BACKENDS`.
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
