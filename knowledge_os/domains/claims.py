"""Checkable claims in a draft's prose, and where each one comes from.

Two pure functions. :func:`extract_claims` finds every token of a draft that states a
fact someone could check: a version, a package name, a CVE id, a bug number, a date or
period, a count or percentage, a person's name, an e-mail address. :func:`trace_claims`
looks for each one in the evidence the answer may rest on: the documents it cites (their
text and metadata: package/channel, version, date, author), the figures the domain
computed (``stats["numbers"]`` and the statistics text), the entity names the domain
computed, the asked period and the question itself. A claim found nowhere is
*ungrounded*: ``verify`` lists it as an issue naming the token and the draft cannot pass.

Rules (each one is tested in ``tests/unit/test_claims.py``):

- Scope. A claim in a sentence that carries ``[n]`` markers is traced to the documents
  cited there; a claim in a sentence without markers to every document the answer lists.
- Versions match exactly at token boundaries: ``3.0.17`` is grounded by ``3.0.17`` or by
  ``3.0.17-1~deb12u3`` (the upstream part of a Debian version), never by ``3.0.18``,
  ``3.0.1`` or ``13.0.17``.
- A package name written just before a version (``curl 7.88.1``) must belong to a scoped
  document whose text has that version: a swapped package is caught. Function words
  ("to", "version") and verb forms ("importing", "upgraded") before a version are not
  package names.
- CVE ids and bug numbers named in a sentence that cites documents must be in those
  documents; in a sentence that cites nothing, the question may ground them.
- Dates are checked at the granularity written: a day, a month (with or without year),
  a year or a quarter must equal the date of a scoped document, a date written in its
  text, a boundary of the asked or computed period, or a date in the question.
- Numbers (counts) must be a computed figure, a number in a scoped document, how many
  CVE ids a cited document names (:func:`cve_ids`), in the question or in the statistics
  text. A percentage must be written as a percentage
  there (``+100%``): a count of the same value does not ground it.
- A person's name (two or three capitalised words) must have every word in a scoped
  document's author or text; an e-mail address must appear exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = [
    "CLAIM_KINDS",
    "Claim",
    "Evidence",
    "Trace",
    "cve_ids",
    "extract_claims",
    "trace_claims",
    "ungrounded",
]

CLAIM_KINDS: tuple[str, ...] = ("version", "package", "cve", "bug", "date", "number", "person", "email")
"""Every kind of claim; a domain YAML chooses a subset (``grounding.claims``)."""

_MONTHS_EN = ("january", "february", "march", "april", "may", "june", "july", "august",
              "september", "october", "november", "december")
_MONTH_ABBR = {m[:3]: i + 1 for i, m in enumerate(_MONTHS_EN)} | {"sept": 9}
# Russian month stems (any case ending): январ(ь|я|е), феврал, март(а|е), апрел, ма(й|я|е) ...
_MONTHS_RU = (("январ", 1), ("феврал", 2), ("март", 3), ("апрел", 4), ("ма[йяе]", 5), ("июн", 6),
              ("июл", 7), ("август", 8), ("сентябр", 9), ("октябр", 10), ("ноябр", 11), ("декабр", 12))

_CITE = re.compile(r"\[(\d{1,3})\]")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE)
_BUG = re.compile(r"(?:#|\b(?:bug|баг|closes:?)\s*#?)(\d{3,8})\b", re.IGNORECASE)
_ISO_DAY = re.compile(r"\b((?:19|20)\d{2})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\b")
_ISO_MONTH = re.compile(r"\b((?:19|20)\d{2})-(0[1-9]|1[0-2])\b(?!-\d)")
_MONTH_NAMES_EN = "|".join(_MONTHS_EN + tuple(_MONTH_ABBR))
_DAY_MONTH_YEAR_EN = re.compile(
    rf"\b(?:(\d{{1,2}})\s+)?({_MONTH_NAMES_EN})\.?(?:\s+(\d{{1,2}})(?:st|nd|rd|th)?,?)?(?:\s+((?:19|20)\d{{2}}))?\b",
    re.IGNORECASE,
)
_MONTH_RU = re.compile(
    r"(?:\b(\d{1,2})\s+)?\b(" + "|".join(stem for stem, _ in _MONTHS_RU) + r")[а-яё]*(?:\s+((?:19|20)\d{2}))?",
    re.IGNORECASE,
)
_QUARTER = re.compile(r"\b(?:Q([1-4])\s*((?:19|20)\d{2})|((?:19|20)\d{2})\s*Q([1-4]))\b", re.IGNORECASE)
_YEAR = re.compile(r"(?<![\w.-])((?:19|20)\d{2})(?!\w|[.-]\d)")
# A version: digits with at least one dot, optional epoch, Debian revision and suffixes.
_VERSION = re.compile(
    r"(?<![\w.~+:-])(?:\d+:)?\d+(?:\.[0-9A-Za-z]+)+(?:[-~+][0-9A-Za-z]+(?:[.~+][0-9A-Za-z]+)*)*"
)
_NUMBER = re.compile(r"(?<![\w.,/-])(\d+(?:[.,]\d+)?)(\s?%|\s?процент\w*)?(?![\w-]|[.,]\d)")
_PKG_WORD = re.compile(r"([a-z0-9][a-z0-9+.-]*[a-z0-9+]|[a-z])\s*$", re.IGNORECASE)
_NAME_EN = re.compile(r"\b[A-Z][a-z]+(?:[ ][A-Z][a-z]+){1,2}\b")
_NAME_RU = re.compile(r"\b[А-ЯЁ][а-яё]+(?:[ ][А-ЯЁ][а-яё]+){1,2}\b")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


def cve_ids(text: str) -> list[str]:
    """The distinct CVE ids ``text`` names, upper-case, in order of first mention. Their
    count is evidence for a count claim about a cited entry ("5 CVE ids in all")."""
    return list(dict.fromkeys(m.upper() for m in _CVE.findall(text)))


# Words before a version that are not package names ("upgraded to 3.0.19", "version 2.1").
_NOT_PACKAGES = frozenset(
    "a an and as at by for from in into is of on or since the to until up upstream version versions"
    " release releases v vs was were with import imported new now got reached become became"
    " версия версии версию до с на в и".split()
)
# Capitalised words that start sentences or name things other than people.
_NOT_NAMES = frozenset(
    """the this these those that there then in on at for from since between and or but
    a an it its is was were no not nothing yes which what when where who how why all some
    most many several new fixed fix fixes security debian ubuntu linux gnu windows
    release released upstream version update updated updates added removed import imported
    bump bumped standards closes figures window examples summary changes change entries
    entry uploads upload package packages source team project maintainer maintainers
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday cve dsa dla bug bugs
    potential possible out use null open free first last next previous both each
    что в с по для и или на из за от до это эти все как где когда
    безопасность исправления исправление изменения обновления новая новые версия""".split()
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One checkable token of a draft.

    Attributes:
        kind: One of :data:`CLAIM_KINDS`.
        token: The text as written (e.g. ``"3.0.17"``, ``"April 2026"``, ``"47%"``).
        value: Normalised value: upper-case CVE id, bug digits, lower-case package or
            e-mail, ``"YYYY"``/``"YYYY-MM"``/``"YYYY-MM-DD"``/``"--MM"`` (month without
            year)/``"YYYY-Qn"`` for dates, the number as written without ``%``.
        start: Character offset of the token in the draft.
        cites: The ``[n]`` markers of the sentence holding the claim (1-based).
        version: For a package written before a version, that version.
    """

    kind: str
    token: str
    value: str
    start: int
    cites: tuple[int, ...] = ()
    version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """What claims may be traced to.

    Attributes:
        documents: The documents the answer lists, in ``[n]`` order (state dicts with
            ``text``, ``channel``, ``date``, ``title``, ``metadata``).
        numbers: Figures the domain computed (``stats["numbers"]``, counts of listed
            entries, how many CVE ids each cited entry names).
        texts: Framework-written text computed from the data (the statistics table).
        names: Entity names the domain computed (packages, maintainers of a trend).
        question: The question as asked.
        periods: ``(from, to)`` ISO days (inclusive) of the asked or computed windows.
        today: "Today" of the run (ISO day); its year and month are grounded.
    """

    documents: Sequence[Mapping[str, Any]] = ()
    numbers: Iterable[float] = ()
    texts: Sequence[str] = ()
    names: Iterable[str] = ()
    question: str = ""
    periods: Sequence[tuple[str, str]] = ()
    today: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """A claim and where it was found: ``source`` is ``"[n]"``, ``"figures"``,
    ``"question"``, ``"period"`` or None (ungrounded)."""

    claim: Claim
    source: str | None = None

    @property
    def grounded(self) -> bool:
        return self.source is not None


@dataclass(slots=True)
class _Masked:
    """The draft with already-classified spans blanked out (offsets are kept)."""

    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)

    def take(self, start: int, end: int) -> None:
        self.text = self.text[:start] + " " * (end - start) + self.text[end:]


def _sentences(text: str) -> list[tuple[int, int, tuple[int, ...]]]:
    """``(start, end, cited numbers)`` of each sentence. A marker right after the end
    punctuation (``... fixed it. [2]``) belongs to the sentence before it."""
    out: list[tuple[int, int, tuple[int, ...]]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        rest = text[m.end():]
        lead = re.match(r"(?:\[\d{1,3}\]\s*)+", rest)
        end = m.end() + (lead.end() if lead else 0)
        out.append((start, end, tuple(int(n) for n in _CITE.findall(text[start:end]))))
        start = end
    if start < len(text):
        out.append((start, len(text), tuple(int(n) for n in _CITE.findall(text[start:]))))
    return out


def _month_value(year: str | None, month: int, day: str | None) -> str:
    """A written month as ``YYYY-MM-DD``, ``YYYY-MM`` or ``--MM`` (no year)."""
    if day and year:
        return f"{year}-{month:02d}-{int(day):02d}"
    if year:
        return f"{year}-{month:02d}"
    return f"--{month:02d}"


def extract_claims(text: str, kinds: Iterable[str] = CLAIM_KINDS, *,
                   vocabulary: Iterable[str] = ()) -> list[Claim]:
    """Every checkable claim of ``text``, in order of position.

    Tokens are classified once, most specific first (e-mail, CVE id, bug number, date,
    version, package, year, number, person), so ``2026-04-03`` is a date and not three
    numbers, and ``3.0.19`` is a version and not a number. ``kinds`` filters what is
    returned, not how tokens are classified.

    Args:
        text: A draft's prose (the LLM's summary), ``[n]`` markers included.
        kinds: Claim kinds to return (names from :data:`CLAIM_KINDS`).
        vocabulary: Package or channel names known to the corpus; each one written as
            a word in ``text`` is a package claim (names of 3 letters or fewer and
            plain words such as ``the`` are skipped).

    Returns:
        Claims sorted by ``start``.

    Raises:
        ValueError: an unknown kind (the message lists the allowed ones).
    """
    wanted = set(kinds)
    unknown = wanted - set(CLAIM_KINDS)
    if unknown:
        raise ValueError(f"unknown claim kind(s) {sorted(unknown)}; allowed: {', '.join(CLAIM_KINDS)}")
    sentences = _sentences(text)

    def cites_at(pos: int) -> tuple[int, ...]:
        for s, e, cites in sentences:
            if s <= pos < e:
                return cites
        return ()

    vocab = {v.lower() for v in vocabulary}
    m_text = _Masked(_CITE.sub(lambda m: " " * len(m[0]), text))
    found: list[Claim] = []

    def add(kind: str, token: str, value: str, start: int, end: int, version: str | None = None) -> None:
        m_text.take(start, end)
        found.append(Claim(kind=kind, token=token, value=value, start=start, cites=cites_at(start),
                           version=version))

    for m in list(_EMAIL.finditer(m_text.text)):
        add("email", m[0], m[0].lower(), m.start(), m.end())
    for m in list(_CVE.finditer(m_text.text)):
        add("cve", m[0], m[0].upper(), m.start(), m.end())
    for m in list(_BUG.finditer(m_text.text)):
        add("bug", m[0].strip(), m[1], m.start(), m.end())
    for m in list(_QUARTER.finditer(m_text.text)):
        q, y = (m[1], m[2]) if m[1] else (m[4], m[3])
        add("date", m[0], f"{y}-Q{q}", m.start(), m.end())
    for m in list(_ISO_DAY.finditer(m_text.text)):
        add("date", m[0], m[0], m.start(), m.end())
    for m in list(_ISO_MONTH.finditer(m_text.text)):
        add("date", m[0], m[0], m.start(), m.end())
    for m in list(_DAY_MONTH_YEAR_EN.finditer(m_text.text)):
        name = m[2].lower().rstrip(".")
        if name == "may" and not (m[1] or m[3] or m[4]):
            continue  # "may" alone is a verb far more often than a month
        month = _MONTHS_EN.index(name) + 1 if name in _MONTHS_EN else _MONTH_ABBR[name]
        value = _month_value(m[4], month, m[1] or m[3])
        add("date", m[0].strip(), value, m.start(), m.end())
    for m in list(_MONTH_RU.finditer(m_text.text)):
        stem = m[2].lower()
        month = next(n for s, n in _MONTHS_RU if re.fullmatch(s, stem))
        value = _month_value(m[3], month, m[1])
        add("date", m[0].strip(), value, m.start(), m.end())
    for m in list(_VERSION.finditer(m_text.text)):
        token = m[0].rstrip(".")
        add("version", token, token, m.start(), m.start() + len(token))
        lo = max(0, m.start() - 60)
        before = _PKG_WORD.search(m_text.text[lo:m.start()])
        word = before[1].lower() if before else ""
        verb = len(word) > 4 and word.endswith(("ing", "ed")) and word not in vocab
        if before and word not in _NOT_PACKAGES and not verb and not word[0].isdigit():
            p_start = lo + before.start(1)
            add("package", before[1], before[1].lower(), p_start, p_start + len(before[1]), version=token)
    names = sorted({v for v in vocab if len(v) > 3 and v not in _NOT_NAMES},
                   key=len, reverse=True)
    for name in names:
        for m in list(re.finditer(rf"(?<![\w.+-]){re.escape(name)}(?![\w+-]|\.\w)", m_text.text, re.IGNORECASE)):
            add("package", m[0], name, m.start(), m.end())
    for m in list(_YEAR.finditer(m_text.text)):
        add("date", m[0], m[1], m.start(), m.end())
    for m in list(_NUMBER.finditer(m_text.text)):
        add("number", m[0].strip(), m[1].replace(",", "."), m.start(), m.end())
    for rx in (_NAME_EN, _NAME_RU):
        for m in list(rx.finditer(m_text.text)):
            words = m[0].split()
            while words and words[0].lower() in _NOT_NAMES:
                words = words[1:]
            if len(words) < 2 or any(w.lower() in _NOT_NAMES for w in words):
                continue
            start = m.start() + m[0].index(words[0])
            add("person", " ".join(words), " ".join(words).lower(), start, start + len(" ".join(words)))
    return sorted((c for c in found if c.kind in wanted), key=lambda c: c.start)


def _version_in(version: str, text: str) -> bool:
    """``version`` as a whole token of ``text``, or as the upstream part of a Debian
    version there (followed by ``-``, ``~`` or ``+`` and a revision)."""
    rx = rf"(?<![\w.~+-]){re.escape(version)}(?![\w]|\.[0-9A-Za-z])"
    return re.search(rx, text) is not None


def _doc_blob(doc: Mapping[str, Any]) -> str:
    md = doc.get("metadata") or {}
    meta = " ".join(str(v) for v in md.values() if isinstance(v, (str, int, float)))
    return " ".join((str(doc.get("title", "")), str(doc.get("channel", "")), str(doc.get("date", "")),
                     meta, str(doc.get("text", ""))))


def _dates_of(texts: Iterable[str]) -> set[str]:
    """Every ISO day, month and year written in ``texts``, and each day's month and year."""
    out: set[str] = set()
    for t in texts:
        for m in _ISO_DAY.finditer(t):
            out.update({m[0], m[0][:7], m[0][:4], f"--{m[0][5:7]}", _quarter(m[0])})
        for c in extract_claims(t, ("date",)):
            out.add(c.value)
            if len(c.value) >= 7 and c.value[:4].isdigit() and c.value[4] == "-" and "Q" not in c.value:
                out.update({c.value[:4], f"--{c.value[5:7]}", _quarter(c.value[:7] + "-01")})
    return out


def _quarter(day: str) -> str:
    return f"{day[:4]}-Q{(int(day[5:7]) - 1) // 3 + 1}"


def _period_dates(periods: Sequence[tuple[str, str]], today: str | None) -> set[str]:
    out: set[str] = set()
    days = [d for p in periods for d in p if d] + ([today] if today else [])
    for d in days:
        try:
            date.fromisoformat(d)
        except ValueError:
            continue
        out.update({d, d[:7], d[:4], f"--{d[5:7]}", _quarter(d)})
    for a, b in periods:  # every year and quarter a window touches
        try:
            lo, hi = date.fromisoformat(a), date.fromisoformat(b)
        except ValueError:
            continue
        for y in range(lo.year, hi.year + 1):
            out.add(str(y))
        m = lo.replace(day=1)
        while m <= hi:
            out.add(_quarter(m.isoformat()))
            m = m.replace(year=m.year + (m.month == 12), month=m.month % 12 + 1)
    return out


def _numbers_in(text: str) -> set[float]:
    return {float(c.value) for c in extract_claims(text, ("number",))} | {
        float(c.value) for c in extract_claims(text, ("date",)) if c.value.isdigit()}


def _percents_in(text: str) -> set[float]:
    return {float(c.value) for c in extract_claims(text, ("number",))
            if c.token.rstrip().endswith(("%", "процент", "процента", "процентов"))}


def trace_claims(claims: Sequence[Claim], evidence: Evidence) -> list[Trace]:
    """Trace each claim to the evidence (see the module docstring for the rules).

    Args:
        claims: From :func:`extract_claims`.
        evidence: Documents, figures, period and question the answer may rest on.

    Returns:
        One :class:`Trace` per claim, in the same order; ``source`` None = ungrounded.
    """
    docs = list(evidence.documents)
    blobs = [_doc_blob(d) for d in docs]
    question = evidence.question or ""
    q_lower = question.lower()
    q_claims = extract_claims(question) if question else []
    q_values = {c.value for c in q_claims}
    q_dates = _dates_of([question])
    figures = {float(n) for n in evidence.numbers}
    fig_text = "\n".join(evidence.texts)
    for t in evidence.texts:
        figures |= _numbers_in(t)
    names = {n.lower() for n in evidence.names}
    period_dates = _period_dates(evidence.periods, evidence.today) | _dates_of(evidence.texts)
    doc_numbers: dict[int, set[float]] = {}
    doc_dates: dict[int, set[str]] = {}

    def scope(c: Claim) -> list[int]:
        valid = [n - 1 for n in c.cites if 1 <= n <= len(docs)]
        return valid or list(range(len(docs)))

    def in_docs(c: Claim, test: Any) -> str | None:
        for i in scope(c):
            if test(i):
                return f"[{i + 1}]"
        return None

    def numbers_of(i: int) -> set[float]:
        if i not in doc_numbers:
            doc_numbers[i] = _numbers_in(blobs[i])
        return doc_numbers[i]

    def dates_of(i: int) -> set[str]:
        if i not in doc_dates:
            d = docs[i]
            doc_dates[i] = _dates_of([str(d.get("date", "")), str((d.get("metadata") or {}).get("date", "")),
                                      str(d.get("text", ""))])
        return doc_dates[i]

    out: list[Trace] = []
    for c in claims:
        source: str | None = None
        if c.kind == "cve":
            source = in_docs(c, lambda i: c.value in blobs[i].upper())
            if source is None and not c.cites and c.value in question.upper():
                source = "question"
        elif c.kind == "bug":
            rx = re.compile(rf"(?<!\d){re.escape(c.value)}(?!\d)")
            source = in_docs(c, lambda i: rx.search(blobs[i]) is not None)
            if source is None and not c.cites and rx.search(question):
                source = "question"
        elif c.kind == "version":
            source = in_docs(c, lambda i: _version_in(c.value, blobs[i]))
            if source is None and _version_in(c.value, question):
                source = "question"
            if source is None and _version_in(c.value, fig_text):
                source = "figures"
        elif c.kind == "package":
            def has_pkg(i: int) -> bool:
                d = docs[i]
                own = {str(d.get("channel", "")).lower(), str((d.get("metadata") or {}).get("package", "")).lower()}
                if c.version is not None:
                    return c.value in own and _version_in(c.version, blobs[i])
                return c.value in own or re.search(rf"(?<![\w+-]){re.escape(c.value)}(?![\w+-])",
                                                   blobs[i].lower()) is not None
            source = in_docs(c, has_pkg)
            if source is None and re.search(rf"(?<![\w+-]){re.escape(c.value)}(?![\w+-])", q_lower) and (
                    c.version is None or _version_in(c.version, question)):
                source = "question"
            if source is None and c.version is None and (c.value in names or c.value in fig_text.lower()):
                source = "figures"
        elif c.kind == "date":
            source = in_docs(c, lambda i: c.value in dates_of(i))
            if source is None and c.value in period_dates:
                source = "period"
            if source is None and (c.value in q_dates or c.value in q_values):
                source = "question"
        elif c.kind == "number" and c.token.rstrip().endswith(("%", "процент", "процента", "процентов")):
            # A percentage must be written as one in the evidence: any count of the same
            # value does not ground "rose 10%".
            v = float(c.value)
            if any(v in _percents_in(t) for t in evidence.texts):
                source = "figures"
            if source is None:
                source = in_docs(c, lambda i: v in _percents_in(blobs[i]))
            if source is None and v in _percents_in(question):
                source = "question"
        elif c.kind == "number":
            v = float(c.value)
            if v in figures:
                source = "figures"
            if source is None:
                source = in_docs(c, lambda i: v in numbers_of(i))
            if source is None and v in _numbers_in(question):
                source = "question"
        elif c.kind == "person":
            words = c.value.split()

            def has_name(i: int) -> bool:
                b = blobs[i].lower()
                return all(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", b) for w in words)
            source = in_docs(c, has_name)
            if source is None and c.value in names:
                source = "figures"
            if source is None and all(w in q_lower for w in words):
                source = "question"
        elif c.kind == "email":
            source = in_docs(c, lambda i: c.value in blobs[i].lower())
            if source is None and c.value in q_lower:
                source = "question"
        out.append(Trace(claim=c, source=source))
    return out


def ungrounded(traces: Iterable[Trace]) -> list[Claim]:
    """The claims no evidence grounds, in order, one per distinct (kind, token)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for t in traces:
        key = (t.claim.kind, t.claim.token)
        if not t.grounded and key not in seen:
            seen.add(key)
            out.append(t.claim)
    return out
