"""Persona profiles: who an answer is for, as data (YAML), and the summary they add.

The seed (``shared/seeds/002``, section 9, "Model Personalization") computes persona
embeddings offline in batches and adds a lightweight summary of at most 100-200 tokens
per request. A profile here is:

- ``name``: lower-case words joined by ``-`` (``security-team``), what ``--persona`` names;
- ``title``: what the prompts call the reader (``{persona}``; default: the name's words);
- ``description``: who the reader is and what they want, in prose;
- ``interests``: kinds of change, most important first (the names of
  :data:`knowledge_os.domains.compose.DEFAULT_CHANGE_KINDS`); entries of these kinds are
  listed first (:func:`knowledge_os.personas.registry.order_by_interests`).

The summary (:func:`summary_text`) is the description plus one line naming the interests;
it must be :data:`SUMMARY_MIN_TOKENS`..:data:`SUMMARY_MAX_TOKENS` tokens, counted by the
LLM's tokenizer when there is one (:mod:`knowledge_os.personas.tokens`). Profiles come from
the package's ``builtin/personas.yaml``, then ``$KOS_HOME/personas.yaml``, then the files
of the setting ``personas.files``; a later profile replaces an earlier one of the same name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from knowledge_os._yaml import load_mapping
from knowledge_os.cache.keys import stable_json
from knowledge_os.cache.normalizer import normalize_and_hash
from knowledge_os.domains.compose import DEFAULT_CHANGE_KINDS, KIND_LABELS
from knowledge_os.errors import ConfigError

__all__ = [
    "BUILTIN_FILE",
    "INTEREST_KINDS",
    "NAME_RE",
    "SUMMARY_MAX_TOKENS",
    "SUMMARY_MIN_TOKENS",
    "PersonaConfigError",
    "PersonaProfile",
    "load_profiles",
    "profile_text",
    "profile_version",
    "summary_text",
]

SUMMARY_MIN_TOKENS = 100
SUMMARY_MAX_TOKENS = 200
"""The seed's bound on the per-request persona summary (``shared/seeds/002``, section 9)."""

BUILTIN_FILE = Path(__file__).resolve().parent / "builtin" / "personas.yaml"
NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
"""A profile name: lower-case letters and digits, words joined by ``-``."""
INTEREST_KINDS: tuple[str, ...] = tuple(name for name, _ in DEFAULT_CHANGE_KINDS)


class PersonaConfigError(ConfigError):
    """A persona file is wrong: ``<file>: <key path>: <problem>``.

    Attributes:
        path: The YAML file.
        key_path: Where in it, e.g. ``personas[1].interests``.
    """

    def __init__(self, path: str, key_path: str, message: str) -> None:
        self.path = path
        self.key_path = key_path
        super().__init__(f"{path}: {key_path or '(file)'}: {message}")


def _known_kind(kind: str) -> str:
    if kind not in INTEREST_KINDS:
        raise ValueError(f"unknown kind of change {kind!r}; allowed: {', '.join(INTEREST_KINDS)}")
    return kind


class PersonaProfile(BaseModel):
    """One persona profile (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_RE.pattern, max_length=64)
    title: str | None = Field(default=None, min_length=1, max_length=80)
    description: str = Field(min_length=1)
    interests: tuple[Annotated[str, AfterValidator(_known_kind)], ...] = Field(min_length=1)

    @property
    def reader(self) -> str:
        """What the prompts call the reader: the title, else the name's words."""
        return self.title or self.name.replace("-", " ")


def summary_text(profile: PersonaProfile) -> str:
    """The summary added to the synthesis prompts: the description and the interests."""
    kinds = ", ".join(KIND_LABELS[k]["en"] if k in KIND_LABELS else k for k in profile.interests)
    description = " ".join(profile.description.split())
    return f"{description} Most important to them, in this order: {kinds}; list such entries first."


def profile_text(profile: PersonaProfile) -> str:
    """The text embedded for a profile (a passage): its reader, name and summary."""
    return f"{profile.reader} ({profile.name}). {summary_text(profile)}"


def profile_version(profile: PersonaProfile) -> str:
    """12 hex chars naming the profile's content (any edit changes it)."""
    return normalize_and_hash(stable_json(profile.model_dump(mode="json")))[:12]


def _profiles_of(path: Path, raw: dict, count_tokens: Callable[[str], int],
                 tokenizer: str) -> list[PersonaProfile]:
    extra = sorted(set(raw) - {"personas"})
    if extra:
        raise PersonaConfigError(str(path), extra[0], "unknown key; the file holds `personas:` only")
    items = raw.get("personas")
    if not isinstance(items, list):
        raise PersonaConfigError(str(path), "personas", "expected a list of profiles")
    out: list[PersonaProfile] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"personas[{i}]"
        try:
            profile = PersonaProfile.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise PersonaConfigError(str(path), f"{where}.{loc}" if loc else where, err["msg"]) from exc
        if profile.name in seen:
            raise PersonaConfigError(str(path), f"{where}.name", f"profile {profile.name!r} is defined twice")
        seen.add(profile.name)
        n = count_tokens(summary_text(profile))
        if not SUMMARY_MIN_TOKENS <= n <= SUMMARY_MAX_TOKENS:
            raise PersonaConfigError(
                str(path), f"{where}.description",
                f"the summary of {profile.name!r} is {n} tokens ({tokenizer}); it must be "
                f"{SUMMARY_MIN_TOKENS}..{SUMMARY_MAX_TOKENS} (seed 002, section 9): "
                f"{'shorten' if n > SUMMARY_MAX_TOKENS else 'lengthen'} the description")
        out.append(profile)
    return out


def load_profiles(paths: Sequence[Path] | Iterable[Path], *, count_tokens: Callable[[str], int],
                  tokenizer: str = "approximation") -> dict[str, PersonaProfile]:
    """Load persona files in order; a later profile replaces an earlier one of the same name.

    Args:
        paths: YAML files, each ``{personas: [profile, ...]}``; missing files are errors
            (callers leave out optional ones that do not exist).
        count_tokens: Tokens of a text (the LLM's tokenizer or the approximation).
        tokenizer: Its name, for error messages.

    Returns:
        Profiles by name, in the order first defined.

    Raises:
        PersonaConfigError: unreadable or malformed YAML, an unknown key, a bad name or
            interest, a name defined twice in one file, or a summary outside 100..200 tokens.
    """
    out: dict[str, PersonaProfile] = {}
    for path in paths:
        raw = load_mapping(Path(path), PersonaConfigError)
        for profile in _profiles_of(Path(path), raw, count_tokens, tokenizer):
            out[profile.name] = profile
    return out
