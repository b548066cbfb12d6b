"""Claim extraction: the checkable tokens of an answer, found without any corpus.

Pure functions used by :mod:`knowledge_os.evals.truth.checker`: versions (with the word
before them, a package name or not), package names, CVE ids, bug numbers, ISO dates,
months, quarters and years, counts with their counted noun (prose "3 uploads" and
figures rows "- uploads: 4 vs 1", "1. openssl: 12 (3)"), percentages, e-mail addresses
and person names. Shares no code with the pipeline's own claim extraction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from knowledge_os.evals.truth.periods import MONTHS_EN, MONTHS_RU_GEN, MONTHS_RU_NOM, MONTHS_RU_PREP

__all__ = ["CVE_RE", "Claim", "extract_claims", "month_range", "ranges"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One checkable token of an answer.

    Attributes:
        kind: ``version``, ``package``, ``cve``, ``bug``, ``date``, ``month``, ``year``,
            ``count``, ``percent``, ``email`` or ``person``.
        token: The text as normalised for checking (``CVE-2024-1234``, ``1055473``,
            ``2025-03``, ``3``...).
        package: For ``version`` claims, the package written before it ("" if bare).
        unit: For ``count`` claims, the counted noun as written; for ``package`` claims
            ``"plain"`` when the name is a plain word (no digit, ``+``, ``.``, ``-`` or
            quotes), which counts as a claim only if it is a package of the corpus.
        raw: The text as written in the answer (not part of equality).
    """

    kind: str
    token: str
    package: str = ""
    unit: str = ""
    raw: str = field(default="", compare=False)

    def __str__(self) -> str:
        if self.kind == "version" and self.package:
            return f"version {self.package} {self.token}"
        if self.kind == "count":
            return f"count {self.token} {self.unit}"
        return f"{self.kind} {self.token}"


_MONTHS: dict[str, int] = {}
for _table in (MONTHS_EN, MONTHS_RU_NOM, MONTHS_RU_GEN, MONTHS_RU_PREP):
    for _i, _name in enumerate(_table, start=1):
        _MONTHS[_name.casefold()] = _i
for _i, _name in enumerate(MONTHS_EN, start=1):
    _MONTHS[_name[:3].casefold()] = _i

_CITATION_RE = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]")
CVE_RE = re.compile(r"\bCVE-(\d{4})-(\d{4,7})\b", re.IGNORECASE)
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NAME_EMAIL_RE = re.compile(r"((?:[A-ZА-ЯЁ][\w'’.-]+\s+){1,3}[A-ZА-ЯЁ][\w'’-]+)\s*<\s*[\w.+-]+@")
_TIME_RE = re.compile(r"(?<![\w.:])\d{1,2}:\d{2}(?::\d{2})?(?![\w.:~+-])")  # not an epoch "1:11.0-3"
_ISO_RE = re.compile(r"(?<![\w-])(?<!\w\.)((?:19|20)\d\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?![\w-]|\.\w)")
_MONTH_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True))
                       + r")\.?\s+((?:19|20)\d\d)\b", re.IGNORECASE)
_QUARTER_RE = re.compile(r"\bQ([1-4])\s+((?:19|20)\d\d)\b")
_BUG_RE = re.compile(r"(?:\bbug\s*(?:no\.?|№)?\s*#?\s?|\bбаг\w*\s*#?\s?|\bошибк\w*\s*#\s?|(?<![\w&])#)(\d{3,7})\b",
                     re.IGNORECASE)
# A maximal run of version characters starting with a digit (trailing punctuation is cut).
_VERSION_RE = re.compile(r"(?<![\w.+~:-])(\d[\w.+~:-]*)")
_PAIR_WORD_RE = re.compile(r"([a-z0-9][a-z0-9+._-]*[a-z0-9+])\s+(?:version\s+|верси[ияей]\s+|\(|v)?$", re.IGNORECASE)
_PACKAGE_RE = re.compile(r"\b(?:package|source package|пакет[а-я]*)\s+[`'\"«]?([a-z0-9][a-z0-9+.-]+[a-z0-9+])",
                         re.IGNORECASE)
_YEAR_RE = re.compile(r"(?<![\w.-])((?:19|20)\d\d)(?![\w.-]*\d)")
_COUNT_RE = re.compile(
    r"(?<![\w.,-])(\d{1,6})[ \t]+(?:new[ \t]+|distinct[ \t]+|security[ \t]+|unique[ \t]+|новы[хе][ \t]+"
    r"|разны[хе][ \t]+)?"
    r"(uploads?|entries|entry|CVE(?:[ \t]+ids?|[ \t]+fixes|s)?|security fixes|fixes|bugs?|changes|versions"
    r"|releases|mentions|packages|загруз\w*|исправлени\w*|ошиб\w*|баг\w*|запис\w*|изменени\w*"
    r"|верси\w*|упоминани\w*|пакет\w*|обновлени\w*)", re.IGNORECASE)
# A figures row: "- uploads: 2 vs 1", "1. openssl: 12 (3)", "- security fix: 4 vs 2, +100%".
_ROW_RE = re.compile(r"^[ \t]*(?:[-*•]|\d{1,3}\.)?[ \t]*([^\n:\[\]]{2,80}?):[ \t]*(\d{1,6})"
                     r"(?:[ \t]*(?:vs\.?|против|и|→|->)[ \t]*(\d{1,6}))?(?:[ \t]*\((\d{1,6})\))?"
                     r"(?:,?[ \t]*[+-]?\d{1,4}(?:[.,]\d+)?[ \t]?%)?[ \t]*$", re.MULTILINE)
_PERCENT_RE = re.compile(r"(?<![\w.])(\d{1,3}(?:[.,]\d+)?)\s?%")
_PERSON_RE = re.compile(
    r"\b(?i:by|maintainer|uploader|author|thanks to|signed by|автор\w*|сопровождающ\w*|загрузил\w*)"
    r":?\s+((?:[A-ZА-ЯЁ][a-zа-яё'’-]+\s+){1,3}[A-ZА-ЯЁ][a-zа-яё'’-]+)")
_NOT_NAME_TAILS = {"closes", "thanks", "patch", "see", "and", "lp", "fixes", "bug", "also", "for"}
_NOT_NAMES = {"debian", "ubuntu", "security", "team", "the", "lts", "project", "upstream", "release",
              "stable", "bookworm", "bullseye", "trixie", "january", "february", "march", "april",
              "may", "june", "july", "august", "september", "october", "november", "december"}
# Words written before a version that are not package names.
_NOT_PACKAGES = {"version", "versions", "to", "from", "in", "into", "upstream", "release", "and",
                 "or", "of", "is", "was", "at", "with", "v", "new", "the", "as", "update",
                 "updated", "upgrade", "upgraded", "bump", "bumped", "import", "imported",
                 "rebase", "rebased", "than", "since", "before", "after", "on", "for", "by",
                 "uploads", "upload", "releases", "fixed", "fixes", "fix", "until", "through",
                 "between", "a", "an", "see", "standards-version", "compat", "level", "python",
                 "it", "are", "were", "be", "then", "also", "vs", "via", "only", "all", "revision"}


def _mask(text: str, span: tuple[int, int]) -> str:
    a, b = span
    return text[:a] + " " * (b - a) + text[b:]


def _is_version(token: str) -> bool:
    """Looks like a Debian version: digits joined by ``.:~-+``; not a plain number and
    not a patch file name (``0003-Update-docs``, ``50_04-crypto``: Debian versions hold
    no ``_`` and no ``-Word-`` part, Debian Policy 5.6.12)."""
    if re.fullmatch(r"\d+", token) or "_" in token or re.search(r"-[A-Za-z]{3,}(?:-|\.patch|$)", token):
        return False
    return bool(re.search(r"\d[.:~-]\w|\d\+\w|\d[a-z]+-\d", token))


def extract_claims(answer: str) -> list[Claim]:
    """Every checkable token of ``answer``, once per (kind, token), in a fixed order of
    kinds (cve, email, person, date, month, bug, version/package, package, year, count,
    percent) and, within a kind, of first appearance.

    Args:
        answer: The answer text, any language.

    Returns:
        The claims (see :class:`Claim`); no corpus needed.
    """
    text = _CITATION_RE.sub(lambda m: " " * len(m.group(0)), answer)
    found: list[Claim] = []

    def add(c: Claim) -> None:
        if c not in found:
            found.append(c)

    for m in CVE_RE.finditer(text):
        add(Claim("cve", f"CVE-{m.group(1)}-{m.group(2)}", raw=m.group(0)))
        text = _mask(text, m.span())
    for m in _NAME_EMAIL_RE.finditer(text):
        name = " ".join(m.group(1).split())
        add(Claim("person", name, raw=name))
    for m in _PERSON_RE.finditer(text):
        words = m.group(1).split()
        while words and words[-1].casefold() in _NOT_NAME_TAILS:
            words.pop()
        if len(words) >= 2 and words[0].casefold() not in _NOT_NAMES and words[-1].casefold() not in _NOT_NAMES:
            add(Claim("person", " ".join(words), raw=" ".join(words)))
    for m in _EMAIL_RE.finditer(text):
        add(Claim("email", m.group(0).lower(), raw=m.group(0)))
        text = _mask(text, m.span())
    for m in _TIME_RE.finditer(text):
        text = _mask(text, m.span())
    for m in _ISO_RE.finditer(text):
        add(Claim("date", m.group(0), raw=m.group(0)))
        text = _mask(text, m.span())
    for m in _MONTH_RE.finditer(text):
        add(Claim("month", f"{m.group(2)}-{_MONTHS[m.group(1).casefold()]:02d}", raw=m.group(0)))
        text = _mask(text, m.span())
    for m in _QUARTER_RE.finditer(text):
        q, y = int(m.group(1)), m.group(2)
        for month in range(3 * q - 2, 3 * q + 1):
            add(Claim("month", f"{y}-{month:02d}", raw=m.group(0)))
        text = _mask(text, m.span())
    for m in _BUG_RE.finditer(text):
        add(Claim("bug", str(int(m.group(1))), raw=m.group(0)))
        text = _mask(text, m.span())
    for m in _ROW_RE.finditer(text):
        label = " ".join(m.group(1).split())
        for g in (2, 3, 4):
            if m.group(g) is not None:
                add(Claim("count", m.group(g), unit=label, raw=""))
                text = _mask(text, m.span(g))
    for m in _PERCENT_RE.finditer(text):
        add(Claim("percent", m.group(1).replace(",", "."), raw=m.group(0)))
        text = _mask(text, m.span())
    for m in _VERSION_RE.finditer(text):
        token = m.group(1).rstrip(".:-")
        if not _is_version(token):
            continue
        before = _PAIR_WORD_RE.search(text[max(0, m.start() - 60):m.start()])
        word = before.group(1).lower() if before else ""
        if word and word not in _NOT_PACKAGES and re.search(r"[a-z]", word):
            add(Claim("version", token, package=word, raw=f"{before.group(0)}{token}"))  # type: ignore[union-attr]
        else:
            add(Claim("version", token, raw=token))
        text = _mask(text, m.span())
    for m in _PACKAGE_RE.finditer(text):
        name = m.group(1).lower()
        if re.search(r"[\d+.-]", name) or m.group(0)[-len(name) - 1] in "`'\"«":
            add(Claim("package", name, raw=m.group(0)))
        else:
            add(Claim("package", name, raw=m.group(0), unit="plain"))
    for m in _COUNT_RE.finditer(text):
        add(Claim("count", m.group(1), unit=m.group(2).lower(), raw=m.group(0)))
        text = _mask(text, m.span(1))
    for m in _YEAR_RE.finditer(text):
        add(Claim("year", m.group(1), raw=m.group(1)))
    return found


def month_range(token: str) -> tuple[date, date]:
    """First and last day of the month ``YYYY-MM``."""
    y, m = map(int, token.split("-"))
    end = date(y + (m == 12), m % 12 + 1, 1)
    return date(y, m, 1), date.fromordinal(end.toordinal() - 1)


_RANGE_RE = re.compile(r"((?:19|20)\d\d-\d\d-\d\d)\s*(?:\.\.|–|—|to|по|until|-)\s*((?:19|20)\d\d-\d\d-\d\d)")


def ranges(answer: str) -> list[tuple[date, date]]:
    """Date ranges written in the answer (``2026-01-01..2026-11-22``, ``с … по …``), whose
    counts may be quoted next to them (inclusive, and with the end taken as exclusive)."""
    out = []
    for m in _RANGE_RE.finditer(answer):
        try:
            a, b = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        except ValueError:
            continue
        if a <= b:
            out += [(a, b), (a, b - timedelta(days=1))]
    return out
