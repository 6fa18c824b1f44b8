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
    """Greedy decoding of up to `width` prompts in one llama.cpp context, each on its own sequence id: the
    serving engine's context (deploy/batched.py's SlotContext), stepped here with the two phases timed apart."""

    def __init__(self, gguf: str, width: int, threads: int, n_ctx_each: int = 512):
        from stepdistill.deploy.batched import SlotContext

        self.context = SlotContext(gguf, width, n_ctx_each, threads)
        self.eos, self.width = self.context.llm._model.token_eos(), width
        self.llm = self.context.llm  # tokenizer, for callers that detokenize answers

    def prompt_ids(self, text: str) -> list[int]:
        """The served prompt: the GGUF's chat template over one user message."""
        return self.context.prompt_ids([{"role": "user", "content": text}])[0]

    def generate(self, prompts: list[list[int]], max_tokens: int) -> tuple[list[list[int]], float, float]:
        """Greedy tokens per prompt (EOS excluded), and the seconds spent on the prompts and on the steps."""
        self.context.ctx.kv_cache_clear()
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
        return self.context.decode(pieces)

    def argmax(self, row: int) -> int:
        return int(np.argmax(self.context.logits(row)))


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
