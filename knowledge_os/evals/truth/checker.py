"""An answer checker independent of the pipeline: is every fact an answer states borne
out by the changelogs?

:func:`extract_claims` finds the checkable tokens of an answer (pure, no corpus), and
:func:`check_answer` traces each one to the parsed changelogs
(:class:`~knowledge_os.evals.truth.corpus.TruthCorpus`), the cited entries and the
question. It deliberately shares no code with the pipeline's own verifier
(``knowledge_os.domains``), so a grounded-claim rate measured with it measures the
pipeline and not the verifier against itself.

Rules (a claim that meets none is *ungrounded*):

========== ===============================================================================
kind       grounded when
========== ===============================================================================
version    ``<package> <version>``: the package exists (source name or package folder
           alias) and that exact version is in its changelog, or is the upstream part of
           one (epoch and Debian revision removed: ``3.0.19`` for ``3.0.19-1~deb12u2``).
           A bare version: the same test against the packages in scope (cited entries',
           the question's, those the answer pairs with versions; every package when the
           scope is empty), or the token is written in a cited entry. Exact: ``3.0.17``
           is not grounded by ``3.0.18``.
package    ``package X`` / ``пакет X``, or ``X <version>`` where X looks like a package
           name: X is a source package or alias in the corpus.
cve        named by a cited entry, or in the question (its text or ``expected.ids``).
bug        ``#NNN`` / ``bug NNN`` / ``баг NNN``: named by a cited entry or the question.
date       ``YYYY-MM-DD``: the date of a cited entry, inside the question's period, or
           written in the question.
month      ``March 2025`` / ``марта 2025``: a cited entry's month, overlapping the period,
           or in the question.
year       a year 1990–2099: a cited entry's year, overlapping the period, or in the
           question.
count      ``N uploads|CVEs|bugs|entries|packages…`` (EN/RU) and figures rows
           (``- uploads: 4 vs 1``, ``- загрузок: 4 и 1``, ranking rows ``1. openssl: 12
           (3)``): equals a figure computed from the data: the number of cited entries,
           of their distinct CVE ids, bugs and packages; the question's
           ``expected.counts`` and numbers; or, for the question's period, the windows a
           trend compares it with, each year, month and date range the answer names:
           uploads, distinct CVE ids, CVE mentions, distinct bugs and uploads per kind of
           change (the trend YAML's ``change_kinds``, read as data), overall and per
           package in scope. A ranking row naming a package is checked against that
           package's figures only.
percent    ``N%``: within 1 point of 100·a/b or 100·(a−b)/b for two such figures.
email      an author e-mail in the corpus, or written in a cited entry or the question.
person     ``by <Name Surname>``, ``<Name> <e-mail>``, ``автор …``: an author name in the
           corpus (or its words, in order, within one), or written in a cited entry.
========== ===============================================================================

Anything written verbatim in a cited entry or in the question is grounded, whatever its
kind. Claims are counted once per (kind, token); citation markers such as ``[3]`` are
not claims.

Limits: a count is checked against the set of figures its unit can mean (for the
windows in play), not against the one figure its sentence refers to, so a wrong number
that equals another such figure passes; uploads per kind of change are accepted for any
counted noun. Person names are found only after "by", "author", "maintainer",
"uploader", "thanks to" (and Russian equivalents) or before an e-mail address.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import yaml

from knowledge_os.evals.truth._common import BUILTIN_DOMAINS_DIR
from knowledge_os.evals.truth.claims import CVE_RE, Claim, extract_claims, month_range, ranges
from knowledge_os.evals.truth.corpus import TruthCorpus, TruthEntry

__all__ = ["Claim", "check_answer", "extract_claims"]


@dataclass(slots=True)
class _Scope:
    corpus: TruthCorpus
    cited: list[TruthEntry]
    question_text: str
    question_ids: set[str]
    windows: list[tuple[date, date]]
    packages: set[str]
    figures: dict[str, set[int]]
    cited_text: str


def _upstream(version: str) -> str:
    v = version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def _version_of(corpus: TruthCorpus, package: str, token: str) -> bool:
    versions = corpus.versions.get(package, frozenset())
    return token in versions or any(_upstream(v) == token for v in versions)


@functools.cache
def _change_kinds() -> tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]:
    """The built-in trend domain's kinds of change, read from its YAML as data (a
    definition, not the domain's code): an upload counts once per kind whose patterns
    (case-insensitive) match one of its change lines."""
    path = BUILTIN_DOMAINS_DIR / "trend.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    return tuple((str(k["name"]), tuple(re.compile(p, re.IGNORECASE) for p in k["patterns"]))
                 for k in (spec or {}).get("change_kinds") or ())


# "Closes:" read leniently: items separated by commas and/or spaces ("Closes: #1 #2").
# Debian Policy's syntax wants commas; counting both ways accepts either definition.
_LOOSE_CLOSES_RE = re.compile(r"closes:\s*((?:(?:bug)?#?\s?\d+[,\s]*)+)", re.IGNORECASE)


def _loose_bugs(text: str) -> set[str]:
    return {str(int(n)) for m in _LOOSE_CLOSES_RE.finditer(text) for n in re.findall(r"#?\s?(\d{3,7})", m.group(1))}


def _figures(entries: list[TruthEntry]) -> dict[str, set[int]]:
    """Counts over entries by unit: uploads, distinct CVE ids and CVE mentions (ids once
    per upload), distinct bugs (by Policy's ``Closes:`` syntax and read leniently),
    packages, and uploads per kind of change ("kinds")."""
    kinds: dict[str, int] = {}
    for name, patterns in _change_kinds():
        kinds[name] = sum(1 for e in entries if any(p.search(ln) for p in patterns for ln in e.lines))
    return {"entries": {len(entries)},
            "cve": {len({c for e in entries for c in e.cves}), sum(len(e.cves) for e in entries)},
            "bugs": {len({b for e in entries for b in e.bugs}),
                     len(set().union(*(_loose_bugs(e.text) for e in entries)))},
            "packages": {len({e.package for e in entries})},
            "kinds": set(kinds.values())}


def _add(figures: dict[str, set[int]], found: dict[str, set[int]]) -> None:
    for unit, values in found.items():
        figures.setdefault(unit, set()).update(values)


def _period_figures(corpus: TruthCorpus, start: date, end: date, packages: set[str], authors: set[str],
                    figures: dict[str, set[int]]) -> None:
    entries = corpus.in_period(start, end)
    _add(figures, _figures(entries))
    for pkg in packages:
        mine = _figures([e for e in entries if e.package == pkg])
        _add(figures, mine)
        figures.setdefault(f"pkg:{pkg}", set()).update(*mine.values())
    for who in authors:  # uploads per named uploader (e-mail or name, case-folded)
        mine = [e for e in entries if who in (e.author_email, e.author_name.casefold())]
        figures.setdefault("entries", set()).add(len(mine))


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    return date(y, m + 1, min(d.day, 28))


def _compared_windows(period: tuple[date, date]) -> list[tuple[date, date]]:
    """The period and the windows a trend answer may compare it with: the same number
    of days just before it, and the previous month, quarter or year (whole, or the same
    span from its start), as the trend domain's like-for-like rule describes."""
    start, end = period
    length = end - start
    out = [period, (start - length - timedelta(days=1), start - timedelta(days=1))]
    for months in (1, 3, 12):
        prev = _add_months(start, -months)
        if start.day == 1:
            prev = date(prev.year, prev.month, 1)
        out += [(prev, start - timedelta(days=1)), (prev, min(prev + length, start - timedelta(days=1)))]
    return out


def _unit(noun: str) -> str:
    """The figure a counted noun refers to: entries, cve, bugs, packages, or any."""
    noun = noun.casefold()
    if noun.startswith(("cve", "security", "упоминани")):
        return "cve"
    if noun.startswith(("bug", "баг", "ошиб")):
        return "bugs"
    if noun.startswith(("package", "пакет")):
        return "packages"
    if noun.startswith(("upload", "entr", "version", "release", "загруз", "запис", "верси", "обновлени")):
        return "entries"
    return "any"


def _overlaps(a: tuple[date, date], windows: list[tuple[date, date]]) -> bool:
    """``a`` overlaps one of the windows (their last day widened by one: an exclusive
    end written as a date)."""
    return any(a[0] <= b[1] + timedelta(days=1) and b[0] <= a[1] for b in windows)


def _name_known(corpus: TruthCorpus, name: str) -> bool:
    folded = name.casefold()
    if folded in corpus.author_names:
        return True
    words = folded.split()
    for author in corpus.author_names:
        parts = author.split()
        it = iter(parts)
        if len(words) >= 2 and all(w in it for w in words):
            return True
    return False


def _verbatim(raw: str, text: str) -> bool:
    """``raw`` is written in ``text`` (case and spacing aside), not as part of a longer token."""
    if not raw.strip():
        return False
    pattern = r"\s+".join(re.escape(w) for w in raw.split())
    return re.search(rf"(?<![\w.+~-]){pattern}(?![\w+~-]|\.\w)", text, re.IGNORECASE) is not None


def _grounded(c: Claim, s: _Scope) -> bool:
    corpus = s.corpus
    if _verbatim(c.raw, s.cited_text) or _verbatim(c.raw, s.question_text):
        return True  # what a cited entry or the question says in so many words
    if c.kind == "cve":
        return c.token in s.question_ids or any(c.token in e.cves for e in s.cited)
    if c.kind == "bug":
        return (c.token in s.question_ids
                or any(c.token in e.bugs or re.search(rf"(?<!\d){c.token}(?!\d)", e.text) for e in s.cited))
    if c.kind == "email":
        return c.token in corpus.author_emails or c.token in s.cited_text.lower() or c.token in s.question_text.lower()
    if c.kind == "person":
        return _name_known(corpus, c.token) or c.token.casefold() in s.cited_text.casefold()
    if c.kind == "package":
        return corpus.package_of(c.token) is not None
    if c.kind == "version":
        if c.package:
            source = corpus.package_of(c.package)
            return source is not None and _version_of(corpus, source, c.token)
        if c.token in s.cited_text.split() or re.search(rf"(?<![\w.]){re.escape(c.token)}(?![\w.]*\w)", s.cited_text):
            return True
        scope = s.packages or set(corpus.versions)
        return any(_version_of(corpus, p, c.token) for p in scope)
    if c.kind == "date":
        day = date.fromisoformat(c.token)
        return (c.token in s.question_text or any(e.day == day for e in s.cited)
                or _overlaps((day, day), s.windows))
    if c.kind == "month":
        rng = month_range(c.token)
        return (any(e.day and rng[0] <= e.day <= rng[1] for e in s.cited) or _overlaps(rng, s.windows)
                or _month_in_question(c.token, s.question_text))
    if c.kind == "year":
        y = int(c.token)
        return (c.token in s.question_text or any(e.day and e.day.year == y for e in s.cited)
                or _overlaps((date(y, 1, 1), date(y, 12, 31)), s.windows))
    if c.kind == "count":
        if (source := s.corpus.package_of(c.unit.split(" (")[0].strip())) is not None:
            return int(c.token) in s.figures.get(f"pkg:{source}", set())  # a row naming a package
        unit = _unit(c.unit)
        pool = set().union(*s.figures.values()) if unit == "any" else s.figures.get(unit, set())
        return int(c.token) in pool | s.figures.get("any", set()) | s.figures.get("kinds", set())
    if c.kind == "percent":
        value = float(c.token)
        figs = sorted(set().union(*s.figures.values()))
        return any(b > 0 and (abs(100 * a / b - value) <= 1 or abs(100 * (a - b) / b - value) <= 1)
                   for a in figs for b in figs)
    raise ValueError(f"unknown claim kind {c.kind!r}")


def _month_in_question(token: str, question_text: str) -> bool:
    return any(m.startswith(token) or m == token for m in
               (c.token for c in extract_claims(question_text) if c.kind in ("month", "date")))


def _resolve(claims: list[Claim], corpus: TruthCorpus) -> list[Claim]:
    """Drop or demote what only looked like a package: a plain word after "package" that
    is no package of the corpus is prose ("the package description"); a word before an
    upstream-only version that is no package ("commit 2.74") leaves a bare version claim.
    A word before a version with a Debian revision ("nettle 3.4-2") stays a package. A
    bare version also written with its package is one claim, not two. A figures row
    whose label looks like a package name (lower-case, with a digit, ``+``, ``.`` or
    ``-``) but is none ("libglib2.0: 3") adds a package claim."""
    out: list[Claim] = []
    paired = {c.token for c in claims if c.kind == "version" and c.package}
    for c in claims:
        if c.kind == "package" and c.unit == "plain" and corpus.package_of(c.token) is None:
            continue
        if c.kind == "version" and not c.package and c.token in paired:
            continue  # "openssl 3.0.19-1" and a listing's bare "3.0.19-1": one claim
        label = c.unit.split(" (")[0].strip().lower()
        if (c.kind == "count" and re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", label) and re.search(r"[\d+.-]", label)
                and corpus.package_of(label) is None):
            named = Claim("package", label, raw=label)  # a ranking row naming a package-like word
            if named not in out:
                out.append(named)
        if c.kind == "version" and c.package and corpus.package_of(c.package) is None and "-" not in c.token:
            c = Claim("version", c.token, raw=c.token)
        if c not in out:
            out.append(c)
    return out


def check_answer(answer: str, *, cited_ids: list[str], corpus: TruthCorpus,
                 question: dict[str, Any]) -> dict[str, Any]:
    """Check every claim of an answer against the changelogs.

    Args:
        answer: The answer text the user reads.
        cited_ids: Doc ids the answer cites (``deb:<package>:<version>``; other ids and
            ids not in the corpus are ignored).
        corpus: :func:`~knowledge_os.evals.truth.load_corpus` of the same doc folder.
        question: A case (``{"query", "expected": {...}}``); ``query``, ``expected.ids``,
            ``expected.packages``, ``expected.period`` and ``expected.counts`` are used.

    Returns:
        ``{"claims": int, "ungrounded": [str, ...], "grounded_rate": float}``: number of
        distinct claims, the ungrounded ones (``"version curl 9.9.9"``,
        ``"cve CVE-2022-56292"``...), and grounded / claims (1.0 for no claims).
    """
    expected = question.get("expected") or {}
    query = str(question.get("query") or "")
    cited = [corpus.by_id[i] for i in cited_ids if i in corpus.by_id]
    qids = {str(i).lstrip("#").upper() for i in expected.get("ids") or ()}
    qids |= {c.token for c in extract_claims(query) if c.kind in ("cve", "bug")}
    period = None
    if p := expected.get("period"):
        period = (date.fromisoformat(p["from"]), date.fromisoformat(p["to"]))
    claims = _resolve(extract_claims(answer), corpus)
    packages = {e.package for e in cited}
    packages |= {s for s in (corpus.package_of(x) for x in expected.get("packages") or ()) if s}
    packages |= {s for s in (corpus.package_of(c.package) for c in claims if c.package) if s}
    # Figures by unit; "any" holds numbers whose unit is unknown (the question's, a ranking's).
    figures: dict[str, set[int]] = {}
    _add(figures, _figures(cited))
    authors = set()
    for c in claims:
        if c.kind == "count" and (source := corpus.package_of(c.unit.split(" (")[0].strip())):
            packages.add(source)  # a ranking row names a package: its counts are in scope
        if c.kind == "count":
            for part in re.split(r"[(),]", c.unit.casefold()):
                if part.strip() in corpus.author_emails or part.strip() in corpus.author_names:
                    authors.add(part.strip())
    top = expected.get("top_entities") or ()
    any_unit = {int(x) for x in expected.get("counts") or ()} | ({len(top)} if top else set())
    any_unit |= {int(x) for x in re.findall(r"(?<![\w.-])\d{1,6}(?![\w.-]*\d)", CVE_RE.sub(" ", query))}
    figures["any"] = any_unit
    compared = _compared_windows(period) if period else []
    windows = list(compared)
    for c in claims:
        if c.kind == "year":
            y = int(c.token)
            windows.append((date(y, 1, 1), date(y, 12, 31)))
        elif c.kind == "month":
            windows.append(month_range(c.token))
    windows += ranges(answer)
    for start, end in dict.fromkeys(windows):
        _period_figures(corpus, start, end, packages, authors, figures)
    scope = _Scope(corpus=corpus, cited=cited, question_text=query, question_ids=qids, windows=compared,
                   packages=packages, figures=figures,
                   cited_text="\n".join(f"{e.package} {e.version}\n{e.text}\n{e.author_name}" for e in cited))
    ungrounded = [str(c) for c in claims if not _grounded(c, scope)]
    n = len(claims)
    return {"claims": n, "ungrounded": ungrounded,
            "grounded_rate": 1.0 if n == 0 else (n - len(ungrounded)) / n}
