"""Shared fixtures for integration tests that need a server.

Server-backed parameters read their address from the environment
(``KOS_TEST_POSTGRES_DSN``, ``KOS_TEST_NEO4J_URI``; ``.ci/run`` exports them after
``scripts/services/*.sh start``). Unset locally: the parameter is skipped. Unset while
``CI`` is set: the test fails, so a service that did not start cannot pass as a skip.
"""

from __future__ import annotations

import os

import pytest


def require_service_env(name: str) -> str:
    """The value of env var ``name``; skip the test when unset, fail instead under CI."""
    value = os.environ.get(name)
    if value:
        return value
    message = f"{name} is not set (start it with scripts/services/*.sh start)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def require_service():
    """:func:`require_service_env` as a fixture, for server-backed parameters."""
    return require_service_env
