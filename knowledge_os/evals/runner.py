"""Run eval suites: build each suite's corpus and cases, run every case, append one
record per case to ``results.jsonl`` in the run folder, compute the metrics.

A run folder can be resumed: cases whose key (``<suite>/<case id>/<settings hash>``) is
already in ``results.jsonl`` are not run again. Each suite gets a fresh
:class:`~knowledge_os.api.KnowledgeOS` (and, when it uses the answer cache, an empty
answer cache of its own), so its figures do not depend on the suites run before it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from langgraph.graph import END, START, StateGraph

from knowledge_os.api import KnowledgeOS, RunResult
from knowledge_os.cache.answers import AnswerCache
from knowledge_os.errors import ConfigError, EvalConfigError, KnowledgeOSError, UnknownNameError
from knowledge_os.evals import truth
from knowledge_os.evals.cases import PACKAGE_DIR, load_cases
from knowledge_os.evals.records import CaseRecord, TraceStep
from knowledge_os.evals.spec import CaseSpec, CorpusSpec, SuiteSpec, load_suite_file
from knowledge_os.evals.truth import qa
from knowledge_os.graph.state import Context, InputState, State
from knowledge_os.nodes.cache_lookup import cache_lookup
from knowledge_os.nodes.plan import executed_steps
from knowledge_os.nodes.route import route
from knowledge_os.settings import Settings

__all__ = ["RESULTS_FILE", "SuiteRun", "Workspace", "find_suite", "read_results", "run_suite_cases", "shipped_suites"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
CORPORA_FILE = "corpora.json"
ProgressFn = Callable[[str, int, int, CaseRecord | None], None]
"""``on_progress(suite, done, total, record)``: record None when a suite starts."""


def shipped_suites() -> list[str]:
    """Names of the suites shipped in ``knowledge_os/evals/suites``."""
    return sorted(p.stem for p in (PACKAGE_DIR / "suites").glob("*.yaml"))


def find_suite(name_or_path: str | Path) -> Path:
    """A suite YAML by path, or by name among the shipped suites.

    Raises:
        UnknownNameError: neither a file nor a shipped suite (lists the shipped ones).
    """
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise EvalConfigError(str(p), "", "suite file does not exist")
        return p
    shipped = PACKAGE_DIR / "suites" / f"{p.name}.yaml"
    if shipped.is_file():
        return shipped
    raise UnknownNameError("eval suite", str(name_or_path), shipped_suites())


def read_results(run_dir: Path) -> dict[str, CaseRecord]:
    """Records of a run folder by key (a torn last line from an interrupt is ignored)."""
    path = run_dir / RESULTS_FILE
    out: dict[str, CaseRecord] = {}
    if not path.is_file():
        return out
    for line in path.read_bytes().splitlines():
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            logger.warning("ignoring a torn line in %s", path)
            continue
        out[rec["key"]] = rec
    return out


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line left without its newline by an interrupt, so appends start clean."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


@dataclass(kw_only=True)
class SuiteRun:
    """One suite's outcome: its spec, where it came from, and its records in case order."""

    spec: SuiteSpec
    file: Path
    records: list[CaseRecord] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the cases (summed over resumed sessions)."""
    ingest_seconds: float = 0.0
    documents: int | None = None
    """Documents in the corpus slice (None: the configured KOS_HOME)."""
    corpus_source: str = "KOS_HOME"
    """What the documents are: changelogs of which packages, or which data set and its licence."""


class Workspace:
    """Temporary files of one run: corpus slices (ingested once per distinct slice and
    settings, shared by the suites that name it) and per-suite answer caches. Removed on exit.

    Args:
        make_kos: Builds a KnowledgeOS from settings (tests pass one with fake models).
    """

    def __init__(self, make_kos: Callable[[Settings], KnowledgeOS] = KnowledgeOS) -> None:
        self.make_kos = make_kos
        self._tmp = tempfile.TemporaryDirectory(prefix="kos-eval-")
        self.root = Path(self._tmp.name)
        self._corpora: dict[str, _Corpus] = {}

    def corpus(self, spec: CorpusSpec, overrides: dict[str, Any]) -> _Corpus:
        key = orjson.dumps([spec.model_dump(mode="json"), overrides], option=orjson.OPT_SORT_KEYS).decode()
        if key not in self._corpora:
            folder = self.root / f"corpus-{len(self._corpora)}"
            folder.mkdir()
            self._corpora[key] = _Corpus(spec, folder, overrides, self.make_kos)
        return self._corpora[key]

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()


class _Corpus:
    """A suite's documents: a slice ingested into a temporary KOS_HOME, or the configured one."""

    def __init__(self, spec: CorpusSpec, workdir: Path, overrides: dict[str, Any],
                 make_kos: Callable[[Settings], KnowledgeOS]) -> None:
        self.make_kos = make_kos
        self.doc_dir = Path(spec.doc_dir)
        self.home: Path | None = None
        self.ingest_seconds = 0.0
        self.documents: int | None = None
        self.source = "KOS_HOME"
        self._files: list[Path] = []
        self._domains_dirs: tuple[Path, ...] = ()
        self._overrides = overrides
        if spec.dataset == "narrativeqa":
            data = qa.load_narrativeqa(qa.find_wheel(qa.DEFAULT_CACHE_DIR))
            self._files = [qa.write_posts(data, workdir / "posts")]
            self._domains_dirs = (qa.QA_DOMAIN_FILE.parent,)
            self.home = workdir / "home"
            self.source = f"{qa.DATASET}, licence {qa.LICENCE}"
            return
        if not spec.packages:
            return
        missing = [p for p in spec.packages if not (self.doc_dir / p / "changelog.Debian.gz").is_file()]
        if missing:
            raise ConfigError(f"corpus.packages: no changelog.Debian.gz in {self.doc_dir} for {', '.join(missing)}")
        slice_dir = workdir / "doc"
        for p in spec.packages:  # the builders read the same slice that is ingested
            (slice_dir / p).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.doc_dir / p / "changelog.Debian.gz", slice_dir / p / "changelog.Debian.gz")
        self.doc_dir = slice_dir
        self.home = workdir / "home"
        self._files = [slice_dir / p / "changelog.Debian.gz" for p in spec.packages]
        self.source = f"changelogs of {', '.join(spec.packages)}"

    def ensure_ingested(self) -> None:
        """Ingest the slice into its KOS_HOME the first time a suite needs it."""
        if self.home is None or self.documents is not None:
            return
        kos = self.make_kos(self.settings(self._overrides))
        try:
            t = time.perf_counter()
            report = kos.ingest(self._files)
            self.ingest_seconds = time.perf_counter() - t
            self.documents = report.documents
            if report.problems:
                logger.warning("corpus slice: %s", "; ".join(map(str, report.problems)))
        finally:
            kos.close()

    def settings(self, overrides: dict[str, Any]) -> Settings:
        """Settings for this corpus: its KOS_HOME and domain folders under ``overrides``."""
        if not self.home:
            return Settings(**overrides)
        dirs = tuple(overrides.get("domains_dirs") or ()) + self._domains_dirs
        return Settings(**{**overrides, "home": self.home, "domains_dirs": dirs})


@contextmanager
def _fresh_answer_cache(kos: KnowledgeOS, path: Path) -> Iterator[None]:
    """Point ``kos`` at an empty answer cache in ``path`` for the duration."""
    services = kos.services
    old = services.__dict__.pop("answer_cache", None)
    services.__dict__["answer_cache"] = AnswerCache(path, ttl_s=services.settings.cache.answer_ttl_s)
    try:
        yield
    finally:
        services.__dict__.pop("answer_cache").close()
        if old is not None:
            services.__dict__["answer_cache"] = old


def _route_graph() -> Any:
    """cache_lookup -> route only: what routing suites need, without retrieval or drafts."""
    g = StateGraph(State, context_schema=Context, input_schema=InputState)
    g.add_node("cache_lookup", cache_lookup)
    g.add_node("route", route)
    g.add_edge(START, "cache_lookup")
    g.add_edge("cache_lookup", "route")
    g.add_edge("route", END)
    return g.compile(name="knowledge_os_route")


def _result_fields(r: RunResult) -> dict[str, Any]:
    docs = r.manifest.get("documents") or []
    return {
        "domain": r.domain, "route_method": r.route.method, "route_confidence": r.route.confidence,
        "path": r.path, "answer": r.answer, "cited": [c.id for c in r.citations],
        "retrieved": [d["id"] for d in docs], "retrieved_sources": [list(d.get("sources") or []) for d in docs[:10]],
        "quality_score": r.quality.score, "quality_passed": r.quality.passed,
        "llm_calls": r.usage.llm_calls, "tokens": r.usage.prompt_tokens + r.usage.completion_tokens,
        "steps": r.usage.steps, "agent_steps": executed_steps(r.manifest.get("plan")), "cache_hit": bool((r.manifest.get("cache") or {}).get("hit")) or r.route.method == "cache",
        "fallback_used": bool(r.manifest.get("fallback_used")),
        "corrected": bool(r.manifest.get("corrected")),
        "data_only": bool(getattr(r, "data_only", False)),
        "answer_mode": str(getattr(r, "answer_mode", "prose")),
    }


def _trace_step(node: str, update: dict[str, Any]) -> TraceStep:
    step: TraceStep = {"node": node}
    if node == "cache_lookup":
        step["hit"] = bool((update.get("cache") or {}).get("hit"))
    if node == "rank" and "quality" in update:
        step["passed"] = bool(update["quality"].get("passed"))
    return step


class _CaseRunner:
    def __init__(self, kos: KnowledgeOS, spec: SuiteSpec, workdir: Path, checker: Any) -> None:
        self.kos = kos
        self.s = spec.settings
        self.workdir = workdir
        self.checker = checker
        self.kwargs: dict[str, Any] = {"domain": self.s.domain, "path": self.s.path, "persona": self.s.persona,
                                       "as_of": self.s.as_of, "use_cache": self.s.use_cache}
        if not self.s.loops:
            if "loops" not in inspect.signature(kos.arun).parameters:
                raise ConfigError(f"suite {spec.name}: settings.loops false needs KnowledgeOS.arun(loops=...)")
            self.kwargs["loops"] = False
        self.stream = self.s.loops or "loops" in inspect.signature(kos.astream).parameters
        self._route = _route_graph() if self.s.mode == "route" else None

    async def run(self, case: CaseSpec) -> dict[str, Any]:
        if self.s.mode == "route":
            return await self._route_only(case)
        if self.s.mode == "cache_pair":
            return await self._pair(case)
        thread = str(uuid.uuid4())
        for q in case.before:
            await self.kos.arun(q, **self.kwargs, **({"thread_id": thread} if case.same_thread else {}))
        t = time.perf_counter()
        if self.stream:
            trace = [_trace_step(n, u) async for n, u in self.kos.astream(case.query, thread_id=thread, **self.kwargs)]
            latency = time.perf_counter() - t
            result = await self.kos.aget_thread(thread)
            if result is None:
                raise KnowledgeOSError(f"thread {thread} has no finished run")
        else:
            result = await self.kos.arun(case.query, **self.kwargs, **({"thread_id": thread} if case.same_thread else {}))
            trace = []
            latency = time.perf_counter() - t
        out = {**_result_fields(result), "latency_s": round(latency, 3), "trace": trace}
        if self.checker is not None:
            out["grounding"] = self.checker(result.answer, cited_ids=out["cited"], question=case.model_dump(mode="json"))
        return out

    async def _route_only(self, case: CaseSpec) -> dict[str, Any]:
        ctx = Context(domain=self.s.domain, path=self.s.path, persona=self.s.persona,
                      as_of=self.s.as_of.isoformat() if self.s.as_of else None, use_cache=False,
                      services=self.kos.services)
        t = time.perf_counter()
        state = await self._route.ainvoke({"query": case.query}, context=ctx)
        latency = time.perf_counter() - t
        route, usage = state.get("route") or {}, state.get("usage") or {}
        return {"domain": state.get("domain", ""), "route_method": route.get("method", ""),
                "route_confidence": float(route.get("confidence", 0.0)), "path": state.get("path", ""),
                "llm_calls": usage.get("llm_calls", 0),
                "tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
                "steps": usage.get("steps", 0), "agent_steps": 0, "latency_s": round(latency, 3)}

    async def _pair(self, case: CaseSpec) -> dict[str, Any]:
        kwargs = {**self.kwargs, "use_cache": True}
        with _fresh_answer_cache(self.kos, self.workdir / f"answers-{uuid.uuid4().hex}.db"):
            await self.kos.arun(case.first, **kwargs)
            t = time.perf_counter()
            second = await self.kos.arun(case.second, **kwargs)
            latency = time.perf_counter() - t
        fields = _result_fields(second)
        return {**fields, "latency_s": round(latency, 3), "pair_kind": case.kind, "trap_type": case.trap_type or "",
                "second_hit": fields["cache_hit"], "second_method": second.route.method}


def _checker_for(spec: SuiteSpec, doc_dir: Path) -> Any:
    if not spec.settings.check_answers:
        return None
    corpus = truth.cached_corpus(doc_dir)

    def check(answer: str, *, cited_ids: list[str], question: dict[str, Any]) -> dict[str, Any]:
        return truth.check_answer(answer, cited_ids=cited_ids, corpus=corpus, question=question)

    return check


async def run_suite_cases(
    file: Path, *, workspace: Workspace, run_dir: Path, done: dict[str, CaseRecord],
    on_progress: ProgressFn | None = None, overrides: dict[str, Any] | None = None,
) -> SuiteRun:
    """Run one suite's cases that are not in ``done``; append each record to ``results.jsonl``.

    Args:
        file: The suite YAML.
        workspace: Temporary files of the run (corpus slices are shared through it).
        run_dir: The run folder (created if missing).
        done: Records already in the run folder, by key (resume).
        on_progress: See :data:`ProgressFn`.
        overrides: Settings overrides applied under the suite's own ``settings.kos``.

    Returns:
        The suite's records in case order (resumed ones included).

    Raises:
        EvalConfigError, UnknownNameError, ConfigError: a bad suite, case file or builder.
        KeyboardInterrupt: passed on after the records so far are on disk.
    """
    spec = load_suite_file(file)
    sh = spec.settings_hash()
    run_dir.mkdir(parents=True, exist_ok=True)
    kos_overrides = {**(overrides or {}), **spec.settings.kos}
    outcome = SuiteRun(spec=spec, file=file)
    corpus = workspace.corpus(spec.corpus, kos_overrides)
    workdir = workspace.root / f"suite-{spec.name}"
    workdir.mkdir(exist_ok=True)
    cases = load_cases(spec, suite_file=file, doc_dir=corpus.doc_dir)
    keys = [f"{spec.name}/{c.id}/{sh}" for c in cases]
    todo = [(c, k) for c, k in zip(cases, keys, strict=True) if k not in done]
    if on_progress:
        on_progress(spec.name, len(cases) - len(todo), len(cases), None)
    fresh: dict[str, CaseRecord] = {}
    if todo:
        corpus.ensure_ingested()
        _drop_torn_tail(run_dir / RESULTS_FILE)
        kos = workspace.make_kos(corpus.settings(kos_overrides))
        try:
            runner = _CaseRunner(kos, spec, workdir, _checker_for(spec, corpus.doc_dir))
            with (_fresh_answer_cache(kos, workdir / "answers.db") if spec.settings.use_cache
                  else _nothing()), (run_dir / RESULTS_FILE).open("ab") as sink:
                for n, (case, key) in enumerate(todo, start=1):
                    rec = await _one(runner, spec.name, case, key)
                    sink.write(orjson.dumps(rec) + b"\n")
                    sink.flush()
                    fresh[key] = rec
                    if on_progress:
                        on_progress(spec.name, len(cases) - len(todo) + n, len(cases), rec)
        finally:
            kos.close()
    outcome.ingest_seconds, outcome.documents = _corpus_facts(run_dir, spec.name, corpus)
    outcome.corpus_source = corpus.source
    allrec = {**done, **fresh}
    outcome.records = [allrec[k] for k in keys]
    outcome.seconds = round(sum(r.get("elapsed_s", 0.0) for r in outcome.records), 3)
    return outcome


def _corpus_facts(run_dir: Path, suite: str, corpus: _Corpus) -> tuple[float, int | None]:
    """(ingest seconds, documents) of the suite's corpus slice, kept in ``corpora.json`` of
    the run folder so a resumed run that ingested nothing still reports them."""
    path = run_dir / CORPORA_FILE
    facts = orjson.loads(path.read_bytes()) if path.is_file() else {}
    if corpus.documents is not None:
        facts[suite] = {"ingest_seconds": round(corpus.ingest_seconds, 3), "documents": corpus.documents}
        path.write_bytes(orjson.dumps(facts, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    known = facts.get(suite) or {}
    return known.get("ingest_seconds", 0.0), known.get("documents")


@contextmanager
def _nothing() -> Iterator[None]:
    yield


async def _one(runner: _CaseRunner, suite: str, case: CaseSpec, key: str) -> CaseRecord:
    base: CaseRecord = {"key": key, "suite": suite, "id": case.id, "query": case.query or case.second or "",
                        "lang": case.lang, "tags": list(case.tags), "expected": case.expected, "error": None}
    t = time.perf_counter()
    try:
        fields = await runner.run(case)
    except (KnowledgeOSError, ValueError, RuntimeError, OSError) as exc:
        logger.warning("case %s failed: %s", key, exc)
        fields = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        if case.kind:
            fields |= {"pair_kind": case.kind, "trap_type": case.trap_type or "", "second_hit": False}
    return {**base, **fields, "elapsed_s": round(time.perf_counter() - t, 3),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}


def run_sync(coro: Any) -> Any:
    """``asyncio.run`` for the CLI and the sync API."""
    return asyncio.run(coro)
