"""Load a suite's cases: inline, from a JSONL file, or from a registered builder."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
from pydantic import ValidationError

from knowledge_os.errors import EvalConfigError
from knowledge_os.evals.builders import find_builder
from knowledge_os.evals.spec import CaseSpec, CasesFromBuilder, CasesFromFile, SuiteSpec

__all__ = ["PACKAGE_DIR", "load_cases", "load_jsonl_cases", "resolve_data_file"]

PACKAGE_DIR = Path(__file__).resolve().parent
"""``knowledge_os/evals``: suites/, data/ and baselines/ are package data under it."""


def resolve_data_file(name: str, suite_file: Path | None) -> Path:
    """``name`` as given if absolute; else next to the suite file, else in the package folder.

    Raises:
        EvalConfigError: found nowhere (names the suite file and ``cases.file``).
    """
    p = Path(name)
    candidates = [p] if p.is_absolute() else ([suite_file.parent / p] if suite_file else []) + [PACKAGE_DIR / p]
    for c in candidates:
        if c.is_file():
            return c
    raise EvalConfigError(str(suite_file or "<suite>"), "cases.file",
                          f"{name!r} not found (looked in {', '.join(str(c.parent) for c in candidates)})")


def load_jsonl_cases(path: Path) -> list[CaseSpec]:
    """One :class:`CaseSpec` per non-blank line.

    Raises:
        EvalConfigError: unreadable file, bad JSON, an invalid case (key path ``line N.key``)
            or a duplicate id.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalConfigError(str(path), "", f"cannot read: {exc.strerror or exc}") from exc
    cases: list[CaseSpec] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            case = CaseSpec.model_validate(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise EvalConfigError(str(path), f"line {n}", f"bad JSON: {exc}") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            raise EvalConfigError(str(path), f"line {n}" + (f".{loc}" if loc else ""), msg) from exc
        if case.id in seen:
            raise EvalConfigError(str(path), f"line {n}.id", f"duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    return cases


def load_cases(spec: SuiteSpec, *, suite_file: Path | None, doc_dir: Path) -> list[CaseSpec]:
    """The suite's cases in a fixed order.

    Args:
        spec: The suite.
        suite_file: Its YAML (relative ``cases.file`` paths resolve against its folder).
        doc_dir: Package docs the builders read (the corpus slice when the suite has one).

    Raises:
        EvalConfigError: a missing or invalid case file, or builder output that is not valid cases.
        UnknownNameError: an unknown builder.
    """
    if isinstance(spec.cases, list):
        return list(spec.cases)
    if isinstance(spec.cases, CasesFromFile):
        cases = load_jsonl_cases(resolve_data_file(spec.cases.file, suite_file))
        if spec.cases.sample is not None and spec.cases.sample < len(cases):
            keep = sorted(random.Random(spec.cases.seed).sample(range(len(cases)), spec.cases.sample))
            cases = [cases[i] for i in keep]
        return cases
    assert isinstance(spec.cases, CasesFromBuilder)
    build = find_builder(spec.cases.builder)
    as_of = spec.settings.as_of or datetime.now(UTC).date()
    raw = build(doc_dir=doc_dir, as_of=as_of if isinstance(as_of, date) else date.fromisoformat(as_of),
                n=spec.cases.n, seed=spec.cases.seed)
    try:
        return [CaseSpec.model_validate(c) for c in raw]
    except ValidationError as exc:
        raise EvalConfigError(str(suite_file or spec.name), f"cases.builder {spec.cases.builder}",
                              f"the builder returned an invalid case: {exc.errors()[0]['msg']}") from exc
