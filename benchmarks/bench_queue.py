"""Queued runs on Procrastinate: throughput with 1, 2 and 4 ``kos worker`` processes, queue
latency, the cost a job adds over a direct run, recovery after a worker is SIGKILLed.

Every figure comes from real processes over a copy of an ingested ``KOS_HOME`` (``--home``;
one copy per worker: two processes must not share one) and a PostgreSQL of your choice
(``--dsn``, default ``KOS_TEST_POSTGRES_DSN``; the benchmark makes a database of its own
there and drops it at the end). Timestamps are Procrastinate's own: ``procrastinate_events``
(``deferred``, ``started``, ``succeeded`` per job, server clock).

1. direct: the questions run one after the other in one process (``KnowledgeOS.run``,
   after a warm-up run): wall and CPU seconds per run;
2. for W in ``--workers`` (default 1 2 4): W workers (concurrency 1 each), a warm-up job per
   worker, then ``--jobs`` runs enqueued at once: runs/s (first ``deferred`` to last
   ``succeeded``), the workers' CPU seconds per run (utime + stime of the processes, read
   before they stop), queue wait (deferred -> started) p50/p95, job time (started ->
   succeeded) p50;
3. queue latency on an idle worker: ``--idle`` jobs enqueued one at a time, each after the
   previous finished: deferred -> started p50/p95 (LISTEN/NOTIFY wake-up and the fetch),
   and the job's time minus the run's own latency (``RunResult.usage.latency_s``): what a
   job adds over a direct run (reading the thread's checkpoint, opening the graph,
   Procrastinate's bookkeeping);
4. recovery: two workers (``queue.heartbeat_s`` and ``queue.stalled_after_s`` from the
   flags), worker A SIGKILLed holding a job: seconds from the kill to the job started again
   on B and to its success.

    .venv/bin/python benchmarks/bench_queue.py --home .kos [--dsn postgresql://...]
        [--workers 1 2 4] [--jobs 8] [--idle 8] [--stalled-after 6 --heartbeat 1]

The machine is shared: the 1-minute load average is printed after each part.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg

QUESTIONS = [
    "What changed in openssl since March?",
    "Which upload fixed CVE-2024-6387?",
    "What changed in curl this year?",
    "Which kinds of fixes are rising this quarter?",
    "What changed in systemd recently?",
    "What security fixes did libxml2 get?",
    "What changed in python3.11?",
    "What changed in openssh since January?",
]
SMART = "Compare what changed in openssl and curl since March and explain why"
KOS = [sys.executable, "-m", "knowledge_os.cli"]
TICK = os.sysconf("SC_CLK_TCK")
DIRECT = """
import sys, time, orjson
from knowledge_os.api import KnowledgeOS
kos = KnowledgeOS()
kos.run(sys.argv[2], use_cache=False)  # warm-up: models loaded
out = []
for q in orjson.loads(sys.argv[1]):
    w, c = time.perf_counter(), time.process_time()
    r = kos.run(q, use_cache=False)
    out.append({"wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - c,
                "latency_s": r.usage.latency_s})
kos.close()
print(orjson.dumps(out).decode())
"""
ENQUEUE = """
import sys, orjson
from knowledge_os.api import KnowledgeOS
kos = KnowledgeOS()
out = [kos.enqueue(q, thread_id=t, use_cache=False).job_id for t, q in orjson.loads(sys.argv[1])]
kos.close()
print(orjson.dumps(out).decode())
"""
RESULT = """
import sys, orjson
from knowledge_os.api import KnowledgeOS
kos = KnowledgeOS()
print(orjson.dumps([kos.get_thread(t).usage.latency_s for t in orjson.loads(sys.argv[1])]).decode())
kos.close()
"""


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_s(pid: int) -> float:
    """utime + stime of a live process, seconds (/proc/PID/stat fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process so far, MB (``VmHWM`` of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Bench:
    def __init__(self, home: Path, dsn: str, root: Path, heartbeat_s: float, stalled_after_s: float) -> None:
        self.home, self.dsn, self.root = home, dsn, root
        self.heartbeat_s, self.stalled_after_s = heartbeat_s, stalled_after_s
        self.queue = f"bench-{time.time_ns()}"
        self.n = 0

    def env(self, name: str) -> dict[str, str]:
        home = self.root / name / ".kos"
        if not home.exists():
            shutil.copytree(self.home, home)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KOS_")}
        env.update(KOS_HOME=str(home), KOS_POSTGRES__DSN=self.dsn, KOS_STORAGE__CHECKPOINTER="postgres",
                   KOS_STORAGE__MEMORY="postgres", KOS_QUEUE__BACKEND="procrastinate", KOS_QUEUE__NAME=self.queue,
                   KOS_QUEUE__HEARTBEAT_S=str(self.heartbeat_s),
                   KOS_QUEUE__STALLED_AFTER_S=str(self.stalled_after_s))
        return env

    def python(self, code: str, *args: str, name: str = "client") -> Any:
        done = subprocess.run([sys.executable, "-c", code, *args], env=self.env(name), capture_output=True,
                              text=True, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"helper failed: {done.stderr[-3000:]}")
        return orjson.loads(done.stdout.strip().splitlines()[-1])

    def threads(self, k: int, questions: list[str]) -> list[tuple[str, str]]:
        out = []
        for q in questions[:k] if k <= len(questions) else [questions[i % len(questions)] for i in range(k)]:
            self.n += 1
            out.append((f"bench-{self.queue}-{self.n}", q))
        return out

    def enqueue(self, runs: list[tuple[str, str]]) -> list[int]:
        return self.python(ENQUEUE, orjson.dumps(runs).decode())

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql, args).fetchall()

    def events(self, ids: list[int]) -> dict[int, dict[str, list[float]]]:
        """Job id -> event type -> epoch seconds (Procrastinate's clock)."""
        out: dict[int, dict[str, list[float]]] = {i: {} for i in ids}
        for job, kind, at in self.query("SELECT job_id, type::text, extract(epoch FROM at)::float8 "
                                        "FROM procrastinate_events WHERE job_id = ANY(%s) ORDER BY id", ids):
            out[job].setdefault(kind, []).append(at)
        return out

    def wait(self, ids: list[int], timeout_s: float = 1800) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rows = self.query("SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%s) "
                              "AND status IN ('succeeded', 'failed')", ids)
            if rows[0][0] == len(ids):
                failed = self.query("SELECT id FROM procrastinate_jobs WHERE id = ANY(%s) AND status = 'failed'", ids)
                if failed:
                    raise SystemExit(f"jobs failed: {failed}")
                return
            time.sleep(0.2)
        raise SystemExit(f"jobs not done after {timeout_s} s")

    def workers(self, count: int, tag: str, already: int = 0) -> list[subprocess.Popen[bytes]]:
        procs = [subprocess.Popen([*KOS, "worker", "--name", f"{tag}-{i}"], env=self.env(f"w{i}"),
                                  stdout=subprocess.DEVNULL, stderr=open(self.root / f"{tag}-{i}.log", "ab"))  # noqa: SIM115
                 for i in range(count)]
        deadline = time.monotonic() + 300
        while self.query("SELECT count(*) FROM procrastinate_workers")[0][0] < already + count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"workers did not start: {[p.poll() for p in procs]}")
            time.sleep(0.2)
        return procs

    @staticmethod
    def stop(procs: list[subprocess.Popen[bytes]]) -> None:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait(timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="An ingested KOS_HOME (copied per process).")
    ap.add_argument("--dsn", default=os.environ.get("KOS_TEST_POSTGRES_DSN"), help="PostgreSQL server DSN.")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--jobs", type=int, default=8, help="Runs enqueued per throughput round.")
    ap.add_argument("--idle", type=int, default=8, help="Jobs for the idle-worker latency.")
    ap.add_argument("--heartbeat", type=float, default=1.0, help="queue.heartbeat_s for the recovery part.")
    ap.add_argument("--stalled-after", type=float, default=6.0, help="queue.stalled_after_s for the recovery part.")
    ap.add_argument("--parts", nargs="+", default=["direct", "throughput", "idle", "recovery"],
                    choices=["direct", "throughput", "idle", "recovery"])
    args = ap.parse_args()
    if not args.dsn:
        raise SystemExit("--dsn or KOS_TEST_POSTGRES_DSN is required")
    parts = urlsplit(args.dsn)
    name = f"kos_bench_queue_{time.time_ns() % 10**9}"
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(parts._replace(path=f"/{name}"))
    root = Path(tempfile.mkdtemp(prefix="kos-bench-queue-"))
    bench = Bench(args.home, dsn, root, args.heartbeat, args.stalled_after)
    print(f"bench_queue: {args.jobs} runs per round, real corpus copy of {args.home}, load {load()}")
    try:
        run(bench, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(bench: Bench, args: argparse.Namespace) -> None:
    questions = (QUESTIONS * (args.jobs // len(QUESTIONS) + 1))[: args.jobs]
    ensure = bench.python("import sys\nfrom knowledge_os.queue.app import ensure_schema\n"
                          "from knowledge_os.settings import Settings\nensure_schema(Settings())\nprint('1')")
    assert ensure == 1
    if "direct" in args.parts:
        direct(bench, questions)
    if "throughput" in args.parts:
        throughput(bench, args, questions)
    if "idle" in args.parts:
        idle(bench, args, questions)
    if "recovery" in args.parts:
        recovery(bench)


def direct(bench: Bench, questions: list[str]) -> None:
    direct = bench.python(DIRECT, orjson.dumps(questions).decode(), SMART, name="direct")
    d_wall = [r["wall_s"] for r in direct]
    d_cpu = [r["cpu_s"] for r in direct]
    d_lat = [r["latency_s"] for r in direct]
    print(f"\n1. direct run, one process: wall p50 {statistics.median(d_wall):.2f} s (run latency p50 "
          f"{statistics.median(d_lat):.2f} s), CPU {statistics.mean(d_cpu):.2f} s/run, "
          f"{len(direct) / sum(d_wall):.3f} runs/s (load {load()})")



def throughput(bench: Bench, args: argparse.Namespace, questions: list[str]) -> None:
    print("\n2. throughput (concurrency 1 per worker)")
    print(f"{'workers':>7} {'runs/s':>7} {'x 1 worker':>10} {'CPU s/run':>9} {'wait p50':>8} {'wait p95':>8} "
          f"{'job p50':>7} {'peak RSS MB':>11} {'load':>5}")
    base = None
    for count in args.workers:
        procs = bench.workers(count, f"t{count}")
        try:
            bench.wait(bench.enqueue(bench.threads(count, [SMART] * count)))  # warm-up: one per worker
            before = sum(cpu_s(p.pid) for p in procs)
            ids = bench.enqueue(bench.threads(args.jobs, questions))
            bench.wait(ids)
            used = sum(cpu_s(p.pid) for p in procs) - before
            rss = max(peak_rss_mb(p.pid) for p in procs)  # the largest worker's (seed 004: < 1 GB)
        finally:
            bench.stop(procs)
        ev = bench.events(ids)
        first = min(e["deferred"][0] for e in ev.values())
        last = max(e["succeeded"][-1] for e in ev.values())
        rate = len(ids) / (last - first)
        base = base or rate
        waits = [e["started"][0] - e["deferred"][0] for e in ev.values()]
        jobs = [e["succeeded"][-1] - e["started"][-1] for e in ev.values()]
        print(f"{count:>7} {rate:>7.3f} {rate / base:>10.2f} {used / len(ids):>9.2f} {pct(waits, .5):>8.2f} "
              f"{pct(waits, .95):>8.2f} {statistics.median(jobs):>7.2f} {rss:>11.0f} {load():>5}")



def idle(bench: Bench, args: argparse.Namespace, questions: list[str]) -> None:
    procs = bench.workers(1, "idle")
    try:
        bench.wait(bench.enqueue(bench.threads(1, [SMART])))  # warm-up
        ids, threads = [], []
        for k in range(args.idle):
            runs = bench.threads(1, [questions[k % len(questions)]])
            threads += [t for t, _ in runs]
            ids += bench.enqueue(runs)
            bench.wait(ids[-1:])
    finally:
        bench.stop(procs)
    ev = bench.events(ids)
    latency = bench.python(RESULT, orjson.dumps(threads).decode())
    waits = [ev[i]["started"][0] - ev[i]["deferred"][0] for i in ids]
    jobs = [ev[i]["succeeded"][-1] - ev[i]["started"][-1] for i in ids]
    extra = [j - r for j, r in zip(jobs, latency, strict=True)]
    print(f"\n3. idle worker, {len(ids)} jobs one at a time: enqueue -> start p50 {pct(waits, .5) * 1000:.0f} ms, "
          f"p95 {pct(waits, .95) * 1000:.0f} ms; job - run latency p50 {pct(extra, .5) * 1000:.0f} ms, "
          f"p95 {pct(extra, .95) * 1000:.0f} ms (run latency p50 {statistics.median(latency):.2f} s; load {load()})")



def recovery(bench: Bench) -> None:
    print(f"\n4. recovery (heartbeat {bench.heartbeat_s} s, stalled after {bench.stalled_after_s} s)")
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        for k in range(2):  # one at a time, to know which Procrastinate worker id is which process
            [proc] = bench.workers(1, f"r{k}", already=len(procs))
            procs[bench.query("SELECT max(id) FROM procrastinate_workers")[0][0]] = proc
        bench.wait(bench.enqueue(bench.threads(2, [SMART] * 2)))  # warm-up
        [job] = bench.enqueue(bench.threads(1, [SMART]))
        while True:
            status, holder = bench.query("SELECT status::text, worker_id FROM procrastinate_jobs WHERE id = %s", job)[0]
            if status != "todo":
                break
            time.sleep(0.01)
        if status != "doing":
            print(f"   the job was {status} before the kill: no recovery to measure")
            return
        procs[holder].kill()
        killed = time.time()
        procs[holder].wait(timeout=60)
        bench.wait([job])
    finally:
        bench.stop(list(procs.values()))
    ev = bench.events([job])[job]
    print(f"   killed -> started again on the other worker {ev['started'][-1] - killed:.2f} s, -> succeeded "
          f"{ev['succeeded'][-1] - killed:.2f} s; the resumed attempt took "
          f"{ev['succeeded'][-1] - ev['started'][-1]:.2f} s, the killed one ran {killed - ev['started'][0]:.2f} s "
          f"(load {load()})")

if __name__ == "__main__":
    main()
