"""Several processes on one qdrant-edge shard (one ``KOS_HOME``): every reader answers,
a writer takes turns with them, a waiter says so, and nothing is lost or corrupted.

Real processes (``subprocess``), the real in-process Qdrant engine; the fake embedder is
not involved (vectors are generated)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from knowledge_os.errors import BackendTimeoutError
from knowledge_os.retrieval.vectors import QdrantEdgeVectorStore

pytestmark = pytest.mark.integration

DIM = 32
_WORKER = textwrap.dedent(
    """
    import logging, sys, time
    import numpy as np
    from knowledge_os.retrieval.base import VectorPoint
    from knowledge_os.retrieval.vectors import QdrantEdgeVectorStore

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    role, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(int(sys.argv[4]))
    store = QdrantEdgeVectorStore(root, "c", {dim}, lock_timeout_s=120)
    if role == "reader":
        for _ in range(n):
            hits = store.search(rng.normal(size={dim}).astype("float32"), top_k=5)
            assert len(hits) == 5, hits
        print("searches", n)
    elif role == "writer":
        for b in range(n):
            x = rng.normal(size=(50, {dim})).astype("float32")
            store.upsert([VectorPoint(id=f"w{{b}}-{{i}}", vector=x[i],
                                      payload={{"channel": "w", "ts": b, "source": "file"}}) for i in range(50)])
        store.optimize()
        print("written", 50 * n)
    elif role == "idler":  # one search, then idle with the store open (keep_open_s 60)
        store.keep_open_s = 60
        store.search(rng.normal(size={dim}).astype("float32"), top_k=1)
        print("idle", flush=True)
        time.sleep(n)
    elif role == "holder":  # takes the shard and sits on it until told (file "stop") or n s
        stop = __import__("pathlib").Path(root) / "stop"
        with store.hold():
            print("holding", flush=True)
            deadline = time.monotonic() + n
            while not stop.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    store.close()
    """
).format(dim=DIM)


def _spawn(tmp_path: Path, role: str, n: int, seed: int) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    if not script.exists():  # written once: rewriting it could hand a starting process an empty file
        script.write_text(_WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, str(script), role, str(tmp_path / "v"), str(n), str(seed)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _seed_store(tmp_path: Path, points: int = 200) -> None:
    import numpy as np

    from knowledge_os.retrieval.base import VectorPoint

    store = QdrantEdgeVectorStore(tmp_path / "v", "c", DIM)
    x = np.random.default_rng(0).normal(size=(points, DIM)).astype("float32")
    store.upsert([VectorPoint(id=f"s{i}", vector=x[i], payload={"channel": "s", "ts": i, "source": "file"})
                  for i in range(points)])
    store.optimize()
    store.close()


def test_six_readers_and_a_writer_all_succeed(tmp_path: Path) -> None:
    _seed_store(tmp_path)
    procs = [_spawn(tmp_path, "reader", 5, seed) for seed in range(6)] + [_spawn(tmp_path, "writer", 8, 99)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert [o.strip() for o, _ in outs] == ["searches 5"] * 6 + ["written 400"]
    store = QdrantEdgeVectorStore(tmp_path / "v", "c", DIM)
    assert store.count() == 600  # nothing lost, the shard reopens cleanly
    store.close()


def test_a_waiting_process_says_why_then_times_out_or_proceeds(tmp_path: Path) -> None:
    _seed_store(tmp_path, 20)
    stop = tmp_path / "v" / "stop"
    holder = _spawn(tmp_path, "holder", 120, 0)
    assert holder.stdout.readline().strip() == "holding"
    reader = _spawn(tmp_path, "reader", 1, 1)
    notice = reader.stderr.readline()  # blocks until the reader says it waits
    assert f"vector store {tmp_path / 'v' / 'c'} is in use by process {holder.pid}; waiting" in notice
    stop.touch()  # the holder gives the shard back; the reader gets its turn
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err[-3000:]
    assert out.strip() == "searches 1" and "got its turn after" in err
    holder.communicate(timeout=60)

    stop.unlink()
    holder = _spawn(tmp_path, "holder", 120, 0)
    assert holder.stdout.readline().strip() == "holding"
    try:
        with pytest.raises(BackendTimeoutError, match=rf"in use by process {holder.pid}.* 1\.0 s"):
            QdrantEdgeVectorStore(tmp_path / "v", "c", DIM, lock_timeout_s=1.0)
    finally:
        stop.touch()
        holder.communicate(timeout=60)


def test_an_idle_process_gives_the_shard_back_when_asked(tmp_path: Path) -> None:
    _seed_store(tmp_path, 20)
    idler = _spawn(tmp_path, "idler", 30, 0)
    assert idler.stdout.readline().strip() == "idle"
    started = time.monotonic()
    store = QdrantEdgeVectorStore(tmp_path / "v", "c", DIM, lock_timeout_s=20)
    assert store.count() == 20
    assert time.monotonic() - started < 10  # not the idler's 30 s, nor its keep_open_s of 60
    store.close()
    idler.kill()
    idler.communicate(timeout=60)


def test_within_a_process_the_shard_stays_open_then_is_released(tmp_path: Path) -> None:
    import fcntl

    _seed_store(tmp_path, 20)
    store = QdrantEdgeVectorStore(tmp_path / "v", "c", DIM, keep_open_s=0.5)
    probe = os.open(tmp_path / "v" / "c.lock", os.O_RDWR)
    try:
        store.count()
        with pytest.raises(BlockingIOError):  # this process keeps its turn between calls
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # idle: given back
                break
            except BlockingIOError:
                time.sleep(0.1)
        else:
            pytest.fail("the idle store kept the shard")
        fcntl.flock(probe, fcntl.LOCK_UN)
        assert store.count() == 20  # and takes it again on the next call
    finally:
        os.close(probe)
        store.close()
