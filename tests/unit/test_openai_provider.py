"""llm.provider=openai: the factory builds ChatOpenAI at the base URL, per-call kwargs in
the server's JSON-Schema dialect, the timeout error's deadline (no server: a local socket
that never answers)."""

from __future__ import annotations

import socket

import pytest
from langchain_core.messages import HumanMessage

from knowledge_os.errors import BackendTimeoutError
from knowledge_os.llm.chat import invoke_kwargs
from knowledge_os.llm.factory import make_chat_model
from knowledge_os.settings import LLMSettings

SCHEMA = {"type": "object", "properties": {"domain": {"type": "string"}}, "required": ["domain"]}


def test_factory_builds_an_openai_compatible_model():
    model = make_chat_model(LLMSettings(provider="openai", openai_base_url="http://127.0.0.1:9/v1",
                                        openai_model="smol", timeout_s=7))
    assert model.model_name == "smol" and model.openai_api_base == "http://127.0.0.1:9/v1"
    assert model.request_timeout == 7 and model.max_retries == 0


def test_json_schema_dialects():
    standard = make_chat_model(LLMSettings(provider="openai"))
    kw = invoke_kwargs(standard, json_schema=SCHEMA, max_tokens=32, timeout_s=2.5)
    assert kw == {"response_format": {"type": "json_schema",
                                      "json_schema": {"name": "output", "schema": SCHEMA, "strict": True}},
                  "max_tokens": 32, "timeout": 2.5}
    llamacpp_server = make_chat_model(LLMSettings(provider="openai", openai_json_mode="json_object"))
    assert invoke_kwargs(llamacpp_server, json_schema=SCHEMA)["response_format"] == {
        "type": "json_object", "schema": SCHEMA}


def test_a_timeout_names_the_calls_own_deadline_not_the_clients():
    # a socket that listens and never answers: the request times out on the call's 0.05 s
    # (the client's llm.timeout_s is 30); the error must name the deadline that fired
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        model = make_chat_model(LLMSettings(provider="openai", openai_base_url=f"http://127.0.0.1:{port}/v1",
                                            openai_model="smol", timeout_s=30))
        with pytest.raises(BackendTimeoutError, match=r"within 0\.050 s"):
            model.invoke([HumanMessage("hi")], timeout=0.05)
