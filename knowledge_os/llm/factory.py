"""Pick the chat model from settings (``settings.llm.provider``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knowledge_os.errors import ConfigError, UnknownNameError
from knowledge_os.settings import LLMSettings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["LLM_PROVIDERS", "make_chat_model"]

LLM_PROVIDERS: tuple[str, ...] = ("llamacpp", "ollama")


def make_chat_model(settings: LLMSettings) -> BaseChatModel:
    """The chat model named by ``settings.provider``; its client library is imported
    inside its branch.

    - ``llamacpp``: :class:`knowledge_os.llm.chat.ChatLlamaCpp` (``model_path`` None =
      the SmolLM2 wheel).
    - ``ollama``: ``langchain_ollama.ChatOllama`` at ``ollama_url`` with ``ollama_model``,
      ``temperature``, ``max_tokens`` as ``num_predict``, ``seed``, and the HTTP timeout
      ``timeout_s``.

    Raises:
        UnknownNameError: ``provider`` is not one of :data:`LLM_PROVIDERS`.
        ConfigError: the provider's package or model file is missing.
    """
    if settings.provider == "llamacpp":
        from knowledge_os.llm.chat import ChatLlamaCpp

        return ChatLlamaCpp.from_settings(settings)
    if settings.provider == "ollama":
        try:
            from langchain_ollama import ChatOllama
        except ImportError as exc:
            raise ConfigError(
                "llm.provider=ollama needs langchain-ollama: pip install langchain-ollama"
            ) from exc
        return ChatOllama(
            model=settings.ollama_model,
            base_url=settings.ollama_url,
            temperature=settings.temperature,
            num_predict=settings.max_tokens,
            seed=settings.seed,
            client_kwargs={"timeout": settings.timeout_s},
        )
    raise UnknownNameError("LLM provider", settings.provider, LLM_PROVIDERS)
