"""Offline eval suites: ``kos eval`` and :func:`run_suites`; their ground truth is
:mod:`knowledge_os.evals.truth` (changelogs parsed independently of the pipeline).


Suites are YAML files (:mod:`knowledge_os.evals.spec`), shipped in
``knowledge_os/evals/suites`` or written by a user. A run writes a folder with
``results.jsonl`` (one record per case, for resuming), ``report.json``, ``report.md`` and
PNG plots. Example::

    from knowledge_os.evals import run_suites

    run = run_suites(["quick"], baseline="knowledge_os/evals/baselines/quick.json")
    print(run.report["suites"]["quick-routing"]["metrics"], run.passed)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from knowledge_os.api import KnowledgeOS
from knowledge_os.errors import InputError
from knowledge_os.evals.metrics import METRICS
from knowledge_os.evals.report import build_report, load_report, write_report
from knowledge_os.evals.runner import (
    ProgressFn,
    SuiteRun,
    Workspace,
    find_suite,
    read_results,
    run_suite_cases,
    run_sync,
    shipped_suites,
)
from knowledge_os.evals.spec import SuiteSpec, load_suite_file
from knowledge_os.settings import Settings

__all__ = ["METRICS", "EvalRun", "SuiteSpec", "arun_suites", "load_suite_file", "run_suites", "shipped_suites"]

RUN_FILE = "run.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalRun:
    """The outcome of :func:`run_suites`.

    Attributes:
        run_dir: The run folder (report.json, report.md, PNGs, results.jsonl).
        report: The ``kos.eval-report/1`` dict (see :mod:`knowledge_os.evals.report`).
        suites: Per suite its spec and records.
    """

    run_dir: Path
    report: dict[str, Any]
    suites: list[SuiteRun]

    @property
    def passed(self) -> bool:
        """No threshold failed and no metric regressed against the baseline."""
        return bool(self.report["gate"]["ok"])


def _expand(names: Sequence[str | Path]) -> list[Path]:
    """Suite names or paths to YAML files. ``quick`` and ``full`` are groups: every shipped
    suite whose name starts with ``quick-`` / ``full-``, in name order."""
    out: list[Path] = []
    for n in names:
        if str(n) in ("quick", "full"):
            group = [s for s in shipped_suites() if s.startswith(f"{n}-")]
            out += [find_suite(s) for s in group]
        else:
            out.append(find_suite(n))
    return list(dict.fromkeys(out))


async def arun_suites(
    suites: Sequence[str | Path] = ("quick",), *, run_dir: Path | str | None = None, resume: bool = False,
    baseline: Path | str | None = None, on_progress: ProgressFn | None = None,
    overrides: dict[str, Any] | None = None, make_kos: Callable[[Settings], KnowledgeOS] = KnowledgeOS,
) -> EvalRun:
    """Run suites and write the report (async). See :func:`run_suites`."""
    if resume:
        if run_dir is None or not (Path(run_dir) / RUN_FILE).is_file():
            raise InputError(f"--resume needs a run folder with {RUN_FILE}; got {run_dir}")
        saved = orjson.loads((Path(run_dir) / RUN_FILE).read_bytes())
        suites = suites or saved["suites"]
    run_path = Path(run_dir) if run_dir else Path("eval-runs") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    files = _expand(suites)
    base = load_report(Path(baseline)) if baseline else None
    for f in files:
        load_suite_file(f)  # every suite is validated before the first case runs
    done = read_results(run_path)
    if done and not resume:
        raise InputError(f"{run_path} already has results; use --resume {run_path} or another folder")
    run_path.mkdir(parents=True, exist_ok=True)
    (run_path / RUN_FILE).write_bytes(orjson.dumps({"suites": [str(f) for f in files]}, option=orjson.OPT_INDENT_2))
    with Workspace(make_kos) as workspace:
        runs = [await run_suite_cases(f, workspace=workspace, run_dir=run_path, done=done,
                                      on_progress=on_progress, overrides=overrides)
                for f in files]
    report = build_report(runs, run_dir=run_path, baseline=base)
    write_report(report, runs, run_path)
    return EvalRun(run_dir=run_path, report=report, suites=runs)


def run_suites(
    suites: Sequence[str | Path] = ("quick",), *, run_dir: Path | str | None = None, resume: bool = False,
    baseline: Path | str | None = None, on_progress: ProgressFn | None = None,
    overrides: dict[str, Any] | None = None, make_kos: Callable[[Settings], KnowledgeOS] = KnowledgeOS,
) -> EvalRun:
    """Run eval suites and write the report into the run folder.

    Args:
        suites: Suite names (shipped, or the groups ``quick`` / ``full``) or YAML paths.
            With ``resume`` and no suites, those of the resumed run.
        run_dir: The run folder; default ``eval-runs/<UTC timestamp>``.
        resume: Continue ``run_dir``: cases already in its results.jsonl are not rerun.
        baseline: A saved report.json to compare with (regressions beyond each metric's
            tolerance fail the gate).
        on_progress: ``on_progress(suite, done, total, record)`` after each case.
        overrides: Settings overrides for every suite (a suite's ``settings.kos`` wins).
        make_kos: Builds the KnowledgeOS of a suite from its settings (default the real one).

    Returns:
        The :class:`EvalRun`; ``passed`` is the gate.

    Raises:
        EvalConfigError: a suite YAML or case file is invalid (names file and key path).
        UnknownNameError: an unknown suite or builder.
        InputError: a bad baseline, or ``run_dir`` already holds results without ``resume``.
        KeyboardInterrupt: the records so far are in ``run_dir``; resume with ``resume=True``.
    """
    return run_sync(arun_suites(suites, run_dir=run_dir, resume=resume, baseline=baseline,
                                on_progress=on_progress, overrides=overrides, make_kos=make_kos))
