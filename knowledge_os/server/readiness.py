"""Readiness: is every backend the settings name reachable right now?

Each check is a short, bounded probe of one backend (a connection, a ping, a file); a
check that fails returns the reason, never raises. Embedded backends (SQLite files,
the in-process Qdrant shard, the shipped GGUF) are checked by their files.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable

import httpx

from knowledge_os.settings import Settings

__all__ = ["check_backends"]

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


def _checks(settings: Settings) -> dict[str, Check]:
    """Backend name -> probe, for the backends ``settings`` configures."""
    s = settings
    checks: dict[str, Check] = {}

    async def sqlite_check() -> None:
        def probe() -> None:
            s.home.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(s.sqlite_path, timeout=2)
            try:
                con.execute("select 1")
            finally:
                con.close()

        await asyncio.to_thread(probe)

    checks["sqlite"] = sqlite_check

    async def http_get(url: str, timeout_s: float) -> None:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(url)
            response.raise_for_status()

    if s.vectors.backend == "qdrant" and s.vectors.url:
        checks["qdrant"] = lambda: http_get(s.vectors.url.rstrip("/") + "/readyz", s.vectors.timeout_s)
    if s.graph.backend == "neo4j":
        async def neo4j_check() -> None:
            from neo4j import AsyncGraphDatabase

            auth = (s.graph.neo4j_user, s.graph.neo4j_password.get_secret_value()) if s.graph.neo4j_password else None
            driver = AsyncGraphDatabase.driver(s.graph.neo4j_uri, auth=auth,
                                               connection_timeout=s.graph.neo4j_connect_timeout_s)
            try:
                await driver.verify_connectivity()
            finally:
                await driver.close()

        checks["neo4j"] = neo4j_check
    if "postgres" in (s.storage.checkpointer, s.storage.memory, s.storage.documents, s.storage.answer_cache) \
            or s.vectors.backend == "postgres_edge":
        async def postgres_check() -> None:
            import asyncpg

            from knowledge_os.db.appname import asyncpg_server_settings
            from knowledge_os.db.pool import _dsn

            con = await asyncpg.connect(_dsn(s), timeout=s.postgres.connect_timeout_s,
                                        server_settings=asyncpg_server_settings(_dsn(s), "readiness"))
            await con.close()

        checks["postgres"] = postgres_check
    if s.llm.provider == "ollama":
        checks["llm"] = lambda: http_get(s.llm.ollama_url.rstrip("/") + "/api/tags", s.llm.timeout_s)
    elif s.llm.provider == "openai":
        checks["llm"] = lambda: http_get(s.llm.openai_base_url.rstrip("/") + "/models", s.llm.timeout_s)
    else:
        async def gguf_check() -> None:
            from knowledge_os.llm.chat import default_model_path

            path = s.llm.model_path or default_model_path()
            if not path.is_file():
                raise FileNotFoundError(f"GGUF file {path.name} not found")

        checks["llm"] = gguf_check
    if s.embedder.provider == "ollama":
        checks["embedder"] = lambda: http_get(s.embedder.ollama_url.rstrip("/") + "/api/tags", s.embedder.timeout_s)
    elif s.embedder.provider == "openai":
        checks["embedder"] = lambda: http_get(s.embedder.openai_base_url.rstrip("/") + "/models", s.embedder.timeout_s)
    return checks


async def check_backends(settings: Settings, *, timeout_s: float = 5.0,
                         extra: dict[str, Check] | None = None) -> dict[str, str]:
    """Probe every configured backend concurrently.

    Args:
        settings: Which backends are configured.
        timeout_s: Longest wait per probe, seconds.
        extra: More probes by name (tests inject failing ones).

    Returns:
        Backend name -> ``"ok"`` or a one-line reason (``"timeout after 5.0 s"``, the
        error's type and message); one entry per configured backend.
    """
    checks = {**_checks(settings), **(extra or {})}

    async def run(name: str, check: Check) -> tuple[str, str]:
        try:
            await asyncio.wait_for(check(), timeout_s)
        except TimeoutError:
            return name, f"timeout after {timeout_s} s"
        except Exception as exc:  # a readiness probe reports, never raises
            logger.warning("backend %s not ready: %s", name, exc)
            return name, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        return name, "ok"

    return dict(await asyncio.gather(*(run(n, c) for n, c in checks.items())))
