"""A run that fails is dead-lettered with its thread and checkpoint, and the worker
resumes it from there (it is not redone from the start)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from knowledge_os.memory.dlq_worker import work_due
from knowledge_os.memory.factory import make_dead_letter_queue
from tests.fakes import MemoryVectorStore
from tests.unit.conftest import make_kos


class FlakyVectorStore(MemoryVectorStore):
    """Fails the first search, as a vector server that is briefly down."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    def search(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("vector store unavailable")
        return super().search(*args, **kwargs)


def test_failed_run_is_dead_lettered_and_resumed(tmp_path: Path, corpus_dir: Path) -> None:
    kos = make_kos(tmp_path, ["openssl fixed two CVEs [1]."])
    flaky = FlakyVectorStore()
    kos.services._vector_store = flaky
    kos.ingest([corpus_dir])
    with pytest.raises(RuntimeError, match="vector store unavailable"):
        kos.run("What changed in openssl since March?", thread_id="t-dlq", as_of="2026-11-22")

    async def scenario() -> tuple[list, dict, object]:
        queue = make_dead_letter_queue(kos.settings)
        try:
            [letter] = await queue.list(status="pending")
            assert letter.thread_id == "t-dlq" and letter.checkpoint_id
            assert letter.payload["query"] == "What changed in openssl since March?"
            assert "vector store unavailable" in letter.error and "RuntimeError" in letter.stack
            not_yet = await work_due(queue, lambda l: kos.aresume(l.thread_id), now=datetime.now(UTC))
            assert not_yet["claimed"] == 0  # backoff: due only after 60 * 2**1 s
            later = datetime.now(UTC) + timedelta(seconds=121)
            counts = await work_due(queue, lambda l: kos.aresume(l.thread_id), now=later)
            return [letter], counts, await queue.get(letter.id)
        finally:
            await queue.close()

    _, counts, letter = asyncio.run(scenario())
    assert counts == {"claimed": 1, "reprocessed": 1, "rescheduled": 0, "permanent_failure": 0}
    assert letter.status == "reprocessed"
    done = kos.get_thread("t-dlq")
    assert done is not None and [c.id for c in done.citations] == ["deb:openssl:3.0.19-1~deb12u2"]
    # Resumed, not redone: the same steps as an uninterrupted run of the same question.
    clean = kos.run("What changed in openssl since March?", thread_id="t-clean", as_of="2026-11-22",
                    use_cache=False)
    assert done.manifest["usage"]["steps"] == clean.manifest["usage"]["steps"]
    kos.close()
