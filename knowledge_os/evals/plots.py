"""PNG plots of a run (matplotlib, Agg backend): reliability diagrams of the router's
confidence and of ``quality.score``, and latency histograms per path."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from knowledge_os.evals.metrics.kpi import SEED_TARGETS
from knowledge_os.evals.runner import SuiteRun

logger = logging.getLogger(__name__)

FAST_P95_TARGET_S = SEED_TARGETS["kpi.fast_latency_p95_s"][1]

__all__ = ["write_plots"]


def write_plots(runs: Sequence[SuiteRun], report: dict[str, Any], run_dir: Path) -> list[Path]:
    """``<suite>-reliability.png``, ``<suite>-quality-reliability.png`` and
    ``<suite>-latency.png`` for the suites whose metrics include them; returns the files
    (none, with a warning, when matplotlib is not installed: ``pip install knowledge-os[eval]``)."""
    try:
        import matplotlib
    except ImportError:
        logger.warning("matplotlib is not installed: no plots (pip install 'knowledge-os[eval]')")
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    for run in runs:
        metrics = report["suites"][run.spec.name]["metrics"]
        for metric, stem, label in (("routing.reliability", "reliability", "router confidence"),
                                    ("answers.quality_reliability", "quality-reliability", "quality.score")):
            bins = metrics.get(metric)
            if bins and any(b["count"] for b in bins):
                written.append(_reliability(plt, bins, run_dir / f"{run.spec.name}-{stem}.png",
                                            f"{run.spec.name}: {label}"))
        if "kpi.latency_by_path" in metrics:
            by_path: dict[str, list[float]] = {}
            for r in run.records:
                if not r.get("error") and r.get("path") and "latency_s" in r:
                    by_path.setdefault(r["path"], []).append(r["latency_s"])
            if by_path:
                written.append(_latency(plt, by_path, run_dir / f"{run.spec.name}-latency.png", run.spec.name))
    return written


def _reliability(plt: Any, bins: list[dict[str, float]], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    width = bins[0]["hi"] - bins[0]["lo"]
    centers = [b["lo"] + width / 2 for b in bins if b["count"]]
    ax.bar(centers, [b["accuracy"] for b in bins if b["count"]], width=width * 0.9, edgecolor="black",
           label="accuracy")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for c, b in zip(centers, [b for b in bins if b["count"]], strict=True):
        ax.annotate(str(b["count"]), (c, b["accuracy"]), ha="center", va="bottom", fontsize=7)
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="confidence", ylabel="accuracy", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def _latency(plt: Any, by_path: dict[str, list[float]], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for name, xs in sorted(by_path.items()):
        ax.hist(xs, bins=min(20, max(5, len(xs))), alpha=0.6, label=f"{name} (n={len(xs)})")
    if "fast" in by_path:
        ax.axvline(FAST_P95_TARGET_S, color="red", linestyle="--", linewidth=1,
                   label=f"Fast Path p95 target ({FAST_P95_TARGET_S:g} s)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="latency (s)", ylabel="runs", title=f"{title}: latency per path")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
