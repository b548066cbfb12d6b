from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from knowledge_os.api import KnowledgeOS
from knowledge_os.services import Services, reset_services
from knowledge_os.settings import Settings
from tests.fakes import HashEmbedder, MemoryVectorStore

SUMMARY = "openssl fixed two CVEs in April 2026 [1] after importing 3.0.19 [2]."


def make_kos(tmp_path: Path, responses: list[str], **settings_kw) -> KnowledgeOS:
    settings = Settings(home=tmp_path / ".kos", **settings_kw)
    services = Services(settings, chat_model=FakeListChatModel(responses=responses),
                        embedder=HashEmbedder(), vector_store=MemoryVectorStore())
    return KnowledgeOS(services=services)


@pytest.fixture
def kos_factory(tmp_path: Path, corpus_dir: Path) -> Iterator:
    made: list[KnowledgeOS] = []

    def factory(responses: list[str] | None = None, **settings_kw) -> KnowledgeOS:
        kos = make_kos(tmp_path, responses or [SUMMARY], **settings_kw)
        report = kos.ingest([corpus_dir])
        assert report.problems == []
        made.append(kos)
        return kos

    yield factory
    for k in made:
        k.close()
    reset_services(None)
