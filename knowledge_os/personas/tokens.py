"""Counting the tokens of a persona summary.

With the embedded LLM (llama.cpp) the count is the model's own tokenizer: the GGUF's
vocabulary, loaded alone (``vocab_only``: no weights, a few ms). With any other chat model
it is the approximation ``knowledge_os.llm.calls`` uses for providers that report no
counts: characters / 4, rounded up (the usual rule of thumb for English BPE vocabularies;
SmolLM2's tokenizer gives 4.7-5.2 characters per token on the shipped summaries, so the
approximation errs on the long side: tests/integration/test_personas_real.py).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from knowledge_os.llm.chat import ChatLlamaCpp

__all__ = ["approx_tokens", "token_counter"]


def approx_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``, at least 1."""
    return max(1, math.ceil(len(text) / 4))


@functools.lru_cache(maxsize=4)
def _vocab(path: str) -> Any:
    """The GGUF's vocabulary alone (llama.cpp ``vocab_only``: no weights, no context),
    loaded once per file with llama.cpp's log muted for the load."""
    import llama_cpp

    log = logging.getLogger("llama-cpp-python")  # llama-cpp-python prints llama.cpp's log at this level
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        model = llama_cpp.llama_model_load_from_file(path.encode(), params)
    finally:
        log.setLevel(level)
    if not model:
        raise ValueError(f"llama.cpp cannot read the vocabulary of {path}")
    return model, llama_cpp.llama_model_get_vocab(model)


def _gguf_counter(path: Path) -> Callable[[str], int]:
    import llama_cpp

    _model, vocab = _vocab(str(path.resolve()))

    def count(text: str) -> int:
        data = text.encode("utf-8")
        room = len(data) + 8  # a BPE token covers at least one byte
        buf = (llama_cpp.llama_token * room)()
        return int(llama_cpp.llama_tokenize(vocab, data, len(data), buf, room, False, False))

    return count


def token_counter(chat_model: Any) -> tuple[Callable[[str], int], str]:
    """The token counter for the run's chat model and its name.

    Args:
        chat_model: The services' chat model; a :class:`knowledge_os.llm.chat.ChatLlamaCpp`
            gets its GGUF's tokenizer, anything else the approximation.

    Returns:
        ``(count, name)``: ``count(text)`` in tokens; ``name`` is ``"gguf:<file name>"``
        or ``"approximation (chars/4)"``.
    """
    if isinstance(chat_model, ChatLlamaCpp):
        try:
            path = Path(chat_model.model_path)
            return _gguf_counter(path), f"gguf:{path.name}"
        except (ImportError, AttributeError, ValueError, OSError):
            pass  # no llama_cpp or an unreadable file: the approximation still bounds the summary
    return approx_tokens, "approximation (chars/4)"
