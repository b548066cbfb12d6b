"""Knowledge OS: agent-graph orchestration on LangGraph.

The public surface is listed in ``__all__`` (pinned by tests/unit/test_public_api.py).
``__version__`` is the installed distribution's version (``pyproject.toml``), read from
its metadata.
"""

from importlib import metadata as _metadata

from knowledge_os.api import Citation, KnowledgeOS, Quality, RouteInfo, RunResult, RunUsage
from knowledge_os.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    BudgetExceededError,
    ConfigError,
    DomainConfigError,
    IngestError,
    InputError,
    KnowledgeOSError,
    UnknownNameError,
)
from knowledge_os.settings import Settings

try:
    __version__ = _metadata.version("knowledge-os")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"

__all__ = [
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "BudgetExceededError",
    "Citation",
    "ConfigError",
    "DomainConfigError",
    "IngestError",
    "InputError",
    "KnowledgeOS",
    "KnowledgeOSError",
    "Quality",
    "RouteInfo",
    "RunResult",
    "RunUsage",
    "Settings",
    "UnknownNameError",
    "__version__",
]
