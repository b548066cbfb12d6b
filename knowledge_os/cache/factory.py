"""Pick the answer cache from settings (``settings.storage.answer_cache``); the
implementation is imported inside its branch; an unknown name raises
:class:`~knowledge_os.errors.UnknownNameError` listing the allowed ones."""

from __future__ import annotations

from knowledge_os.cache.base import AnswerStore
from knowledge_os.errors import UnknownNameError
from knowledge_os.settings import Settings

__all__ = ["ANSWER_CACHE_BACKENDS", "make_answer_cache"]

ANSWER_CACHE_BACKENDS: tuple[str, ...] = ("sqlite", "postgres")


def make_answer_cache(settings: Settings) -> AnswerStore:
    """The answer cache of ``settings.storage.answer_cache``, bounded by
    ``cache.answer_ttl_s`` and ``cache.answer_max_entries``.

    ``sqlite``: :class:`~knowledge_os.cache.answers.AnswerCache` in ``settings.sqlite_path``;
    ``postgres``: :class:`~knowledge_os.cache.answers_pg.PostgresAnswerCache` on
    ``settings.postgres.dsn``.

    Raises:
        UnknownNameError: the name is not one of :data:`ANSWER_CACHE_BACKENDS`.
        ConfigError: ``postgres`` without ``postgres.dsn``.
        BackendUnavailableError: the store cannot be opened / the server did not answer.
    """
    backend = settings.storage.answer_cache
    ttl_s, max_entries = settings.cache.answer_ttl_s, settings.cache.answer_max_entries
    if backend == "sqlite":
        from knowledge_os.cache.answers import AnswerCache

        return AnswerCache(settings.sqlite_path, ttl_s=ttl_s, max_entries=max_entries)
    if backend == "postgres":
        from knowledge_os.cache.answers_pg import PostgresAnswerCache

        return PostgresAnswerCache(settings, ttl_s=ttl_s, max_entries=max_entries)
    raise UnknownNameError("answer cache backend", str(backend), ANSWER_CACHE_BACKENDS)
