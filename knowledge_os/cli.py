"""The ``kos`` command line (typer + rich). The library never configures logging; this does.

Exit codes: 0 success; 1 the command ran but something was skipped (e.g. one bad file
among good ones, each named on stderr); 2 bad input or configuration: nothing could be
done (an empty query, an unknown domain, a path that does not exist, a single corrupt
file, a malformed YAML), with one line on stderr naming the problem. ``kos eval --gate``
exits 1 when a threshold failed or a metric regressed, 130 when interrupted (resumable).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer
from rich.console import Console
from rich.markup import escape as rich_escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from knowledge_os.errors import DomainConfigError, InputError, KnowledgeOSError

app = typer.Typer(name="kos", help="Knowledge OS: agent-graph orchestration on LangGraph.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: Exception) -> None:
    # One line per problem (a domain file lists all of its problems), even when a
    # driver's message has several lines.
    problems = str(exc).splitlines() if isinstance(exc, DomainConfigError) else [str(exc)]
    for problem in problems:
        message = " ".join(problem.split())
        err.print(f"[bold red]error:[/] {rich_escape(message)}", markup=True, highlight=False)
    raise typer.Exit(2)


def _kos():  # noqa: ANN202 - imported lazily to keep `kos --help` fast
    from knowledge_os.api import KnowledgeOS

    return KnowledgeOS()


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO.")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def ingest(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders; default: /usr/share/doc changelogs.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    queue: Annotated[bool, typer.Option("--queue", help="Put the ingest on the queue for a `kos worker` (paths must exist on its host); print the job id.")] = False,
) -> None:
    """Ingest Debian changelogs, text/Markdown/PDF folders or JSONL posts."""
    if queue:
        _enqueue_ingest(paths, json_out)
        return
    try:
        kos = _kos()
        with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, disable=json_out or not err.is_terminal) as progress:
            task = progress.add_task("files", total=None)

            def on_stage(stage: str, report: Any) -> None:
                # scripts/main_job.sh waits for this line; an ingest that read nothing (a bad
                # path) has nothing to answer from, and its one line is the error
                if stage == "text" and report.documents:
                    progress.update(task, completed=0, total=None)
                    err.print(f"ready: documents, full text and graph written after {report.seconds_to_text:.1f} s; "
                              f"answers are possible now (marked until the vectors are in); "
                              f"embedding {report.new + report.updated} documents", highlight=False)

            report = kos.ingest(paths or None, on_stage=on_stage,
                                on_progress=lambda done, total: progress.update(task, completed=done, total=total))
        kos.close()
    except KnowledgeOSError as exc:
        _fail(exc)
    data = report.as_dict()
    if json_out:
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
    else:
        out.print(
            f"files {data['files']} (failed {data['files_failed']}), documents {data['documents']}: "
            f"new {data['new']}, updated {data['updated']}, unchanged {data['unchanged']}, "
            f"removed {data['removed']}; "
            f"graph +{data['graph_nodes']} nodes, +{data['graph_edges']} edges; "
            f"{data['seconds']} s ({data['entries_per_s']} entries/s; "
            f"answerable after {data['seconds_to_text']} s, {data['embedded']} embedded)", highlight=False)
    for problem in report.problems:
        err.print(f"skipped: {problem}", highlight=False, markup=False)
    if report.problems and report.files_failed == report.files:
        raise typer.Exit(2)  # nothing could be ingested: bad input
    if report.problems:
        raise typer.Exit(1)  # the good files are in; the named ones were skipped


def _enqueue_ingest(paths: list[Path] | None, json_out: bool) -> None:
    from knowledge_os.settings import Settings

    try:
        from knowledge_os.queue.app import enqueue_ingest
    except ImportError as exc:
        _fail(KnowledgeOSError(f"kos ingest --queue needs the 'production' extra (procrastinate): {exc}"))
    for p in paths or ():
        if not p.exists():
            _fail(InputError(f"{p}: no such file or folder"))
    try:
        queued = enqueue_ingest(Settings(), paths)
    except KnowledgeOSError as exc:
        _fail(exc)
    if json_out:
        sys.stdout.write(orjson.dumps({"job_id": queued.job_id, "paths": list(queued.paths)}).decode() + "\n")
    else:
        out.print(f"queued: ingest job {queued.job_id} of {', '.join(queued.paths) or 'the default corpus'}",
                  highlight=False, markup=False)


@app.command()
def run(
    question: Annotated[Optional[str], typer.Argument(help="The question. Omit with --thread to inspect a thread.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
    thread: Annotated[Optional[str], typer.Option("--thread", help="Continue or inspect this thread id.")] = None,
    domain: Annotated[Optional[str], typer.Option("--domain", help="Force a domain (skip routing).")] = None,
    path: Annotated[Optional[str], typer.Option("--path", help="Force the fast or smart path.")] = None,
    persona: Annotated[Optional[str], typer.Option("--persona", help="Who the answer is for: a profile name (kos persona list) or free text matched to the nearest profile.")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Today's date for 'since March' (YYYY-MM-DD).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Skip the answer cache.")] = False,
    no_loops: Annotated[bool, typer.Option("--no-loops", help="First draft is final (no correct, no replan).")] = False,
    qos: Annotated[Optional[str], typer.Option("--qos", help="QoS level: interactive, standard or thorough.")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Put the run on the queue for a `kos worker`; print its ids.")] = False,
) -> None:
    """Answer a question with citations."""
    if queue:
        if question is None:
            raise typer.BadParameter("--queue needs a QUESTION")
        try:
            kos = _kos()
            try:
                queued = kos.enqueue(question, thread_id=thread, domain=domain, path=path, persona=persona,
                                     as_of=as_of, use_cache=not no_cache, loops=not no_loops, qos=qos)
            finally:
                kos.close()
        except KnowledgeOSError as exc:
            _fail(exc)
        if json_out:
            sys.stdout.write(orjson.dumps({"job_id": queued.job_id, "thread_id": queued.thread_id}).decode() + "\n")
        else:
            out.print(f"queued: job {queued.job_id}, thread {queued.thread_id} "
                      f"(answer: kos run --thread {queued.thread_id})", highlight=False, markup=False)
        return
    try:
        from knowledge_os.qos import check_qos

        check_qos(qos)  # before any store or event loop is opened
        kos = _kos()
        if question is None:
            if thread is None:
                raise typer.BadParameter("give a QUESTION, or --thread ID to inspect a thread")
            result = kos.get_thread(thread)
            if result is None:
                from knowledge_os.errors import InputError

                raise InputError(f"thread {thread!r} has no finished run")
        else:
            result = kos.run(question, thread_id=thread, domain=domain, path=path, persona=persona,
                             as_of=as_of, use_cache=not no_cache, loops=not no_loops, qos=qos)
        kos.close()
    except KnowledgeOSError as exc:
        _fail(exc)
    if json_out:
        sys.stdout.write(orjson.dumps(result.model_dump()).decode() + "\n")
        return
    r = result
    out.print(r.answer, highlight=False, markup=False)
    out.print()
    out.print(f"route: {r.route.domain} ({r.route.method}, confidence {r.route.confidence:.2f})  "
              f"path: {r.path}  quality: {r.quality.score:.2f}{'' if r.quality.passed else ' (below threshold)'}  "
              f"summary: {'data only' if r.data_only else r.answer_mode}  "
              f"LLM calls: {r.usage.llm_calls}  {r.usage.latency_s:.2f} s  thread: {r.thread_id}",
              highlight=False, markup=False)
    out.print("citations:", highlight=False)
    for n, c in enumerate(r.citations, start=1):
        md = c.metadata
        extra = " ".join(f"{k}={md[k]}" for k in ("package", "version", "date") if md.get(k))
        out.print(f"  [{n}] {c.id}  {extra}  score={c.score:.4f}", highlight=False, markup=False)


@app.command()
def resume(
    thread: Annotated[str, typer.Argument(help="The thread whose interrupted run to finish.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
) -> None:
    """Finish an interrupted run from its last checkpoint (completed nodes are not repeated)."""
    try:
        kos = _kos()
        result = kos.resume(thread)
        kos.close()
    except KnowledgeOSError as exc:
        _fail(exc)
    if json_out:
        sys.stdout.write(orjson.dumps(result.model_dump()).decode() + "\n")
    else:
        out.print(result.answer, highlight=False, markup=False)


@app.command()
def worker(
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", min=1, help="Jobs at once; default queue.concurrency.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Worker name (Procrastinate's tables, logs).")] = None,
    burst: Annotated[bool, typer.Option("--burst", help="Exit when no job is due (instead of waiting for more).")] = False,
) -> None:
    """Run queued runs (Procrastinate jobs on postgres.dsn) until SIGINT/SIGTERM."""
    import asyncio

    from knowledge_os.settings import Settings

    try:
        from knowledge_os.queue.app import run_worker
    except ImportError as exc:
        _fail(KnowledgeOSError(f"kos worker needs the 'production' extra (procrastinate): {exc}"))
    try:
        asyncio.run(run_worker(Settings(), concurrency=concurrency, name=name, wait=not burst))
    except KnowledgeOSError as exc:
        _fail(exc)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option("--host", help="Interface to bind; default server.host (127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="TCP port; default server.port (8000).")] = None,
) -> None:
    """Serve the HTTP API (runs, threads, SSE, /healthz, /readyz, /metrics; docs at /docs)."""
    try:
        from knowledge_os.server import serve as serve_http
    except ImportError as exc:
        _fail(KnowledgeOSError(f"kos serve needs the 'serve' extra (pip install 'knowledge-os[serve]'): {exc}"))
    try:
        serve_http(host, port)
    except KnowledgeOSError as exc:
        _fail(exc)


@app.command()
def graph() -> None:
    """Print the agent graph as Mermaid (offline)."""
    from knowledge_os.graph.builder import graph as compiled

    sys.stdout.write(compiled.get_graph().draw_mermaid())


@app.command("eval")
def eval_(
    suites: Annotated[Optional[list[str]], typer.Argument(help="Suite names, 'quick', 'full' or YAML paths; default quick.")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Run folder; default eval-runs/<UTC time>.")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue this run folder (done cases are kept).")] = None,
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="Compare with this report.json.")] = None,
    gate: Annotated[bool, typer.Option("--gate", help="Exit 1 on a failed threshold or a regression.")] = False,
    save_baseline: Annotated[Optional[Path], typer.Option("--save-baseline", help="Also write report.json here (a new baseline).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print report.json to stdout.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the shipped suites and metrics.")] = False,
) -> None:
    """Run offline eval suites; write report.md, report.json and plots to the run folder."""
    from datetime import UTC, datetime

    from knowledge_os import evals

    if list_:
        out.print("suites: " + ", ".join(evals.shipped_suites()), highlight=False)
        out.print("metrics: " + ", ".join(sorted(evals.METRICS)), highlight=False)
        return
    folder = resume or run_dir or Path("eval-runs") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[last]}"), console=err, disable=not err.is_terminal) as progress:
        tasks: dict[str, int] = {}

        def on_progress(suite: str, done: int, total: int, rec: dict | None) -> None:
            if suite not in tasks:
                tasks[suite] = progress.add_task(suite, total=total, last="")
            last = "" if rec is None else (f"{rec['id']}: error" if rec.get("error")
                                           else f"{rec['id']}: {rec.get('latency_s', 0):.1f} s")
            progress.update(tasks[suite], completed=done, last=last)

        try:
            result = evals.run_suites(suites or ([] if resume else ["quick"]), run_dir=folder,
                                      resume=resume is not None, baseline=baseline, on_progress=on_progress)
        except KnowledgeOSError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            progress.stop()
            err.print(f"interrupted; resume with: kos eval --resume {folder}", highlight=False, markup=False)
            raise typer.Exit(130) from None
    report = result.report
    if json_out:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
    else:
        for name, s in report["suites"].items():
            figures = ", ".join(f"{k}={v}" for k, v in s["metrics"].items() if isinstance(v, (int, float)))
            out.print(f"{name} ({s['cases']} cases, {s['errors']} errors, {s['seconds']} s): {figures}",
                      highlight=False, markup=False)
        out.print(f"report: {result.run_dir / 'report.md'}", highlight=False, markup=False)
    if save_baseline is not None:
        save_baseline.parent.mkdir(parents=True, exist_ok=True)
        save_baseline.write_bytes((result.run_dir / "report.json").read_bytes())
        err.print(f"baseline written: {save_baseline}", highlight=False, markup=False)
    for line in report["gate"]["failures"] + report["gate"]["regressions"]:
        err.print(f"gate: {line}", highlight=False, markup=False)
    for line in report["gate"].get("notes", []):
        err.print(f"note: {line}", highlight=False, markup=False)
    if gate and not result.passed:
        raise typer.Exit(1)


def _mount_ops() -> None:
    from knowledge_os._cli_ops import db_app, dlq_app, memory_app, persona_app

    app.add_typer(db_app, name="db", help="Database schema (PostgreSQL / SQLite).")
    app.add_typer(memory_app, name="memory", help="Episodic memory.")
    app.add_typer(dlq_app, name="dlq", help="Dead-letter queue.")
    app.add_typer(persona_app, name="persona", help="Persona profiles: list, build the index, resolve.")


_mount_ops()


def main() -> None:
    """Entry point of the ``kos`` command."""
    app()


if __name__ == "__main__":
    main()
