"""Ingest as a Procrastinate job against a real PostgreSQL (``KOS_TEST_POSTGRES_DSN``,
database ``<name>_ingestq`` of its own): ``kos ingest --queue`` puts the job on the queue,
a worker with the shared stores runs it, and another host, which never ingested, then
answers from the new corpus: documents, generation and embeddings. Fake models."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from typer.testing import CliRunner

from tests.fakes import HashEmbedder
from tests.integration.pgdb import SHARED_TABLES, empty_tables, own_database

pytestmark = pytest.mark.integration

procrastinate = pytest.importorskip("procrastinate")

from knowledge_os.api import KnowledgeOS  # noqa: E402
from knowledge_os.cli import app as cli  # noqa: E402
from knowledge_os.queue.app import enqueue_ingest, ensure_schema, make_app, run_worker  # noqa: E402
from knowledge_os.queue.ingest import INGEST_LOCK, INGEST_TASK  # noqa: E402
from knowledge_os.services import Services  # noqa: E402
from knowledge_os.settings import Settings  # noqa: E402

QUEUE_ENV = "KOS_QUEUE__NAME"


@pytest.fixture
def dsn() -> str:
    import psycopg

    dsn = own_database("ingestq")
    empty_tables(dsn, (*SHARED_TABLES, "kos_embeddings", "kos_embedding_deletes"))
    ensure_schema(Settings(postgres={"dsn": dsn}, queue={"backend": "procrastinate"}))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM procrastinate_jobs")
    return dsn


def host_settings(home: Path, dsn: str, queue: str) -> Settings:
    return Settings(home=home, postgres={"dsn": dsn}, queue={"backend": "procrastinate", "name": queue},
                    vectors={"backend": "postgres_edge", "shared_check_s": 0},
                    storage={"documents": "postgres", "answer_cache": "postgres"})


def host(settings: Settings) -> KnowledgeOS:
    return KnowledgeOS(services=Services(settings, embedder=HashEmbedder(),
                                         chat_model=FakeListChatModel(responses=["ok [1]."] * 10)))


def jobs(settings: Settings) -> list[dict]:
    async def main() -> list[dict]:
        app = make_app(settings)
        async with app.open_async():
            return await app.connector.execute_query_all_async(
                "SELECT id, task_name, status, lock, args FROM procrastinate_jobs ORDER BY id")

    return asyncio.run(main())


def test_a_queued_ingest_is_run_by_a_worker_and_seen_by_another_host(
    dsn: str, tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"kos-ingest-test-{time.time_ns()}"
    monkeypatch.setenv("KOS_HOME", str(tmp_path / "cli-host"))
    monkeypatch.setenv("KOS_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("KOS_POSTGRES__DSN", dsn)
    monkeypatch.setenv("KOS_QUEUE__BACKEND", "procrastinate")
    monkeypatch.setenv(QUEUE_ENV, queue)
    done = CliRunner().invoke(cli, ["ingest", "--queue", "--json", str(corpus_dir)])
    assert done.exit_code == 0, done.output
    queued = orjson.loads(done.output)
    assert queued["paths"] == [str(corpus_dir.absolute())]
    worker_settings = host_settings(tmp_path / "worker", dsn, queue)
    [job] = jobs(worker_settings)
    assert (job["id"], job["task_name"], job["status"], job["lock"]) == (queued["job_id"], INGEST_TASK, "todo", INGEST_LOCK)

    worker = host(worker_settings)
    asyncio.run(run_worker(worker_settings, wait=False, kos_factory=lambda: worker))
    assert [j["status"] for j in jobs(worker_settings)] == ["succeeded"]

    other = host(host_settings(tmp_path / "other", dsn, queue))  # never ingested anything
    try:
        docs = other.services.docstore
        assert docs.count() == 5 and docs.pending_count() == 0 and docs.generation() > 0
        doc = docs.get(["deb:openssl:3.0.19-1~deb12u2"])[0]
        hits = other.services.vector_store.search(other.services.embedder.embed_query(doc.text[:512]), top_k=1)
        assert hits[0].id == doc.id  # its index copied the worker's embeddings
        result = other.run("Which entry fixes CVE-2026-28389?", as_of="2026-11-22")
        assert doc.id in [c.id for c in result.citations]
    finally:
        other.close()


def test_kos_ingest_queue_names_a_missing_path_and_an_unset_queue(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KOS_HOME", str(tmp_path / "kos"))
    monkeypatch.setenv("KOS_CONFIG_FILE", str(tmp_path / "absent.yaml"))
    missing = CliRunner().invoke(cli, ["ingest", "--queue", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "nope" in missing.output
    unset = CliRunner().invoke(cli, ["ingest", "--queue", str(tmp_path)])
    assert unset.exit_code == 2 and "KOS_QUEUE__BACKEND=procrastinate" in " ".join(unset.output.split())


def test_enqueue_ingest_with_no_paths_means_the_default_corpus(dsn: str, tmp_path: Path) -> None:
    settings = host_settings(tmp_path / "h", dsn, f"kos-ingest-test-{time.time_ns()}")
    queued = enqueue_ingest(settings)
    assert queued.paths == ()
    [job] = jobs(settings)
    assert job["args"] == {"paths": []} and job["id"] == queued.job_id
