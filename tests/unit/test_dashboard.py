"""configs/grafana_dashboard.json: the seed's 8 panels and the dead-letter queue's, every query on a metric the
service exports, and the file is what scripts/build_dashboard.py writes."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from knowledge_os.observability.metrics import Metrics
from knowledge_os.settings import project_root

ROOT = project_root()
SEED_PANELS = ["Fast Path Latency", "LLM Calls per Request", "Tokens per Request", "Agent Steps per Request",
               "Smart Path Latency", "Request Budget Exceeded", "QoS Level Distribution", "Cache Hit Rate"]


def dashboard() -> dict:
    return json.loads((ROOT / "configs" / "grafana_dashboard.json").read_text(encoding="utf-8"))


def exported_names() -> set[str]:
    metrics = Metrics(cache_stats=lambda: {"router": (1, 1)})
    metrics.observe_run(domain="trend", path="fast", route_method="heuristic", status="ok", latency_s=1.0,
                        usage={"llm_calls": 1}, limits={}, quality=0.9, timings_ms={}, cache_outcome="miss")
    return {s.name for family in metrics.registry.collect() for s in family.samples}


def test_the_seed_panels_in_order_then_the_dead_letter_queue():
    titles = [p["title"] for p in dashboard()["panels"]]
    assert len(titles) == 9
    for title, seed in zip(titles[:8], SEED_PANELS, strict=True):
        assert title.startswith(seed)
    assert titles[8] == "Dead-Letter Queue"


def test_every_query_names_an_exported_metric():
    exported = exported_names()
    for panel in dashboard()["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\b(kos_[a-z_]+)\b", target["expr"]))
            assert names, target["expr"]
            assert names <= exported, (panel["title"], names - exported)


def test_targets_are_threshold_lines():
    panels = {p["title"]: p for p in dashboard()["panels"]}
    want = {"Fast Path Latency": 5, "LLM Calls per Request": 3, "Tokens per Request": 8000,
            "Agent Steps per Request": 4}
    for prefix, value in want.items():
        panel = next(p for t, p in panels.items() if t.startswith(prefix))
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[-1]["value"] == value and steps[-1]["color"] == "red"


@pytest.mark.skipif(importlib.util.find_spec("grafana_foundation_sdk") is None,
                    reason="grafana-foundation-sdk (dev extra) not installed")
def test_the_file_is_what_the_script_writes():
    spec = importlib.util.spec_from_file_location("build_dashboard", ROOT / "scripts" / "build_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (ROOT / "configs" / "grafana_dashboard.json").read_text(encoding="utf-8")
