"""The ground-truth corpus: Debian changelogs parsed independently of the project.

Every ``<doc_dir>/*/changelog.Debian.gz`` is parsed with python-debian
(:class:`debian.changelog.Changelog`), every entry on its own. Nothing here goes
through ``knowledge_os.retrieval`` or ``knowledge_os.domains``: the eval suites compare
the pipeline's answers with these facts, so the facts must not come from the pipeline.

Two rules are mirrored from the project's ingest so that the doc ids match
(``knowledge_os/retrieval/sources.py`` and ``retrieval/ingest.py``), and only these:

* the doc id of an entry is ``deb:<source package>:<version>``;
* when an id repeats (a changelog lists a version twice, or two package folders hold
  copies of one changelog) the first entry wins, reading files in path order and each
  file newest entry first. A symlinked folder is read once.

Bug numbers are the ``#NNN`` items of ``Closes:`` fields (Debian Policy 5.6.22, the
regular expression given there, also accepting ``#NNN`` items joined by spaces or "and"
on one line, as in ``Closes: #941082 #941306``); CVE ids follow MITRE's ``CVE-YYYY-NNNN`` (4 or more
digits). Dates are the entry's RFC 2822 trailer date, converted to UTC (a date without
a zone counts as UTC).
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import logging
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

__all__ = [
    "DEFAULT_DOC_DIR",
    "TruthCorpus",
    "TruthEntry",
    "closes_bugs",
    "cve_ids",
    "fingerprint",
    "load_corpus",
    "parse_changelog",
]

logger = logging.getLogger(__name__)

DEFAULT_DOC_DIR = Path("/usr/share/doc")

# MITRE CVE id syntax (2014 onwards): four-digit year, four or more digits.
_CVE_RE = re.compile(r"\bCVE-(\d{4})-(\d{4,7})\b", re.IGNORECASE)
# Debian Policy 5.6.22: /closes:\s*(?:bug)?\#?\s?\d+(?:,\s*(?:bug)?\#?\s?\d+)*/i, plus the
# common variant of "#NNN" items joined by spaces or "and" on one line ("Closes: #1 #2").
_CLOSES_RE = re.compile(r"closes:\s*(?:bug)?#?\s?\d+(?:,\s*(?:bug)?#?\s?\d+|(?:[ \t]+|,?[ \t]*and[ \t]+)(?:bug)?#\s?\d+)*",
                        re.IGNORECASE)
_NUMBER_RE = re.compile(r"\d+")
_AUTHOR_RE = re.compile(r"^\s*(.*?)\s*<([^<>\s]+@[^<>\s]+)>\s*$")


def cve_ids(text: str) -> tuple[str, ...]:
    """CVE ids named in ``text``, upper-cased, in order of first appearance."""
    return tuple(dict.fromkeys(f"CVE-{m.group(1)}-{m.group(2)}" for m in _CVE_RE.finditer(text)))


def closes_bugs(text: str) -> tuple[str, ...]:
    """Debian bug numbers (digits only, as strings) in the ``Closes:`` fields of ``text``."""
    found: dict[str, None] = {}
    for m in _CLOSES_RE.finditer(text):
        for number in _NUMBER_RE.findall(m.group(0)):
            found.setdefault(str(int(number)), None)
    return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class TruthEntry:
    """One changelog entry as the changelog states it.

    Attributes:
        doc_id: ``deb:<package>:<version>``, the project's document id.
        package: Source package (the changelog's header line).
        version: Debian version string, exactly as written.
        distribution: e.g. ``bookworm-security`` (may be empty).
        urgency: e.g. ``medium`` (may be empty).
        author_name: Name part of the trailer line (may be empty).
        author_email: E-mail of the trailer line, lower-cased (may be empty).
        when: Trailer date in UTC; None when absent or unparsable.
        text: The change lines, blank lines dropped, joined with newlines.
        lines: The change lines, stripped, in order (``*``/``-`` bullets kept).
        cves: CVE ids named in ``text``.
        bugs: Bug numbers of its ``Closes:`` fields.
        path: The changelog file it was read from.
    """

    doc_id: str
    package: str
    version: str
    distribution: str = ""
    urgency: str = ""
    author_name: str = ""
    author_email: str = ""
    when: datetime | None = None
    text: str = ""
    lines: tuple[str, ...] = ()
    cves: tuple[str, ...] = ()
    bugs: tuple[str, ...] = ()
    path: str = ""

    @property
    def day(self) -> date | None:
        """The UTC calendar date of the upload, or None."""
        return self.when.date() if self.when else None


def _parse_when(value: str) -> datetime | None:
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_changelog(raw: bytes, *, path: str = "") -> list[TruthEntry]:
    """Parse one changelog (uncompressed bytes) into entries, newest first.

    Entries without a package or a version are skipped. Every entry is kept, repeated
    versions included (:func:`load_corpus` applies the first-wins rule).

    Raises:
        ValueError: the bytes are not a changelog python-debian can read at all.
    """
    from debian.changelog import Changelog

    changelog = Changelog(raw, strict=False, encoding="utf-8")
    out: list[TruthEntry] = []
    for block in changelog:
        package = (block.package or "").strip()
        version = str(block.version or "").strip()
        if not package or not version:
            continue
        lines = tuple(ln.strip() for ln in block.changes() if ln.strip())
        text = "\n".join(lines)
        author = (block.author or "").strip()
        m = _AUTHOR_RE.match(author)
        name, mail = (m.group(1), m.group(2).lower()) if m else (author, "")
        out.append(
            TruthEntry(
                doc_id=f"deb:{package}:{version}",
                package=package,
                version=version,
                distribution=(block.distributions or "").strip(),
                urgency=(block.urgency or "").strip(),
                author_name=name.strip(),
                author_email=mail,
                when=_parse_when((block.date or "").strip()),
                text=text,
                lines=lines,
                cves=cve_ids(text),
                bugs=closes_bugs(text),
                path=path,
            )
        )
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class TruthCorpus:
    """Every entry of a doc folder's changelogs, with lookup tables.

    Attributes:
        doc_dir: The folder that was read.
        entries: One entry per doc id (first wins), in reading order.
        all_entries: Every parsed entry, repeats included (sum over files).
        aliases: Package folder name -> source package (``libssl3`` -> ``openssl``).
        problems: ``"<path>: <reason>"`` for each changelog that could not be read.
        fingerprint: :func:`fingerprint` of the files read ("" when built from entries).
    """

    doc_dir: str
    entries: tuple[TruthEntry, ...]
    fingerprint: str = ""
    all_entries: tuple[TruthEntry, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    by_id: dict[str, TruthEntry] = field(default_factory=dict, repr=False)
    by_package: dict[str, tuple[TruthEntry, ...]] = field(default_factory=dict, repr=False)
    by_cve: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    by_bug: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    versions: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    author_names: frozenset[str] = frozenset()
    author_emails: frozenset[str] = frozenset()

    @classmethod
    def from_entries(cls, entries: list[TruthEntry], *, doc_dir: str = "",
                     aliases: dict[str, str] | None = None,
                     problems: tuple[str, ...] = (), fingerprint: str = "") -> TruthCorpus:
        """Build the lookup tables from parsed entries (reading order, repeats allowed).

        ``by_package`` lists a package's kept entries newest first (entries without a
        date last); ``by_cve``/``by_bug`` map an id (``CVE-…`` / digits) to the kept doc
        ids naming it, in reading order; ``versions`` holds every version written for a
        package, repeats included; author names are compared case-insensitively.
        """
        kept: dict[str, TruthEntry] = {}
        versions: dict[str, set[str]] = defaultdict(set)
        for e in entries:
            kept.setdefault(e.doc_id, e)
            versions[e.package].add(e.version)
        by_package: dict[str, list[TruthEntry]] = defaultdict(list)
        by_cve: dict[str, list[str]] = defaultdict(list)
        by_bug: dict[str, list[str]] = defaultdict(list)
        for e in kept.values():
            by_package[e.package].append(e)
            for c in e.cves:
                by_cve[c].append(e.doc_id)
            for b in e.bugs:
                by_bug[b].append(e.doc_id)
        newest = {p: tuple(sorted(es, key=lambda x: -(x.when.timestamp() if x.when else float("-inf"))))
                  for p, es in by_package.items()}
        return cls(
            doc_dir=doc_dir,
            entries=tuple(kept.values()),
            fingerprint=fingerprint,
            all_entries=tuple(entries),
            aliases=dict(aliases or {}),
            problems=problems,
            by_id=kept,
            by_package=newest,
            by_cve={k: tuple(v) for k, v in by_cve.items()},
            by_bug={k: tuple(v) for k, v in by_bug.items()},
            versions={k: frozenset(v) for k, v in versions.items()},
            author_names=frozenset(e.author_name.casefold() for e in entries if e.author_name),
            author_emails=frozenset(e.author_email for e in entries if e.author_email),
        )

    def package_of(self, name: str) -> str | None:
        """The source package a name refers to (itself or a folder alias), or None."""
        if name in self.by_package:
            return name
        return self.aliases.get(name)

    def in_period(self, start: date, end: date, *, package: str | None = None) -> list[TruthEntry]:
        """Kept entries dated ``start <= day <= end`` (inclusive), newest first."""
        pool = self.by_package.get(package, ()) if package else self.entries
        found = [e for e in pool if e.day is not None and start <= e.day <= end]
        return sorted(found, key=lambda e: (-e.when.timestamp(), e.doc_id))  # type: ignore[union-attr]


def _changelogs(doc_dir: Path) -> list[Path]:
    return sorted(doc_dir.glob("*/changelog.Debian.gz"), key=str)


def fingerprint(paths: Sequence[Path]) -> str:
    """A short hash of the changelog files as they are now: sorted (folder name, size,
    mtime in ns) of each. Equal fingerprints mean the same files, unchanged; compare the
    fingerprint taken when a home was ingested with the one at eval time to tell a
    corpus that moved (a package installed or upgraded) from one that did not.

    Returns:
        16 hex digits; a file that cannot be read counts with size and mtime -1.
    """
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        try:
            st = path.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size = mtime = -1
        h.update(f"{path.parent.name}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()[:16]


def load_corpus(doc_dir: Path = DEFAULT_DOC_DIR, *, paths: Sequence[Path] | None = None) -> TruthCorpus:
    """Parse every ``<doc_dir>/*/changelog.Debian.gz`` (or exactly ``paths``).

    Args:
        doc_dir: A folder of package folders, as ``/usr/share/doc``.
        paths: The changelog files to read instead of globbing ``doc_dir``: pass the
            files a home was ingested from when the doc folder may have changed since
            (a package installed later must not enter the truth).

    Returns:
        The corpus, with its :func:`fingerprint`. A file that cannot be read is listed
        in ``problems`` and skipped.

    Raises:
        FileNotFoundError: ``doc_dir`` is not a folder (only checked without ``paths``).
    """
    doc_dir = Path(doc_dir)
    if paths is None and not doc_dir.is_dir():
        raise FileNotFoundError(f"{doc_dir}: not a folder of package folders")
    files = sorted((Path(p) for p in paths), key=str) if paths is not None else _changelogs(doc_dir)
    seen_files: set[Path] = set()
    entries: list[TruthEntry] = []
    aliases: dict[str, str] = {}
    problems: list[str] = []
    for path in files:
        real = path.resolve()
        try:
            parsed = parse_changelog(gzip.decompress(real.read_bytes()), path=str(path))
        except (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        if parsed:
            aliases.setdefault(path.parent.name, parsed[0].package)
        if real in seen_files:
            continue
        seen_files.add(real)
        entries.extend(parsed)
    if problems:
        logger.warning("%d changelog(s) could not be read under %s", len(problems), doc_dir)
    return TruthCorpus.from_entries(entries, doc_dir=str(doc_dir), aliases=aliases,
                                    problems=tuple(problems), fingerprint=fingerprint(files))
