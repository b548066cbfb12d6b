"""Debian's Prometheus server scrapes a real `kos serve` (real embedded models) every
second and loads configs/alerts.yml; PromQL through its HTTP API sees the runs' counts,
histograms, cache hit rates and the rules' expressions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from knowledge_os.settings import project_root
from tests.conftest import require_binary
from tests.integration.test_serve_process import free_port, start_server

pytestmark = pytest.mark.integration

N = 3
QUESTION = "What changed in openssl since March?"


def prometheus_binary() -> str:
    return require_binary("prometheus", "Debian package prometheus; scripts/setup.sh installs it")


def query(prom: str, expr: str) -> list[dict]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]


def scalar(prom: str, expr: str) -> float | None:
    result = query(prom, expr)
    return float(result[0]["value"][1]) if result else None


def wait_ready(prom: str, timeout_s: float = 60) -> bool:
    """Prometheus answers 503 on its API until its TSDB is open: wait for ``/-/ready``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{prom}/-/ready", timeout=5).status_code == 200:
                return True
        except httpx.TransportError:  # not listening yet
            pass
        time.sleep(0.5)
    return False


def wait_for(prom: str, expr: str, want: float, timeout_s: float = 60) -> float | None:
    deadline, got = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            got = scalar(prom, expr)
        except httpx.TransportError:  # Prometheus still starting
            got = None
        if got == want:
            return got
        time.sleep(0.5)
    return got


def test_prometheus_scrapes_kos_serve(tmp_path: Path):
    from tests.conftest import CHANGELOGS, write_changelog

    binary = prometheus_binary()
    doc = tmp_path / "doc"
    for package, entries in CHANGELOGS.items():
        write_changelog(doc, package, entries)
    env = {**os.environ, "KOS_HOME": str(tmp_path / ".kos")}
    subprocess.run([sys.executable, "-m", "knowledge_os.cli", "ingest", str(doc)], env=env, check=True,
                   capture_output=True, timeout=600)
    kos_port, prom_port = free_port(), free_port()
    server = start_server(env, kos_port, tmp_path / "serve.log")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{project_root() / 'configs' / 'alerts.yml'}']\n"
        "scrape_configs:\n"
        f"  - job_name: kos\n    static_configs: [{{targets: ['127.0.0.1:{kos_port}']}}]\n")
    with (tmp_path / "prometheus.log").open("wb") as log:
        prom_proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                      f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log,
                                     stderr=subprocess.STDOUT)
    prom = f"http://127.0.0.1:{prom_port}"
    try:
        assert wait_ready(prom), (tmp_path / "prometheus.log").read_text()[-2000:]
        assert wait_for(prom, 'up{job="kos"}', 1.0) == 1.0, (tmp_path / "prometheus.log").read_text()[-2000:]
        kos = f"http://127.0.0.1:{kos_port}"
        for _ in range(N):  # the first one runs the graph, the next ones are exact answer-cache hits
            r = httpx.post(f"{kos}/v1/runs", json={"query": QUESTION, "as_of": "2026-11-22"}, timeout=300)
            assert r.status_code == 200, r.text
        runs = "sum(kos_fast_path_latency_seconds_count) + sum(kos_smart_path_latency_seconds_count)"
        assert wait_for(prom, runs, N) == N
        assert scalar(prom, "sum(kos_qos_level_requests_total)") == N
        assert scalar(prom, 'sum(kos_cache_hits_total{cache="answer_exact"})') == N - 1
        assert scalar(prom, 'sum(kos_cache_misses_total{cache="answer_exact"})') == 1
        # histograms: the +Inf bucket counts every run of its path; the p95 is a number of seconds
        assert scalar(prom, 'sum(kos_llm_calls_per_request_bucket{le="+Inf"})') == N
        p95 = scalar(prom, "histogram_quantile(0.95, sum by (le) (kos_fast_path_latency_seconds_bucket)) "
                           "or histogram_quantile(0.95, sum by (le) (kos_smart_path_latency_seconds_bucket))")
        assert p95 is not None and 0 < p95 < 120
        # the answer-cache rule's ratio over the whole test: (N-1) hits of N exact lookups
        hit_rate = scalar(prom, 'sum(kos_cache_hits_total{cache=~"answer_exact|answer_near"}) / '
                                'sum(kos_cache_misses_total{cache="answer_exact"} + kos_cache_hits_total{cache="answer_exact"})')
        assert hit_rate == pytest.approx((N - 1) / N)
        # every rule of configs/alerts.yml is loaded and evaluates without error
        groups = httpx.get(f"{prom}/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = [rule for g in groups for rule in g["rules"]]
        assert len(loaded) >= 14 and all(rule["health"] == "ok" for rule in loaded), loaded
        assert {"FastPathP95LatencyHigh", "PerformanceCacheHitRateLow"} <= {rule["name"] for rule in loaded}
    finally:
        prom_proc.terminate()
        prom_proc.wait(timeout=30)
        server.terminate()
        server.wait(timeout=60)

