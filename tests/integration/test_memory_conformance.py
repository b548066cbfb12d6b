"""One conformance suite for every EpisodicMemory and DeadLetterQueue implementation.

Parametrized over SQLite (a temp file) and PostgreSQL (``KOS_TEST_POSTGRES_DSN``; skipped
when unset, failing under ``CI``; tables truncated before each test).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from knowledge_os.errors import InputError
from knowledge_os.memory.base import (
    MAX_ERROR_CHARS,
    MAX_READ_EVENTS,
    MAX_STACK_CHARS,
    DeadLetterQueue,
    EpisodicEvent,
    EpisodicMemory,
)
from knowledge_os.memory.factory import make_dead_letter_queue, make_episodic_memory
from knowledge_os.settings import Settings

pytestmark = pytest.mark.integration

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
async def settings(
    request: pytest.FixtureRequest, tmp_path: Path, require_service
) -> AsyncIterator[Settings]:
    if request.param == "sqlite":
        yield Settings(home=tmp_path / "kos", storage={"memory": "sqlite"})
        return
    dsn = require_service("KOS_TEST_POSTGRES_DSN")
    from knowledge_os.db.pool import close_pool, get_pool

    s = Settings(home=tmp_path / "kos", storage={"memory": "postgres"}, postgres={"dsn": dsn})
    pool = await get_pool(s)
    await pool.execute("TRUNCATE kos_episodic_events, kos_dead_letters RESTART IDENTITY")
    yield s
    await close_pool()


@pytest.fixture
async def memory(settings: Settings) -> AsyncIterator[EpisodicMemory]:
    store = make_episodic_memory(settings)
    yield store
    await store.close()


@pytest.fixture
async def dlq(settings: Settings) -> AsyncIterator[DeadLetterQueue]:
    queue = make_dead_letter_queue(settings)
    yield queue
    await queue.close()


def _ev(i: int, *, type: str = "run_started", entity: str = "run", ago_s: float = 0) -> EpisodicEvent:
    return EpisodicEvent(
        type=type,
        entity_type=entity,
        entity_id=f"r{i}",
        metadata={"i": i, "nested": {"k": [1, 2]}},
        created_at=datetime.now(UTC) - timedelta(seconds=ago_s),
    )


class TestEpisodicMemory:
    async def test_implements_protocol(self, memory: EpisodicMemory) -> None:
        assert isinstance(memory, EpisodicMemory)

    async def test_record_round_trip(self, memory: EpisodicMemory) -> None:
        before = datetime.now(UTC)
        event_id = await memory.record(
            EpisodicEvent(type="error", entity_type="run", entity_id="r1", metadata={"a": [1, "x"]})
        )
        (got,) = await memory.recent()
        assert got.id == event_id
        assert (got.type, got.entity_type, got.entity_id) == ("error", "run", "r1")
        assert got.metadata == {"a": [1, "x"]}
        assert got.created_at.tzinfo is not None
        assert before - timedelta(seconds=1) <= got.created_at <= datetime.now(UTC) + timedelta(seconds=1)

    async def test_recent_newest_first_with_filters(self, memory: EpisodicMemory) -> None:
        await memory.record_many(
            [_ev(i, ago_s=100 - i) for i in range(5)]
            + [_ev(9, type="error", entity="domain", ago_s=0.5)]
        )
        ids = [e.entity_id for e in await memory.recent(limit=3)]
        assert ids == ["r9", "r4", "r3"]
        assert [e.entity_id for e in await memory.recent(entity_type="domain")] == ["r9"]
        assert [e.entity_id for e in await memory.recent(entity_id="r2")] == ["r2"]
        assert [e.entity_id for e in await memory.recent(types=["error"])] == ["r9"]
        since = datetime.now(UTC) - timedelta(seconds=97.5)
        assert [e.entity_id for e in await memory.recent(since=since)] == ["r9", "r4", "r3"]
        assert [e.entity_id for e in await memory.errors()] == ["r9"]

    async def test_same_timestamp_ties_break_by_id(self, memory: EpisodicMemory) -> None:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for i in range(3):
            await memory.record(EpisodicEvent(type="retry", entity_type="run", entity_id=f"r{i}",
                                              created_at=at))
        assert [e.entity_id for e in await memory.recent()] == ["r2", "r1", "r0"]

    async def test_limit_is_clamped(self, memory: EpisodicMemory) -> None:
        await memory.record_many([_ev(i) for i in range(MAX_READ_EVENTS + 5)])
        assert len(await memory.recent(limit=5000)) == MAX_READ_EVENTS
        assert len(await memory.recent(limit=0)) == 1

    async def test_purge_deletes_only_old_events(self, memory: EpisodicMemory) -> None:
        day = 86400
        await memory.record_many([_ev(1, ago_s=100 * day), _ev(2, ago_s=89 * day), _ev(3)])
        assert await memory.purge(older_than_days=90) == 1
        assert sorted(e.entity_id for e in await memory.recent()) == ["r2", "r3"]
        assert await memory.purge(older_than_days=90) == 0

    async def test_non_json_metadata_is_rejected(self, memory: EpisodicMemory) -> None:
        with pytest.raises(InputError, match="metadata"):
            await memory.record(EpisodicEvent(type="error", entity_type="run", entity_id="r",
                                              metadata={"x": object()}))
        assert await memory.recent() == []

    async def test_record_many_empty_is_a_no_op(self, memory: EpisodicMemory) -> None:
        await memory.record_many([])
        assert await memory.recent() == []

    async def test_record_once_writes_a_runs_events_once(self, memory: EpisodicMemory) -> None:
        run = [_ev(1), _ev(1, type="retry"), _ev(1, type="run_completed")]
        assert await memory.record_once(run, done_type="run_completed") is True
        assert await memory.record_once(run, done_type="run_completed") is False  # a retried finalize
        assert sorted(e.type for e in await memory.recent(entity_id="r1")) == ["retry", "run_completed", "run_started"]
        other = [_ev(2), _ev(2, type="run_completed")]  # another run: its own events go in
        assert await memory.record_once(other, done_type="run_completed") is True
        assert len(await memory.recent(entity_id="r2")) == 2

    async def test_record_once_checks_the_done_type_of_the_last_events_entity(self, memory: EpisodicMemory) -> None:
        await memory.record(_ev(3))  # started, never completed: not "done"
        assert await memory.record_once([_ev(3, type="run_completed")], done_type="run_completed") is True
        await memory.record(_ev(4, type="run_completed", entity="job"))  # same id, another entity type
        assert await memory.record_once([_ev(4, type="run_completed")], done_type="run_completed") is True
        with pytest.raises(ValueError, match="at least one event"):
            await memory.record_once([], done_type="run_completed")


async def _enqueue(dlq: DeadLetterQueue, i: int = 1, **kw: object) -> int:
    args = {"run_id": f"run{i}", "thread_id": f"t{i}", "checkpoint_id": f"cp{i}",
            "payload": {"query": "what changed in openssl?", "i": i}, "error": "boom"}
    args.update(kw)
    return await dlq.enqueue(**args)


def _later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


class TestDeadLetterQueue:
    async def test_implements_protocol(self, dlq: DeadLetterQueue) -> None:
        assert isinstance(dlq, DeadLetterQueue)

    async def test_enqueue_sets_first_attempt_and_backoff(self, dlq: DeadLetterQueue) -> None:
        letter_id = await _enqueue(dlq, error="e" * 5000, stack="s" * 9000, checkpoint_id=None)
        letter = await dlq.get(letter_id)
        assert letter is not None
        assert (letter.run_id, letter.thread_id, letter.checkpoint_id) == ("run1", "t1", None)
        assert letter.payload == {"query": "what changed in openssl?", "i": 1}
        assert len(letter.error) == MAX_ERROR_CHARS and len(letter.stack) == MAX_STACK_CHARS
        assert (letter.attempts, letter.status) == (1, "pending")
        delay = (letter.next_attempt_at - letter.created_at).total_seconds()
        assert delay == pytest.approx(120, abs=1)
        assert await dlq.get(letter_id + 1000) is None

    async def test_claim_only_due_oldest_first(self, dlq: DeadLetterQueue) -> None:
        ids = [await _enqueue(dlq, i) for i in range(3)]
        assert await dlq.claim_due() == []  # due in 120 s
        claimed = await dlq.claim_due(limit=2, now=_later(121))
        assert [d.id for d in claimed] == ids[:2]
        assert [d.id for d in await dlq.claim_due(now=_later(121))] == ids[2:]

    async def test_claimed_letters_not_returned_again_until_released(self, dlq) -> None:
        letter_id = await _enqueue(dlq)
        assert [d.id for d in await dlq.claim_due(now=_later(121))] == [letter_id]
        assert await dlq.claim_due(now=_later(122)) == []
        # the lease (900 s by default) runs out: a crashed worker's letter is due again
        assert [d.id for d in await dlq.claim_due(now=_later(121 + 901))] == [letter_id]

    async def test_concurrent_claims_never_share_a_letter(self, dlq: DeadLetterQueue) -> None:
        ids = {await _enqueue(dlq, i) for i in range(20)}
        batches = await asyncio.gather(*(dlq.claim_due(limit=7, now=_later(121)) for _ in range(4)))
        claimed = [d.id for batch in batches for d in batch]
        assert sorted(claimed) == sorted(ids)

    async def test_mark_failed_backs_off_then_gives_up(self, dlq: DeadLetterQueue) -> None:
        letter_id = await _enqueue(dlq)
        await dlq.claim_due(now=_later(121))
        letter = await dlq.mark_failed(letter_id, error="again " * 300, stack="tb")
        assert (letter.attempts, letter.status) == (2, "pending")
        assert len(letter.error) == MAX_ERROR_CHARS and letter.stack == "tb"
        delay = (letter.next_attempt_at - letter.updated_at).total_seconds()
        assert delay == pytest.approx(240, abs=1)
        assert await dlq.claim_due(now=_later(200)) == []  # released, but not due yet
        assert [d.id for d in await dlq.claim_due(now=_later(241))] == [letter_id]
        final = await dlq.mark_failed(letter_id, error="third")
        assert (final.attempts, final.status) == (3, "permanent_failure")
        assert await dlq.claim_due(now=_later(10_000)) == []
        # a final letter is not counted again
        assert (await dlq.mark_failed(letter_id, error="x")).attempts == 3

    async def test_mark_reprocessed(self, dlq: DeadLetterQueue) -> None:
        letter_id = await _enqueue(dlq)
        await dlq.claim_due(now=_later(121))
        await dlq.mark_reprocessed(letter_id)
        letter = await dlq.get(letter_id)
        assert letter is not None and letter.status == "reprocessed"
        assert await dlq.claim_due(now=_later(10_000)) == []

    async def test_unknown_ids_raise_key_error(self, dlq: DeadLetterQueue) -> None:
        with pytest.raises(KeyError):
            await dlq.mark_reprocessed(424242)
        with pytest.raises(KeyError):
            await dlq.mark_failed(424242, error="x")

    async def test_list_by_status_newest_first(self, dlq: DeadLetterQueue) -> None:
        a, b, c = [await _enqueue(dlq, i) for i in range(3)]
        await dlq.mark_reprocessed(b)
        assert [d.id for d in await dlq.list()] == [c, b, a]
        assert [d.id for d in await dlq.list(status="pending")] == [c, a]
        assert [d.id for d in await dlq.list(status="reprocessed")] == [b]
        assert [d.id for d in await dlq.list(limit=1)] == [c]
