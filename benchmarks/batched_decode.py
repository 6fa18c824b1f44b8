"""What batching could give label-only serving on this machine: llama.cpp decoding `width` sequences at once.

llama-cpp-python's server and `Llama` API decode one sequence at a time. This measures the best case of true
batching with llama.cpp's own batch API (one `llama_decode` over every prompt of a group, then one per step for
all unfinished sequences), greedy, on the same prompts the chat template builds for the served student. It
also times the two phases apart: a label is a few tokens after a prompt of dozens, so on a CPU the prompt
(compute-bound, which batching cannot shrink) may be most of the cost, and the decoding steps (weight reads,
which batching shares) the rest. Used by bench_serve.py (--batched WIDTH); benchmark code, not the package's.
"""

from __future__ import annotations

import time

import numpy as np


class BatchedGreedy:
    """Greedy decoding of up to `width` prompts in one llama.cpp context, each on its own sequence id."""

    def __init__(self, gguf: str, width: int, threads: int, n_ctx_each: int = 512):
        import llama_cpp
        from llama_cpp._internals import LlamaBatch, LlamaContext
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = llama_cpp.Llama(gguf, n_ctx=n_ctx_each, n_threads=threads, verbose=False)  # model + tokenizer
        model = self.llm._model
        params = LlamaContext.default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx_each * width, n_ctx_each * width, 512
        params.n_seq_max, params.kv_unified = width, True
        params.n_threads = params.n_threads_batch = threads
        self.ctx = LlamaContext(model=model, params=params, verbose=False)
        self.batch = LlamaBatch(n_tokens=n_ctx_each * width, embd=0, n_seq_max=width, verbose=False)
        self.eos, self.n_vocab, self.width = model.token_eos(), model.n_vocab(), width
        metadata = self.llm.metadata
        self.formatter = Jinja2ChatFormatter(metadata["tokenizer.chat_template"], model.token_get_text(self.eos),
                                             model.token_get_text(model.token_bos()))

    def prompt_ids(self, text: str) -> list[int]:
        """The served prompt: the GGUF's chat template over one user message (it writes BOS itself)."""
        prompt = self.formatter(messages=[{"role": "user", "content": text}]).prompt
        return self.llm.tokenize(prompt.encode(), add_bos=False, special=True)

    def generate(self, prompts: list[list[int]], max_tokens: int) -> tuple[list[list[int]], float, float]:
        """Greedy tokens per prompt (EOS excluded), and the seconds spent on the prompts and on the steps."""
        self.ctx.kv_cache_clear()
        started = time.perf_counter()
        rows = self.fill([(seq, ids, 0) for seq, ids in enumerate(prompts)])
        prefill_s = time.perf_counter() - started
        positions, out = [len(ids) for ids in prompts], [[] for _ in prompts]
        for step in range(max_tokens):
            chosen = {seq: self.argmax(row) for seq, row in rows.items()}
            for seq, token in chosen.items():
                if token != self.eos:
                    out[seq].append(token)
            live = {seq: token for seq, token in chosen.items() if token != self.eos}
            if not live or step == max_tokens - 1:
                break
            rows = self.fill([(seq, [token], positions[seq]) for seq, token in live.items()])
            for seq in live:
                positions[seq] += 1
        return out, prefill_s, time.perf_counter() - started - prefill_s

    def fill(self, pieces: list[tuple[int, list[int], int]]) -> dict[int, int]:
        """One llama_decode over (sequence id, token ids, first position) pieces; the batch row of each
        sequence's logits (the serving engine's own step, deploy/batched.py)."""
        from stepdistill.deploy.batched import decode_pieces
        return decode_pieces(self.ctx, self.batch, pieces)

    def argmax(self, row: int) -> int:
        return int(np.argmax(np.ctypeslib.as_array(self.ctx.get_logits_ith(row), shape=(self.n_vocab,))))


def bench_batched(gguf: str, quant: str, texts: list[str], max_tokens: int, threads: int, width: int) -> dict:
    """Labels per second with `width` sequences decoded together, and the share of time in the prompts."""
    engine = BatchedGreedy(gguf, width, threads)
    prompts = [engine.prompt_ids(text) for text in texts]
    engine.generate(prompts[:width], max_tokens)  # warm-up
    prefill, steps, tokens, started = 0.0, 0.0, 0, time.perf_counter()
    for first in range(0, len(prompts), width):
        out, prefill_s, steps_s = engine.generate(prompts[first:first + width], max_tokens)
        prefill, steps, tokens = prefill + prefill_s, steps + steps_s, tokens + sum(min(len(ids) + 1, max_tokens) for ids in out)
    wall = time.perf_counter() - started
    return {"path": f"llama.cpp {quant}, in process, {width} sequences per batch (llama.cpp batch API)",
            "labels_per_s": round(len(texts) / wall, 2), "prompt_share": round(prefill / (prefill + steps), 3),
            "prompt_ms_per_label": round(1000 * prefill / len(texts), 1),
            "steps_ms_per_label": round(1000 * steps / len(texts), 1), "mean_tokens": round(tokens / len(texts), 1)}
