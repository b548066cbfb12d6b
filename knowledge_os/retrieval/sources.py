"""Turn files into :class:`~knowledge_os.retrieval.base.Document` s.

* Debian changelogs (``changelog.Debian.gz``, parsed with python-debian): one document
  per entry; channel = source package. The default corpus is every
  ``/usr/share/doc/*/changelog.Debian.gz`` on the machine.
* Folders of ``.txt``, ``.md`` and ``.pdf`` (pypdf): one document per chunk of about
  :data:`CHUNK_CHARS` characters, split on paragraph boundaries.
* JSONL posts: one document per line, ``{"id", "channel", "date", "text", ...}``.

A file that cannot be read yields one :class:`SourceProblem` naming it; good files are
never held back by a bad one.
"""

from __future__ import annotations

import email.utils
import gzip
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from knowledge_os.retrieval.base import Document
from knowledge_os.retrieval.entities import bug_ids, cve_ids, person_id

__all__ = [
    "CHUNK_CHARS",
    "DEFAULT_DEBIAN_DOC_DIR",
    "default_corpus",
    "default_corpus_scope",
    "origin_scope",
    "SourceFile",
    "SourceProblem",
    "discover",
    "read_file",
]

logger = logging.getLogger(__name__)

DEFAULT_DEBIAN_DOC_DIR = Path("/usr/share/doc")
CHUNK_CHARS = 2000
TEXT_SUFFIXES = (".txt", ".md", ".markdown")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to ingest and its kind: ``debian``, ``text``, ``pdf`` or ``jsonl``.
    ``alias`` is the doc folder name for changelogs (a binary package name)."""

    path: Path
    kind: str
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A file (or a line of one) that could not be used, and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith("changelog.debian.gz") or name == "changelog.debian":
        return "debian"
    if name.endswith(".jsonl"):
        return "jsonl"
    if name.endswith(".pdf"):
        return "pdf"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def default_corpus(doc_dir: Path = DEFAULT_DEBIAN_DOC_DIR) -> list[Path]:
    """The default corpus: ``<doc_dir>/<package>/changelog.Debian.gz``, one per package
    folder (a folder linked to another package's yields an alias of it). Other files
    under ``/usr/share/doc`` (READMEs, release notes) are not part of it."""
    return sorted(doc_dir.glob("*/changelog.Debian.gz"))


def _glob_literal(text: str) -> str:
    """``text`` as a SQLite GLOB pattern matching only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def origin_scope(paths: Sequence[Path]) -> list[str]:
    """The document origins an ingest of ``paths`` owns, as SQLite GLOB patterns (``*``
    also matches ``/``): a folder owns every file below it, a file itself. Paths are
    made absolute, not resolved, as ``Document.origin`` is."""
    return [_glob_literal(str(p.absolute())) + ("/*" if p.is_dir() else "") for p in paths]


def default_corpus_scope(doc_dir: Path = DEFAULT_DEBIAN_DOC_DIR) -> list[str]:
    """The origins the default corpus owns (``<doc_dir>/*/changelog.Debian.gz``, as
    :func:`origin_scope` patterns): a package removed from the machine loses its
    documents on the next default ingest; other files under ``doc_dir`` are not touched."""
    return [f"{_glob_literal(str(doc_dir.absolute()))}/*/changelog.Debian.gz"]


def discover(paths: list[Path]) -> tuple[list[SourceFile], list[SourceProblem]]:
    """Expand paths into ingestible files.

    A folder is walked recursively; a folder holding ``*/changelog.Debian.gz`` (such as
    ``/usr/share/doc``) yields those changelogs, each real file once even when several
    package folders link to it.

    Returns:
        (files sorted by path, problems): a missing or unreadable path, or a file of an
        unknown kind named explicitly, is a problem.
    """
    files: dict[Path, SourceFile] = {}
    problems: list[SourceProblem] = []
    for path in paths:
        if not path.exists():
            problems.append(SourceProblem(str(path), "no such file or folder"))
            continue
        if path.is_file():
            kind = _kind(path)
            if kind is None:
                problems.append(SourceProblem(str(path), "unsupported file type"))
                continue
            files.setdefault(path.resolve(), SourceFile(path, kind, path.parent.name))
            continue
        try:
            found = sorted(path.rglob("*"))
        except OSError as exc:
            problems.append(SourceProblem(str(path), f"cannot list folder: {exc.strerror}"))
            continue
        for f in found:
            kind = _kind(f)
            if kind is None or not f.is_file():
                continue
            real = f.resolve()
            if real not in files:
                files[real] = SourceFile(f, kind, f.parent.name)
    return sorted(files.values(), key=lambda s: str(s.path)), problems


def read_file(src: SourceFile) -> tuple[list[Document], list[tuple[str, str]], list[SourceProblem]]:
    """Read one file.

    Returns:
        (documents, package aliases ``(alias, channel)``, problems). A file that fails as
        a whole gives no documents and one problem; a JSONL file reports bad lines one
        by one (``path:line``) and keeps the good ones.
    """
    try:
        if src.kind == "debian":
            docs = _read_debian(src.path)
            aliases = [(src.alias, docs[0].channel)] if docs and src.alias else []
            return docs, aliases, []
        if src.kind == "jsonl":
            docs, problems = _read_jsonl(src.path)
            return docs, [], problems
        if src.kind == "pdf":
            return _chunks(src.path, _pdf_text(src.path)), [], []
        return _chunks(src.path, src.path.read_text(encoding="utf-8")), [], []
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        return [], [], [SourceProblem(str(src.path), problem)]
    except (OSError, EOFError, zlib.error) as exc:
        msg = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return [], [], [SourceProblem(str(src.path), f"unreadable: {msg}")]
    except ValueError as exc:
        return [], [], [SourceProblem(str(src.path), f"cannot parse: {exc}")]


def _read_debian(path: Path) -> list[Document]:
    from debian.changelog import Changelog

    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    changelog = Changelog(raw, strict=False, encoding="utf-8")
    docs: list[Document] = []
    for block in changelog:
        package = (block.package or "").strip()
        version = str(block.version or "").strip()
        if not package or not version:
            continue
        lines = [ln.rstrip() for ln in block.changes()]
        body = "\n".join(ln for ln in lines if ln.strip())
        date_str = (block.date or "").strip()
        ts = _parse_rfc2822(date_str)
        author = (block.author or "").strip()
        dist = (block.distributions or "").strip()
        urgency = (block.urgency or "").strip()
        entities = [f"package:{package}"]
        entities += [f"cve:{c}" for c in cve_ids(body)]
        entities += [f"bug:{b}" for b in bug_ids(body)]
        if pid := person_id(author):
            entities.append(pid)
        date_iso = datetime.fromtimestamp(ts, UTC).date().isoformat() if ts else ""
        docs.append(
            Document(
                id=f"deb:{package}:{version}",
                channel=package,
                title=f"{package} {version} ({dist}; urgency={urgency})",
                text=f"{package} {version}\n{body}",
                ts=ts,
                source="debian",
                metadata={
                    "package": package,
                    "version": version,
                    "distribution": dist,
                    "urgency": urgency,
                    "author": author,
                    "date": date_iso,
                },
                entities=tuple(dict.fromkeys(entities)),
            )
        )
    return docs


def _parse_rfc2822(value: str) -> int:
    if not value:
        return 0
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _parse_date(value: Any) -> int:
    """ISO-8601 date/datetime string or Unix seconds -> Unix seconds (UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"'date' must be an ISO-8601 string or Unix seconds, got {value!r}")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _read_jsonl(path: Path) -> tuple[list[Document], list[SourceProblem]]:
    docs: list[Document] = []
    problems: list[SourceProblem] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                rec = orjson.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError("a line must be a JSON object")
                missing = [k for k in ("id", "channel", "date", "text") if k not in rec]
                if missing:
                    raise ValueError(f"missing key(s): {', '.join(missing)}")
                text = str(rec["text"])
                if not text.strip():
                    raise ValueError("'text' is empty")
                channel = str(rec["channel"])
                ts = _parse_date(rec["date"])
            except (orjson.JSONDecodeError, ValueError) as exc:
                problems.append(SourceProblem(where, str(exc)))
                continue
            extra = {k: v for k, v in rec.items() if k not in ("id", "channel", "text", "title")}
            extra["date"] = datetime.fromtimestamp(ts, UTC).date().isoformat()
            entities = [f"channel:{channel}"]
            entities += [f"cve:{c}" for c in cve_ids(text)]
            entities += [f"bug:{b}" for b in bug_ids(text)]
            docs.append(
                Document(
                    id=f"jsonl:{rec['id']}",
                    channel=channel,
                    title=str(rec.get("title") or text.strip().splitlines()[0][:120]),
                    text=text,
                    ts=ts,
                    source="jsonl",
                    metadata=extra,
                    entities=tuple(dict.fromkeys(entities)),
                )
            )
    return docs, problems


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except PdfReadError as exc:
        raise ValueError(f"not a readable PDF: {exc}") from exc


def _chunks(path: Path, text: str) -> list[Document]:
    """Split on blank lines into chunks of about CHUNK_CHARS characters."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    chunks: list[str] = []
    current = ""
    for para in paragraphs:
        if current and len(current) + len(para) + 2 > CHUNK_CHARS:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
        while len(current) > 2 * CHUNK_CHARS:
            chunks.append(current[:CHUNK_CHARS])
            current = current[CHUNK_CHARS:]
    if current:
        chunks.append(current)
    stat = path.stat()
    ts = int(stat.st_mtime)
    title = path.stem.replace("_", " ").replace("-", " ")
    channel = path.parent.name or "files"
    docs = []
    for i, chunk in enumerate(chunks):
        entities = [f"channel:{channel}"]
        entities += [f"cve:{c}" for c in cve_ids(chunk)]
        docs.append(
            Document(
                id=f"file:{path}#{i}",
                channel=channel,
                title=title if len(chunks) == 1 else f"{title} (part {i + 1})",
                text=chunk,
                ts=ts,
                source="file",
                metadata={"path": str(path), "chunk": i,
                          "date": datetime.fromtimestamp(ts, UTC).date().isoformat()},
                entities=tuple(dict.fromkeys(entities)),
            )
        )
    return docs
