"""The language of a question, and picking a framework-written line in it.

Every line the framework writes into an answer (headers, "and N more", figure labels,
the data-written summary) exists in each supported language; modules keep their own
tables of ``{lang: template}`` and choose with :func:`pick`. The language is the
question's, from :func:`detect_language` (stored in ``QueryAnalysis.lang``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

__all__ = ["LANGUAGES", "Lang", "detect_language", "pick"]

Lang = Literal["en", "ru"]
LANGUAGES: tuple[Lang, ...] = ("en", "ru")

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z]")
# Package names, ids and versions are Latin in any language: they do not vote.
_NEUTRAL = re.compile(r"CVE-\d{4}-\d+|#\d+|\b[\w.+-]*\d[\w.+~:-]*\b|\b[a-z0-9][a-z0-9.+-]*[0-9+]\b")
# A quotation is content, not the asker's language: «…», "…", “…”, „…“.
_QUOTED = re.compile(r"«[^»]*»|\"[^\"]*\"|“[^”]*”|„[^“”]*[“”]")


def detect_language(text: str) -> Lang:
    """``"ru"`` when Cyrillic letters are at least a third of the letters outside ids,
    versions, package-like tokens and quotations (a Russian question quoting an English
    changelog line is Russian); ``"en"`` otherwise (also for empty text).

    Args:
        text: A question or an answer's prose.
    """
    unquoted = _QUOTED.sub(" ", text)
    rest = _NEUTRAL.sub(" ", unquoted if _LATIN.search(unquoted) or _CYRILLIC.search(unquoted) else text)
    cyr = len(_CYRILLIC.findall(rest))
    lat = len(_LATIN.findall(rest))
    if cyr and cyr * 3 >= (cyr + lat):
        return "ru"
    return "en"


def pick(table: Mapping[str, str], lang: str, **fields: object) -> str:
    """``table[lang]`` (English when the language is missing), formatted with ``fields``.

    Raises:
        KeyError: the table has no English entry either, or a field is missing.
    """
    template = table.get(lang) or table["en"]
    return template.format(**fields) if fields else template
