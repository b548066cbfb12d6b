"""configs/alerts.yml: promtool accepts the rules and their unit tests (configs/alerts_test.yml)
pass; each of the seed's ten rules is there with a runbook and fires in at least one test."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from knowledge_os.settings import project_root
from tests.conftest import require_binary

CONFIGS = project_root() / "configs"
SEED_RULES = {
    "FastPathP95LatencyHigh": "warning", "FastPathP95LatencyCritical": "critical",
    "FastPathLLMCallsHigh": "warning", "FastPathTokensHigh": "warning", "FastPathAgentStepsHigh": "warning",
    "RequestBudgetLLMCallsExceeded": "warning", "RequestBudgetTokensExceeded": "warning",
    "RequestBudgetAgentStepsExceeded": "warning", "ContextRouterCacheHitRateLow": "warning",
    "PerformanceCacheHitRateLow": "warning",
}


def promtool() -> str:
    return require_binary("promtool", "Debian package prometheus; scripts/setup.sh installs it")


def rules() -> dict[str, dict]:
    groups = yaml.safe_load((CONFIGS / "alerts.yml").read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def test_the_seed_rules_are_there_with_severity_and_runbook():
    found = rules()
    for name, severity in SEED_RULES.items():
        assert name in found, name
        assert found[name]["labels"]["severity"] == severity
        assert found[name]["annotations"]["runbook"] and found[name]["annotations"]["summary"]


def test_each_seed_rule_fires_in_a_promtool_test():
    tests = yaml.safe_load((CONFIGS / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case.get("exp_alerts")}
    assert set(SEED_RULES) <= fired


def test_promtool_checks_the_rules():
    out = subprocess.run([promtool(), "check", "rules", str(CONFIGS / "alerts.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_rule_tests_pass():
    out = subprocess.run([promtool(), "test", "rules", str(CONFIGS / "alerts_test.yml")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_every_rule_of_the_file_fires_in_a_promtool_test():
    tests = yaml.safe_load((CONFIGS / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case.get("exp_alerts")}
    assert set(rules()) == fired
