"""Counting a prompt's tokens before it is sent, for `--estimate` and the export manifest.

`--tokenizer` picks the counter:
- `auto`: the local teacher's own GGUF tokenizer (llama.cpp, vocabulary only); for `openai:` teachers
  tiktoken's encoding for the model when tiktoken is installed and its encoding files are available
  (tiktoken downloads them on first use), else `chars`.
- `hf:NAME_OR_PATH`: a Hugging Face tokenizer (a self-hosted teacher's own), from the local cache or a folder.
- `gguf:PATH`: the tokenizer inside a GGUF file.
- `tiktoken:ENCODING`: e.g. tiktoken:o200k_base.
- `chars`: an approximation, 1 token per 4 characters (English text with OpenAI's and Llama's tokenizers:
  within about 15%); the estimate says so.
Chat prompts count each message's text plus 4 tokens for its role and separators, plus 3 for the reply's
start (OpenAI's published accounting; other chat templates differ by a few tokens per message).
"""

from __future__ import annotations

import math
from typing import Callable

from ..errors import DataError
from .prompts import Prompt


class TokenCounter:
    def __init__(self, name: str, count_text: Callable[[str], int], exact: bool = True):
        self.name, self.count_text, self.exact = name, count_text, exact

    def count(self, prompt: Prompt) -> int:
        if isinstance(prompt, str):
            return self.count_text(prompt)
        return sum(self.count_text(message["content"]) + 4 for message in prompt) + 3


def approximate() -> TokenCounter:
    return TokenCounter("chars/4 (approximation)", lambda text: math.ceil(len(text) / 4), exact=False)


def _gguf(path: str) -> TokenCounter:
    from llama_cpp import Llama

    vocab = Llama(model_path=path, vocab_only=True, verbose=False)
    return TokenCounter(f"gguf:{path}", lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=True)))


def _hf(name: str) -> TokenCounter:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name)
    return TokenCounter(f"hf:{name}", lambda text: len(tokenizer.encode(text, add_special_tokens=False)))


def _tiktoken(encoding: str | None, model: str) -> TokenCounter:
    import tiktoken

    coder = tiktoken.get_encoding(encoding) if encoding else tiktoken.encoding_for_model(model)
    return TokenCounter(f"tiktoken:{coder.name}", lambda text: len(coder.encode(text, disallowed_special=())))


def make_counter(spec: str, backend) -> TokenCounter:
    kind, _, arg = spec.partition(":")
    try:
        if kind == "chars":
            return approximate()
        if kind == "gguf":
            return _gguf(arg)
        if kind == "hf":
            return _hf(arg)
        if kind == "tiktoken":
            return _tiktoken(arg or None, backend.model)
    except Exception as error:  # noqa: BLE001: any load failure is the user's setting to fix
        raise DataError(f"--tokenizer {spec}: could not load it ({type(error).__name__}: {error})") from None
    if kind != "auto":
        raise DataError(f"--tokenizer must be auto, chars, hf:NAME, gguf:PATH or tiktoken:ENCODING, got '{spec}'")
    return _automatic(backend)


def _automatic(backend) -> TokenCounter:
    if backend.name == "local":
        return _gguf(str(backend.path))
    if backend.name == "openai":
        try:
            return _tiktoken(None, backend.model)
        except Exception:  # noqa: BLE001: not installed, unknown model, or no encoding files offline
            return approximate()
    return approximate()
