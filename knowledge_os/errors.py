"""Exceptions raised by Knowledge OS, grouped by who must act.

Hierarchy::

    KnowledgeOSError
    ├── ConfigError                 the user fixes a file, a setting or an argument
    │   ├── DomainConfigError       a domain YAML is malformed (names file and key path)
    │   ├── EvalConfigError         an eval suite YAML or case file is malformed (likewise)
    │   └── UnknownNameError        an unknown backend, domain or step name
    ├── InputError                  a query, path or record is unusable
    │   └── IngestError             a source file could not be read or parsed
    ├── BackendError                a store, model or service failed
    │   ├── BackendUnavailableError retryable: the service did not answer / refused
    │   └── BackendTimeoutError     retryable: the service answered too late
    └── BudgetExceededError         a per-request budget (LLM calls, tokens, steps) ran out

Client-library exceptions are translated in the adapters with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "BudgetExceededError",
    "ConfigError",
    "DomainConfigError",
    "EvalConfigError",
    "IngestError",
    "InputError",
    "KnowledgeOSError",
    "UnknownNameError",
]


class KnowledgeOSError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(KnowledgeOSError):
    """A configuration file, setting or argument is wrong; the user must fix it."""


class DomainConfigError(ConfigError):
    """A domain YAML file is malformed; every problem found in the file is listed.

    The message has one line per problem, ``<path>: <key path>: <problem>``.

    Attributes:
        path: The YAML file.
        key_path: Key path of the first problem (``""`` for the whole file), e.g.
            ``"prompts.summarise"`` or ``"checklist[2].value"``.
        problems: Every ``(key path, problem)`` of the file, in file order; the first is
            ``(key_path, message)``.
    """

    def __init__(self, path: str, key_path: str, message: str,
                 more: Iterable[tuple[str, str]] = ()) -> None:
        self.path = path
        self.key_path = key_path
        self.problems: tuple[tuple[str, str], ...] = ((key_path, message), *more)
        super().__init__("\n".join(f"{path}: {k}: {m}" if k else f"{path}: {m}" for k, m in self.problems))


class EvalConfigError(ConfigError):
    """An eval suite YAML or case file is malformed.

    Attributes:
        path: The file.
        key_path: Dotted key path inside it (``""`` for the whole file; ``line N`` in a JSONL file).
    """

    def __init__(self, path: str, key_path: str, message: str) -> None:
        self.path = path
        self.key_path = key_path
        where = f"{path}: {key_path}" if key_path else path
        super().__init__(f"{where}: {message}")


class UnknownNameError(ConfigError):
    """An unknown name was given where one of a fixed set is allowed."""

    def __init__(self, what: str, name: str, allowed: Iterable[str]) -> None:
        self.what = what
        self.name = name
        self.allowed = sorted(allowed)
        super().__init__(f"unknown {what} {name!r}; allowed: {', '.join(self.allowed)}")


class InputError(KnowledgeOSError):
    """A query, path or record given by the user cannot be used."""


class IngestError(InputError):
    """A source file could not be read or parsed.

    Attributes:
        path: The file that failed.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class BackendError(KnowledgeOSError):
    """A backend (store, model, service) failed."""


class BackendUnavailableError(BackendError):
    """The backend did not answer or refused the connection; retrying may help."""


class BackendTimeoutError(BackendError):
    """The backend answered after its timeout; retrying may help."""


class BudgetExceededError(KnowledgeOSError):
    """A per-request budget ran out.

    Attributes:
        budget: Which budget: ``"llm_calls"``, ``"tokens"``, ``"steps"`` or ``"wall_time"``
            (a QoS level's ``max_wall_s``, knowledge_os/qos.py).
        limit: The configured limit.
    """

    def __init__(self, budget: str, limit: int) -> None:
        self.budget = budget
        self.limit = limit
        super().__init__(f"budget {budget!r} exhausted (limit {limit})")
