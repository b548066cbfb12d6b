"""Build the Grafana dashboard of the seed's 8 panels (and the dead-letter queue's) as code
and write it as JSON.

Usage: ``python scripts/build_dashboard.py [OUT]`` (default ``configs/grafana_dashboard.json``;
needs ``grafana-foundation-sdk``, in the ``dev`` extra). The panels are those of the seed
(``shared/seeds/002``, "Grafana Dashboard"), on the metrics of
``knowledge_os/observability/metrics.py``; the targets are drawn as threshold lines.
``tests/unit/test_dashboard.py`` checks that the file is what this script writes and
that every query names a metric the service exports. The data source is a Prometheus
data source with uid ``prometheus`` (set ``DATASOURCE_UID`` to change it).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.builders.dashboard import Dashboard, ThresholdsConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.timeseries import Panel
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphTresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos, Threshold, ThresholdsMode

OUT = Path(__file__).resolve().parent.parent / "configs" / "grafana_dashboard.json"
RATE = "$__rate_interval"


def p95(metric: str, by: str = "le") -> str:
    return f"histogram_quantile(0.95, sum by ({by}) (rate({metric}_bucket[{RATE}])))"


# (title, unit, target line or None, [(expr, legend)])
PANELS: list[tuple[str, str, float | None, list[tuple[str, str]]]] = [
    ("Fast Path Latency (P95 Target: < 5s)", "s", 5,
     [(p95("kos_fast_path_latency_seconds"), "p95"),
      ("histogram_quantile(0.5, sum by (le) (rate(kos_fast_path_latency_seconds_bucket[$__rate_interval])))", "p50")]),
    ("LLM Calls per Request (Target: < 3)", "short", 3,
     [(f"sum by (path) (rate(kos_llm_calls_per_request_sum[{RATE}])) / "
       f"sum by (path) (rate(kos_llm_calls_per_request_count[{RATE}]))", "mean {{path}}")]),
    ("Tokens per Request (P95 Target: < 8k)", "short", 8000,
     [(p95("kos_tokens_per_request", "le, path"), "p95 {{path}}")]),
    ("Agent Steps per Request (P95 Target: ≤ 4)", "short", 4,
     [(p95("kos_agent_steps_per_request", "le, path"), "p95 {{path}}")]),
    ("Smart Path Latency", "s", None,
     [(p95("kos_smart_path_latency_seconds"), "p95"),
      ("histogram_quantile(0.5, sum by (le) (rate(kos_smart_path_latency_seconds_bucket[$__rate_interval])))", "p50")]),
    ("Request Budget Exceeded", "short", None,
     [(f"sum by (budget) (increase(kos_request_budget_exceeded_total[{RATE}]))", "{{budget}}")]),
    ("QoS Level Distribution", "reqps", None,
     [(f"sum by (qos) (rate(kos_qos_level_requests_total[{RATE}]))", "{{qos}}")]),
    ("Cache Hit Rate", "percentunit", None,
     [(f"sum by (cache) (rate(kos_cache_hits_total[{RATE}])) / (sum by (cache) (rate(kos_cache_hits_total[{RATE}])) "
       f"+ sum by (cache) (rate(kos_cache_misses_total[{RATE}])))", "{{cache}}")]),
    # the project's own, after the seed's 8: its dead-letter queue monitoring (seed section 7)
    ("Dead-Letter Queue", "short", None,
     [("max by (status) (kos_dead_letters)", "on the queue: {{status}}"),
      (f"sum (increase(kos_dead_letters_enqueued_total[{RATE}]))", "enqueued"),
      (f"sum (increase(kos_dead_letters_reprocessed_total[{RATE}]))", "reprocessed"),
      (f"sum (increase(kos_dead_letters_permanent_failures_total[{RATE}]))", "permanent failures")]),
]


def build(datasource_uid: str = "prometheus") -> Dashboard:
    """The dashboard: the seed's 8 time-series panels, two per row, 12 x 8 grid units
    each, then the dead-letter queue across the last row."""
    source = DataSourceRef(type_val="prometheus", uid=datasource_uid)
    dashboard = (Dashboard("Knowledge OS - Fast Path & Smart Path").uid("kos-performance")
                 .tags(["knowledge-os", "generated"]).refresh("30s").time("now-1h", "now"))
    for n, (title, unit, target, queries) in enumerate(PANELS):
        panel = (Panel().title(title).unit(unit).datasource(source)
                 .grid_pos(GridPos(h=8, w=24 if n == len(PANELS) - 1 and n % 2 == 0 else 12,
                                   x=12 * (n % 2), y=8 * (n // 2))))
        for ref, (expr, legend) in zip("ABCD", queries):
            panel = panel.with_target(Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(source))
        if target is not None:
            panel = (panel.thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
                        [Threshold(value=None, color="green"), Threshold(value=target, color="red")]))
                     .thresholds_style(GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.LINE)))
        dashboard = dashboard.with_panel(panel)
    return dashboard


def render(datasource_uid: str = "prometheus") -> str:
    """The dashboard JSON text (sorted keys, 2-space indent, trailing newline)."""
    data = json.loads(JSONEncoder(sort_keys=True).encode(build(datasource_uid).build()))
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.write_text(render(os.environ.get("DATASOURCE_UID", "prometheus")), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
