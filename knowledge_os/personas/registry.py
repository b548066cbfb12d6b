"""A request's persona: a profile name, or free text matched to the nearest profile.

:meth:`PersonaRegistry.resolve` turns what the caller gave (``--persona``, the API's and
the server's ``persona``) into a :class:`ResolvedPersona`:

- a name (lower-case words joined by ``-``, e.g. ``security-team``; case is folded) must be
  a profile's: an unknown one is an :class:`~knowledge_os.errors.UnknownNameError` naming
  it and listing the profiles;
- anything else (e.g. "the security team") is free text, embedded as a query and matched
  to the nearest profile of the offline index (:mod:`knowledge_os.personas.index`) by
  cosine; below ``personas.similarity_floor`` no persona is used and the result says so.

The resolved profile adds its summary to the synthesis prompts and reorders what an
answer lists (:func:`order_by_interests`); its name and version go into the manifest and
the answer-cache scope.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cachetools import LRUCache

from knowledge_os.domains.compose import has_kind
from knowledge_os.errors import UnknownNameError
from knowledge_os.personas.index import PersonaIndex, build_index
from knowledge_os.personas.profiles import NAME_RE, PersonaProfile, profile_version, summary_text
from knowledge_os.retrieval.base import Embedder

__all__ = ["PersonaRegistry", "ResolvedPersona", "order_by_interests"]

logger = logging.getLogger(__name__)

_RESOLVED_MAX = 1024  # free-text resolutions kept per process


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedPersona:
    """What a request's persona resolved to.

    Attributes:
        asked: The text the caller gave, stripped.
        method: ``name`` (a profile name), ``embedding`` (free text matched to a profile)
            or ``none`` (free text no profile is close to: no persona is used).
        name: The profile's name (None for ``none``).
        version: The profile's version (:func:`~knowledge_os.personas.profiles.profile_version`).
        similarity: Cosine of the free text and the nearest profile (``embedding`` and
            ``none``), 4 decimals.
        reader: What the prompts call the reader (``{persona}``).
        summary: The summary added to the synthesis prompts, 100..200 tokens.
        interests: Kinds of change listed first, most important first.
        note: One line saying how it was resolved (for the manifest and the user).
    """

    asked: str
    method: str
    name: str | None = None
    version: str | None = None
    similarity: float | None = None
    reader: str | None = None
    summary: str | None = None
    interests: tuple[str, ...] = ()
    note: str = ""

    def record(self) -> dict[str, Any]:
        """The manifest's ``persona`` (references only: no summary text)."""
        return {"asked": self.asked, "method": self.method, "name": self.name, "version": self.version,
                "similarity": self.similarity, "note": self.note}

    def state(self) -> dict[str, Any]:
        """The run state's ``persona`` (:class:`knowledge_os.graph.state.PersonaState`)."""
        return {**self.record(), "reader": self.reader, "summary": self.summary, "interests": list(self.interests)}

    def scope(self) -> dict[str, str] | None:
        """The answer-cache scope part: the profile's name and version (None: no persona)."""
        return {"name": self.name, "version": self.version} if self.name and self.version else None


def _resolved(asked: str, profile: PersonaProfile, method: str, similarity: float | None,
              note: str) -> ResolvedPersona:
    return ResolvedPersona(asked=asked, method=method, name=profile.name, version=profile_version(profile),
                           similarity=similarity, reader=profile.reader, summary=summary_text(profile),
                           interests=profile.interests, note=note)


@dataclass(eq=False, kw_only=True)
class PersonaRegistry:
    """Profiles, their offline index and the resolution of a request's persona.

    Attributes:
        profiles: Profiles by name (:func:`~knowledge_os.personas.profiles.load_profiles`).
        embedder: The project's embedder (profiles as passages, free text as a query).
        index_folder: Where the index is stored (``<home>/personas``).
        similarity_floor: Free text whose nearest profile is below this cosine gets no persona.
        batch_size: Profiles per embedding call when building.
        query_embed: Embeds free text as a query (default ``embedder.embed_query``; the
            services pass their cached query embedder).
    """

    profiles: Mapping[str, PersonaProfile]
    embedder: Embedder
    index_folder: Path
    similarity_floor: float
    batch_size: int = 32
    query_embed: Callable[[str], np.ndarray] | None = None
    _index: PersonaIndex | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _resolved: LRUCache = field(default_factory=lambda: LRUCache(maxsize=_RESOLVED_MAX), init=False, repr=False)

    @property
    def names(self) -> list[str]:
        """The profile names, sorted."""
        return sorted(self.profiles)

    def build(self) -> PersonaIndex:
        """Embed every profile (in batches) and store the index; returns it."""
        index = build_index(self.profiles, self.embedder, batch_size=self.batch_size)
        index.save(self.index_folder)
        with self._lock:
            self._index = index
            self._resolved.clear()
        logger.info("persona index built: %d profiles, embedder %s", len(index.names), index.embedder)
        return index

    def index(self) -> PersonaIndex:
        """The stored index; built (and stored) first when it is missing or stale, with a warning."""
        with self._lock:
            if self._index is not None:
                return self._index
        index = PersonaIndex.load(self.index_folder)
        why = "missing" if index is None else index.stale_for(self.profiles, self.embedder.name)
        if why is None:
            with self._lock:
                self._index = index
            return index  # type: ignore[return-value]
        logger.warning("persona index %s (%s): building it now; run `kos persona build` after editing profiles",
                       self.index_folder, why)
        return self.build()

    def get(self, name: str) -> PersonaProfile:
        """The profile called ``name``.

        Raises:
            UnknownNameError: no such profile (the message lists the profiles).
        """
        try:
            return self.profiles[name]
        except KeyError:
            raise UnknownNameError("persona profile", name, self.profiles) from None

    def resolve(self, asked: str | None) -> ResolvedPersona | None:
        """Resolve a request's persona (see the module docstring).

        Args:
            asked: A profile name or free text; None or blank: no persona.

        Returns:
            The resolution, or None when no persona was asked for.

        Raises:
            UnknownNameError: ``asked`` is a name (no spaces, ``NAME_RE`` after folding
                case) that no profile has.
        """
        text = " ".join((asked or "").split())
        if not text:
            return None
        with self._lock:
            hit = self._resolved.get(text)
        if hit is not None:
            return hit
        if NAME_RE.fullmatch(text.lower()):
            profile = self.get(text.lower())
            result = _resolved(text, profile, "name", None, f"profile {profile.name!r} by name")
            with self._lock:
                self._resolved[text] = result
            return result
        ranked = self.index().nearest((self.query_embed or self.embedder.embed_query)(text))
        if not ranked:
            result = ResolvedPersona(asked=text, method="none", note="no persona profiles: answered without a persona")
        else:
            name, sim = ranked[0]
            if sim >= self.similarity_floor:
                result = _resolved(text, self.profiles[name], "embedding", sim,
                                   f"{text!r} matched profile {name!r} (cosine {sim:.3f} >= floor "
                                   f"{self.similarity_floor})")
            else:
                result = ResolvedPersona(
                    asked=text, method="none", similarity=sim,
                    note=(f"no persona profile is close to {text!r} (nearest {name!r}, cosine {sim:.3f} < floor "
                          f"{self.similarity_floor}): answered without a persona"))
        with self._lock:
            self._resolved[text] = result
        return result


def order_by_interests(listing: Sequence[Mapping[str, Any]], interests: Sequence[str],
                       kinds: Sequence[tuple[str, Sequence[str]]]) -> list[Any]:
    """The listing reordered by a persona's interests; nothing dropped or added.

    An entry goes to the rank of the first interest any of its lines matches (a kind's
    patterns, e.g. ``security``: a CVE id, "security", "overflow", a DSA/DLA number), the
    entries matching none after them; the order inside each rank is the listing's own
    (a stable sort).

    Args:
        listing: Documents (state dicts with ``text``), in the order they would be listed.
        interests: Kinds of change, most important first.
        kinds: ``(kind, regex patterns)`` of the domain (its ``change_kinds``, or
            :data:`knowledge_os.domains.compose.DEFAULT_CHANGE_KINDS`).

    Returns:
        A permutation of ``listing``.
    """
    table = dict(kinds)
    wanted = [table[k] for k in interests if k in table]

    def rank(doc: Mapping[str, Any]) -> int:
        return next((i for i, pats in enumerate(wanted) if has_kind(doc, pats)), len(wanted))

    return sorted(listing, key=rank)
