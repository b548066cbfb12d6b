"""Episodic memory and dead-letter queue throughput: SQLite vs PostgreSQL, side by side.

Measures, per backend: single-event writes/s (one ``record`` per event, sequential),
batched writes/s (``record_many`` of 100), the same single writes from 8 concurrent
tasks, recent-reads/s (``recent(limit=100)`` over the written events), DLQ enqueues/s
and claims/s (``claim_due(limit=10)`` + ``mark_reprocessed`` for each letter).

PostgreSQL is measured when ``KOS_TEST_POSTGRES_DSN`` (or ``--dsn``) is set; its
``kos_episodic_events`` / ``kos_dead_letters`` tables are TRUNCATED first, so point it at
a test database (``scripts/services/postgres.sh start``). SQLite uses a temp file.

Run: ``python benchmarks/bench_memory.py [--n 2000]``. A figure, not a test.
Note the durability settings differ: SQLite runs WAL with ``synchronous=NORMAL`` (no
fsync per commit), PostgreSQL its defaults (``synchronous_commit=on``, fsync per commit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge_os.memory.base import DeadLetterQueue, EpisodicEvent, EpisodicMemory  # noqa: E402
from knowledge_os.memory.factory import make_dead_letter_queue, make_episodic_memory  # noqa: E402
from knowledge_os.settings import Settings  # noqa: E402


def _event(i: int) -> EpisodicEvent:
    return EpisodicEvent(
        type="error" if i % 10 == 0 else "run_completed",
        entity_type="run",
        entity_id=f"run-{i}",
        metadata={"domain": "digest", "latency_ms": i % 997, "tokens": 1234},
    )


async def _rate(n: int, fn: Callable[[int], Awaitable[object]]) -> float:
    start = time.perf_counter()
    for i in range(n):
        await fn(i)
    return n / (time.perf_counter() - start)


async def bench(settings: Settings, n: int) -> dict[str, float]:
    """Operations per second for each measured operation."""
    memory: EpisodicMemory = make_episodic_memory(settings)
    dlq: DeadLetterQueue = make_dead_letter_queue(settings)
    out: dict[str, float] = {}
    out["episodic write (1/txn)"] = await _rate(n, lambda i: memory.record(_event(i)))

    batches = max(1, n // 100)
    start = time.perf_counter()
    for b in range(batches):
        await memory.record_many([_event(b * 100 + j) for j in range(100)])
    out["episodic write (batch 100)"] = batches * 100 / (time.perf_counter() - start)

    per_task = max(1, n // 8)
    start = time.perf_counter()
    await asyncio.gather(*(
        _rate(per_task, lambda i, t=t: memory.record(_event(t * per_task + i))) for t in range(8)
    ))
    out["episodic write (8 tasks)"] = 8 * per_task / (time.perf_counter() - start)

    reads = max(1, n // 4)
    out["recent(limit=100) reads"] = await _rate(reads, lambda i: memory.recent(limit=100))
    out["errors(limit=100) reads"] = await _rate(reads, lambda i: memory.errors(limit=100))

    out["dlq enqueue"] = await _rate(n, lambda i: dlq.enqueue(
        run_id=f"run-{i}", thread_id=f"t-{i}", checkpoint_id=f"cp-{i}",
        payload={"query": "what changed in openssl?"}, error="BackendTimeoutError: 30 s",
        stack="Traceback ...\n" * 20,
    ))
    due = datetime.now(UTC) + timedelta(seconds=3600)
    claimed = 0
    start = time.perf_counter()
    while batch := await dlq.claim_due(limit=10, now=due):
        for letter in batch:
            await dlq.mark_reprocessed(letter.id)
        claimed += len(batch)
    out["dlq claim+mark (per letter)"] = claimed / (time.perf_counter() - start)
    await memory.close()
    await dlq.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="events / letters per measurement")
    parser.add_argument("--dsn", default=os.environ.get("KOS_TEST_POSTGRES_DSN"))
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = await bench(Settings(home=Path(tmp), storage={"memory": "sqlite"}), args.n)
    if args.dsn:
        from knowledge_os.db.pool import close_pool, get_pool

        settings = Settings(storage={"memory": "postgres"}, postgres={"dsn": args.dsn})
        pool = await get_pool(settings)
        await pool.execute("TRUNCATE kos_episodic_events, kos_dead_letters RESTART IDENTITY")
        try:
            results["postgres"] = await bench(settings, args.n)
        finally:
            await pool.execute("TRUNCATE kos_episodic_events, kos_dead_letters RESTART IDENTITY")
            await close_pool()
    else:
        print("postgres: skipped (set KOS_TEST_POSTGRES_DSN)")

    names = list(results)
    header = f"{'operation (ops/s)':<30}" + "".join(f"{n:>12}" for n in names)
    if len(names) == 2:
        header += f"{'postgres/sqlite':>17}"
    print(f"n = {args.n}")
    print(header)
    print("-" * len(header))
    for op in results["sqlite"]:
        line = f"{op:<30}" + "".join(f"{results[n][op]:>12,.0f}" for n in names)
        if len(names) == 2:
            line += f"{results['postgres'][op] / results['sqlite'][op]:>16.2f}x"
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
