"""One way for nodes to call the chat model: budgets, hard timeouts, token counts.

Token counts come from ``AIMessage.usage_metadata`` when the provider reports them
(llama.cpp and Ollama do); otherwise they are estimated as characters / 4, the usual
rule of thumb for English BPE vocabularies.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from knowledge_os.errors import BackendError, BackendTimeoutError, BackendUnavailableError
from knowledge_os.llm.budget import Budget

__all__ = ["SYNTHESIS_TAG", "LLMReply", "call_llm", "parse_json_reply"]

logger = logging.getLogger(__name__)

SYNTHESIS_TAG = "kos:synthesis"
"""Run tag of the calls that write the summary a user reads (``summarise``, ``correct``):
:meth:`knowledge_os.api.KnowledgeOS.astream` streams the tokens of these calls only."""

_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="kos-llm")


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMReply:
    """Text of a completion, its token counts and wall time (ms)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float

    def usage(self) -> dict[str, int]:
        return {
            "llm_calls": 1,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


def call_llm(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    *,
    usage: Mapping[str, int],
    budget: Budget,
    json_schema: dict[str, Any] | None = None,
    max_tokens: int | None = None,
    timeout_s: float | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> LLMReply:
    """Call the chat model once.

    Args:
        model: Any langchain-core chat model (llama.cpp, Ollama, fakes in tests).
        messages: The prompt.
        usage: Usage so far in this run (checked against ``budget``).
        budget: The run's limits.
        json_schema: Constrain the output to this JSON schema where the provider can.
        max_tokens: Completion cap.
        timeout_s: Hard wall-clock limit; the provider is asked to stop at it too.
        tags: Run tags of this call (LangChain callbacks and LangGraph's ``messages``
            stream see them; e.g. :data:`SYNTHESIS_TAG`).
        metadata: Run metadata of this call, seen the same way.

    Without ``timeout_s`` the call runs in the caller's context, so a LangGraph run
    streaming ``messages`` receives its tokens; with it, the call runs on a worker thread
    outside that context (a call abandoned at its deadline must not write into a stream
    that has moved on).

    Raises:
        BudgetExceededError: the call would pass a budget (nothing is sent).
        BackendTimeoutError: no answer within ``timeout_s``.
        BackendUnavailableError: the model's server cannot be reached or dropped the
            connection (infrastructure: callers let it fail the run, which is then
            dead-lettered and resumable, instead of answering without the model).
        BackendError: the provider failed otherwise.
    """
    from knowledge_os.llm.chat import invoke_kwargs

    budget.check(usage, next_call=True)
    kwargs = invoke_kwargs(model, json_schema=json_schema, max_tokens=max_tokens, timeout_s=timeout_s)
    if tags or metadata:
        kwargs["config"] = {"tags": list(tags), "metadata": dict(metadata or {})}
    started = time.perf_counter()
    try:
        if timeout_s is None:
            message = model.invoke(list(messages), **kwargs)
        else:
            future = _POOL.submit(model.invoke, list(messages), **kwargs)
            try:
                message = future.result(timeout=timeout_s)
            except concurrent.futures.TimeoutError as exc:
                future.cancel()
                raise BackendTimeoutError(f"chat model gave no answer within {timeout_s:.3f} s") from exc
    except BackendError:
        raise
    except Exception as exc:  # provider-specific errors, translated once here
        if _unreachable(exc):
            where = getattr(model, "base_url", None) or getattr(model, "openai_api_base", None) or "its server"
            raise BackendUnavailableError(f"chat model: cannot reach {where}: {type(exc).__name__}: {exc}") from exc
        raise BackendError(f"chat model call failed: {type(exc).__name__}: {exc}") from exc
    latency_ms = (time.perf_counter() - started) * 1000
    text = message.content if isinstance(message.content, str) else str(message.content)
    meta = getattr(message, "usage_metadata", None) or {}
    prompt_chars = sum(len(str(m.content)) for m in messages)
    return LLMReply(
        text=text,
        prompt_tokens=int(meta.get("input_tokens") or max(1, prompt_chars // 4)),
        completion_tokens=int(meta.get("output_tokens") or max(1, len(text) // 4)),
        latency_ms=round(latency_ms, 1),
    )


def _unreachable(exc: BaseException) -> bool:
    """The model's server cannot be reached or dropped the connection (infrastructure),
    as opposed to a reply that is wrong (content): OS connection errors (Ollama's client
    raises ``ConnectionError``) and httpx transport errors other than timeouts."""
    if isinstance(exc, ConnectionError):
        return True
    try:
        import httpx
    except ImportError:  # pragma: no cover - a base dependency
        return False
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.TimeoutException)


def parse_json_reply(text: str) -> dict[str, Any] | None:
    """The first JSON object in a reply, or None if there is none."""
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = orjson.loads(text[start : end + 1])
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
