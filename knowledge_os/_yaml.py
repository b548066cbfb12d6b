"""Read a YAML file that must hold a mapping, with errors that name the file and the line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from knowledge_os.errors import KnowledgeOSError

__all__ = ["load_mapping"]


def load_mapping(path: Path, error: Callable[[str, str, str], KnowledgeOSError]) -> dict[str, Any]:
    """The top-level mapping of the YAML file ``path``.

    Args:
        path: The file.
        error: Builds the project error from ``(file, key path, message)``, e.g.
            ``DomainConfigError`` or ``EvalConfigError``.

    Raises:
        KnowledgeOSError: (from ``error``) the file cannot be read, the YAML is malformed
            (the message gives line and column), or the top level is not a mapping.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(str(path), "", f"cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(str(path), "", f"malformed YAML{where}: {problem}") from exc
    if not isinstance(raw, dict):
        raise error(str(path), "", "expected a mapping at the top level")
    return raw
