"""`kos serve` under load: concurrent httpx clients, a steady-rate soak, answer-cache hits.

Starts ``kos serve`` as its own process on a free port of 127.0.0.1 (all traffic stays on
this machine) over an ingested ``KOS_HOME`` (``--home``; copy the integrator's real
corpus, two processes must not share one), with ``server.max_concurrent_runs`` = the
largest client count so that no request gets a 429. Then:

1. for N in ``--clients`` (default 1, 4, 16): N clients, each sending ``--requests``
   questions from QUESTIONS (client i starts at question i, so the first rounds miss the
   answer cache and later ones hit it): throughput (requests/s), p50/p95 latency, errors
   (any non-200; goal 0), the server's peak RSS (``VmHWM`` of /proc/PID/status) and the
   1-minute load average when the round ended (the machine is shared: read latency with it);
2. a soak: ``--soak-rate`` requests/s for ``--soak-s`` seconds (default 60; the issue
   asks for 600 once), RSS at its start and end;
3. answer-cache hits: one question asked ``--hits`` times after a warm-up run; p50/p95 of
   the client-side latency and of the server time (the ``Server-Timing`` header of
   ``kos serve``: arrival to response headers; goal < 20 ms).

    .venv/bin/python benchmarks/bench_serve.py --home .kos [--clients 1 4 16] [--requests 4]
        [--soak-s 60 --soak-rate 2] [--hits 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

QUESTIONS = [
    "What changed in openssl since March?",
    "Which upload fixed CVE-2024-6387?",
    "What changed in curl this year?",
    "Which kinds of fixes are rising this quarter?",
    "What changed in systemd recently?",
    "Top 5 maintainers by number of uploads",
    "What security fixes did libxml2 get?",
    "What changed in python3.11?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int, field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of a process, KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


async def one(client: httpx.AsyncClient, question: str) -> tuple[float, int]:
    lat, status, _ = await timed(client, question)
    return lat, status


async def timed(client: httpx.AsyncClient, question: str) -> tuple[float, int, float]:
    """(client-side seconds, status, server ms from ``Server-Timing: app;dur=MS``; NaN if absent)."""
    t0 = time.perf_counter()
    server_ms = float("nan")
    try:
        r = await client.post("/v1/runs", json={"query": question}, timeout=600)
        status = r.status_code
        header = r.headers.get("server-timing", "")
        if header.startswith("app;dur="):
            server_ms = float(header.removeprefix("app;dur="))
    except httpx.HTTPError:
        status = -1
    return time.perf_counter() - t0, status, server_ms


async def load(url: str, n: int, requests: int) -> dict:
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=n + 4)) as client:
        async def worker(i: int) -> list[tuple[float, int]]:
            return [await one(client, QUESTIONS[(i + k) % len(QUESTIONS)]) for k in range(requests)]

        t0 = time.perf_counter()
        results = [r for rs in await asyncio.gather(*(worker(i) for i in range(n))) for r in rs]
        wall = time.perf_counter() - t0
    latencies = [lat for lat, status in results if status == 200]
    return {"clients": n, "requests": len(results), "wall_s": wall, "rps": len(results) / wall,
            "p50_s": pct(latencies, 0.5), "p95_s": pct(latencies, 0.95),
            "errors": sum(1 for _, status in results if status != 200)}


async def soak(url: str, rate: float, seconds: float, pid: int) -> dict:
    rss_start = rss_kb(pid, "VmRSS")
    async with httpx.AsyncClient(base_url=url) as client:
        tasks, t0, k = [], time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            tasks.append(asyncio.create_task(one(client, QUESTIONS[k % len(QUESTIONS)])))
            k += 1
            await asyncio.sleep(max(0.0, t0 + k / rate - time.perf_counter()))
        results = await asyncio.gather(*tasks)
    return {"seconds": seconds, "rate": rate, "requests": len(results),
            "errors": sum(1 for _, s in results if s != 200),
            "p95_s": pct([lat for lat, s in results if s == 200], 0.95),
            "rss_start_mb": rss_start / 1024, "rss_end_mb": rss_kb(pid, "VmRSS") / 1024}


async def hits(url: str, n: int) -> dict:
    async with httpx.AsyncClient(base_url=url) as client:
        await one(client, QUESTIONS[0])  # warm-up: computes and stores the answer
        samples = [await timed(client, QUESTIONS[0]) for _ in range(n)]
    latencies = [lat for lat, _, _ in samples]
    server = [ms for _, _, ms in samples if ms == ms]
    return {"hits": n, "p50_ms": 1000 * pct(latencies, 0.5), "p95_ms": 1000 * pct(latencies, 0.95),
            "server_p50_ms": pct(server, 0.5), "server_p95_ms": pct(server, 0.95)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, required=True, help="An ingested KOS_HOME (a copy of your own).")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--requests", type=int, default=4, help="Requests per client.")
    p.add_argument("--soak-s", type=float, default=60.0)
    p.add_argument("--soak-rate", type=float, default=2.0, help="Requests per second during the soak.")
    p.add_argument("--hits", type=int, default=200)
    args = p.parse_args()

    port = free_port()
    env = {**os.environ, "KOS_HOME": str(args.home), "KOS_SERVER__MAX_CONCURRENT_RUNS": str(max(args.clients))}
    proc = subprocess.Popen([sys.executable, "-m", "knowledge_os.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        print(f"kos serve pid {proc.pid} on {url}; load average {os.getloadavg()[0]:.1f}; cores {os.cpu_count()}")
        print("clients  requests  wall_s   req/s   p50_s   p95_s  errors  peak_rss_mb  load1")
        for n in args.clients:
            r = asyncio.run(load(url, n, args.requests))
            print(f"{n:7d}  {r['requests']:8d}  {r['wall_s']:6.1f}  {r['rps']:6.2f}  {r['p50_s']:6.2f}  "
                  f"{r['p95_s']:6.2f}  {r['errors']:6d}  {rss_kb(proc.pid, 'VmHWM') / 1024:11.0f}  "
                  f"{os.getloadavg()[0]:5.1f}")
        if args.soak_s > 0:
            s = asyncio.run(soak(url, args.soak_rate, args.soak_s, proc.pid))
            print(f"soak {s['seconds']:.0f} s at {s['rate']} req/s: {s['requests']} requests, {s['errors']} errors, "
                  f"p95 {s['p95_s']:.2f} s, RSS {s['rss_start_mb']:.0f} MB -> {s['rss_end_mb']:.0f} MB; "
                  f"load average {os.getloadavg()[0]:.1f}")
        if args.hits > 0:
            h = asyncio.run(hits(url, args.hits))
            print(f"answer-cache hits through HTTP ({h['hits']}): client p50 {h['p50_ms']:.1f} ms, p95 "
                  f"{h['p95_ms']:.1f} ms; server (Server-Timing) p50 {h['server_p50_ms']:.1f} ms, p95 "
                  f"{h['server_p95_ms']:.1f} ms (goal < 20 ms server time); load average {os.getloadavg()[0]:.1f}")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
