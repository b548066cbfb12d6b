"""Load domain YAML files into a registry.

Built-in domains come from ``knowledge_os/domains/builtin`` (package data); folders in ``Settings.domains_dirs`` are
read after it, so a user's ``digest.yaml`` replaces the built-in one. Every problem is a
:class:`~knowledge_os.errors.DomainConfigError` naming the file and the key path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from knowledge_os._yaml import load_mapping
from pydantic import ValidationError

from knowledge_os.domains.spec import DomainSpec
from knowledge_os.errors import DomainConfigError, UnknownNameError

__all__ = ["DomainRegistry", "load_domain_file"]

logger = logging.getLogger(__name__)


def load_domain_file(path: Path) -> DomainSpec:
    """Parse and validate one domain YAML file.

    Raises:
        DomainConfigError: unreadable file, malformed YAML, unknown or invalid keys, an
            unknown step or rule, a rule ``value`` of the wrong type, an unknown prompt
            placeholder, or a ``name`` that differs from the file stem. It lists every
            problem of the file (``.problems``), each naming the key path.
    """
    raw = load_mapping(path, DomainConfigError)
    try:
        spec = DomainSpec.model_validate(raw)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise DomainConfigError(str(path), *problems[0], more=problems[1:]) from exc
    if spec.name != path.stem:
        raise DomainConfigError(
            str(path), "name", f"{spec.name!r} must match the file name {path.stem!r}"
        )
    return spec


def _problem(err: Any) -> tuple[str, str]:
    """A pydantic error as ``(key path, message)``; list items are ``key[i]``."""
    key_path = ""
    for part in err["loc"]:
        key_path += f"[{part}]" if isinstance(part, int) else (f".{part}" if key_path else str(part))
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    return key_path, message


class DomainRegistry:
    """Domains by name, in load order."""

    def __init__(self, specs: Iterable[DomainSpec]) -> None:
        self._specs: dict[str, DomainSpec] = {}
        for spec in specs:
            self._specs[spec.name] = spec

    @classmethod
    def from_dirs(cls, dirs: Iterable[Path]) -> DomainRegistry:
        """Load every ``*.yaml`` in each folder; later folders override earlier ones.

        Raises:
            DomainConfigError: a file is invalid, or a folder does not exist.
        """
        specs: list[DomainSpec] = []
        for folder in dirs:
            if not folder.is_dir():
                raise DomainConfigError(str(folder), "", "domains folder does not exist")
            for path in sorted(folder.glob("*.yaml")):
                specs.append(load_domain_file(path))
                logger.debug("loaded domain %s from %s", specs[-1].name, path)
        if not specs:
            raise DomainConfigError(", ".join(map(str, dirs)), "", "no domain YAML files found")
        return cls(specs)

    def get(self, name: str) -> DomainSpec:
        """Raises UnknownNameError listing the known domains."""
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownNameError("domain", name, self._specs) from None

    def names(self) -> list[str]:
        return list(self._specs)

    def __iter__(self) -> Iterator[DomainSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs
