"""Helpers shared by the SQLite and PostgreSQL memory stores: limits, cuts, JSON, time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from knowledge_os.errors import InputError
from knowledge_os.memory.base import (
    MAX_ATTEMPTS,
    MAX_ERROR_CHARS,
    MAX_READ_EVENTS,
    MAX_STACK_CHARS,
    backoff_s,
)

__all__ = [
    "DEFAULT_LEASE_S",
    "STATUSES",
    "clamp_limit",
    "cut_error",
    "cut_stack",
    "dumps",
    "next_failure_state",
    "utcnow",
]

STATUSES = ("pending", "reprocessed", "permanent_failure")
DEFAULT_LEASE_S = 900


def utcnow() -> datetime:
    """Timezone-aware UTC now."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones converted to UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def clamp_limit(limit: int) -> int:
    """Clamp a read limit to 1..MAX_READ_EVENTS (1,000)."""
    return max(1, min(int(limit), MAX_READ_EVENTS))


def cut_error(text: str) -> str:
    """Error text cut to MAX_ERROR_CHARS (1,000) characters."""
    return text[:MAX_ERROR_CHARS]


def cut_stack(text: str) -> str:
    """Stack text cut to MAX_STACK_CHARS (5,000) characters."""
    return text[:MAX_STACK_CHARS]


def dumps(value: Mapping[str, Any], what: str) -> str:
    """JSON text of a mapping.

    Raises:
        InputError: the value is not JSON-serialisable (names ``what``).
    """
    try:
        return orjson.dumps(dict(value), option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError as exc:
        raise InputError(f"{what} is not JSON-serialisable: {exc}") from exc


def next_failure_state(attempts: int, now: datetime) -> tuple[int, str, datetime]:
    """After a failed attempt: ``(attempts + 1, status, next_attempt_at)``.

    ``permanent_failure`` once the count reaches MAX_ATTEMPTS (3); otherwise ``pending``,
    due ``backoff_s(attempts + 1)`` = ``60 * 2**n`` seconds after ``now``.
    """
    count = attempts + 1
    if count >= MAX_ATTEMPTS:
        return count, "permanent_failure", now
    return count, "pending", now + timedelta(seconds=backoff_s(count))
