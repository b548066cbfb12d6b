"""The chat model of ``llm.provider=openai``: langchain-openai's ``ChatOpenAI`` against
any OpenAI-compatible server, with how that server takes a JSON Schema.

OpenAI, vLLM and Ollama's ``/v1`` take ``response_format={"type": "json_schema",
"json_schema": {"name", "schema", "strict"}}``; llama-cpp-python's server
(``python -m llama_cpp.server``) takes ``{"type": "json_object", "schema": ...}``
(its ``ChatCompletionRequestResponseFormat``). ``llm.openai_json_mode`` picks one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Literal

from langchain_openai import ChatOpenAI

__all__ = ["ChatOpenAICompatible", "response_format"]


class ChatOpenAICompatible(ChatOpenAI):
    """``ChatOpenAI`` that knows its server's JSON-Schema dialect (``json_mode``) and
    names the server when it cannot be reached.

    Raises (from whole and streamed calls alike):
        BackendUnavailableError: the server refused or dropped the connection, also in the
            middle of a reply (names ``openai_api_base``).
        BackendTimeoutError: the server did not answer within the client timeout.
    """

    json_mode: Literal["json_schema", "json_object"] = "json_schema"

    def _translate(self, exc: Exception, timeout: float | None = None) -> Exception:
        """Our error for the client's ``exc`` (``exc`` itself when it is none of ours);
        ``timeout``: the call's own timeout (``invoke(..., timeout=)``), else the client's."""
        import openai

        from knowledge_os.errors import BackendTimeoutError, BackendUnavailableError

        if isinstance(exc, openai.APITimeoutError):
            waited = self.request_timeout if timeout is None else timeout
            shown = f"{waited:.3f}" if isinstance(waited, int | float) else str(waited)  # as call_llm says it
            return BackendTimeoutError(f"openai: {self.openai_api_base} gave no answer within {shown} s")
        if isinstance(exc, openai.APIConnectionError):
            return BackendUnavailableError(f"openai: cannot reach {self.openai_api_base}: {exc}")
        return exc

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._generate(*args, **kwargs)
        except Exception as exc:
            translated = self._translate(exc, kwargs.get("timeout"))
            if translated is exc:
                raise
            raise translated from exc

    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._agenerate(*args, **kwargs)
        except Exception as exc:
            translated = self._translate(exc, kwargs.get("timeout"))
            if translated is exc:
                raise
            raise translated from exc

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from super()._stream(*args, **kwargs)
        except Exception as exc:  # also a server that dies mid-reply
            translated = self._translate(exc, kwargs.get("timeout"))
            if translated is exc:
                raise
            raise translated from exc

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except Exception as exc:
            translated = self._translate(exc, kwargs.get("timeout"))
            if translated is exc:
                raise
            raise translated from exc


def response_format(mode: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The ``response_format`` request field constraining the output to ``schema``."""
    if mode == "json_object":
        return {"type": "json_object", "schema": dict(schema)}
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": dict(schema), "strict": True}}
