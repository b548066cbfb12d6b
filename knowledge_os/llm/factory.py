"""Pick the chat model from settings (``settings.llm.provider``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knowledge_os.errors import ConfigError, UnknownNameError
from knowledge_os.settings import LLMSettings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["LLM_PROVIDERS", "make_chat_model"]

LLM_PROVIDERS: tuple[str, ...] = ("llamacpp", "ollama", "openai")


def make_chat_model(settings: LLMSettings) -> BaseChatModel:
    """The chat model named by ``settings.provider``; its client library is imported
    inside its branch.

    - ``llamacpp``: :class:`knowledge_os.llm.chat.ChatLlamaCpp` (``model_path`` None =
      the SmolLM2 wheel).
    - ``ollama``: ``langchain_ollama.ChatOllama`` at ``ollama_url`` with ``ollama_model``,
      ``temperature``, ``max_tokens`` as ``num_predict``, ``seed``, and the HTTP timeout
      ``timeout_s``.
    - ``openai``: ``langchain_openai.ChatOpenAI`` at ``openai_base_url`` (any
      OpenAI-compatible server: vLLM, llama.cpp's server, Ollama's ``/v1``) with
      ``openai_model``, ``openai_api_key``, ``temperature``, ``max_tokens``, ``seed``,
      the HTTP timeout ``timeout_s`` and ``openai_max_retries``; a streamed call asks for
      the token counts (``stream_options.include_usage``; a server that ignores it, such as
      llama-cpp-python's, leaves them to :func:`knowledge_os.llm.calls.call_llm`'s estimate).

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
    if settings.provider == "openai":
        try:
            from knowledge_os.llm.openai_compat import ChatOpenAICompatible
        except ImportError as exc:
            raise ConfigError("llm.provider=openai needs langchain-openai: pip install langchain-openai") from exc
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none"
        return ChatOpenAICompatible(json_mode=settings.openai_json_mode, model=settings.openai_model, base_url=settings.openai_base_url, api_key=key,
                          temperature=settings.temperature, max_tokens=settings.max_tokens, seed=settings.seed,
                          timeout=settings.timeout_s, max_retries=settings.openai_max_retries,
                          stream_usage=True)
    raise UnknownNameError("LLM provider", settings.provider, LLM_PROVIDERS)
