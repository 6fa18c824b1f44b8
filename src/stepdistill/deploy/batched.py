"""A llama.cpp engine that decodes concurrent chat requests together (`stepdistill serve --engine batched`).

llama-cpp-python's server decodes one sequence at a time, so concurrent requests only queue. Here one llama.cpp
context holds `slots` sequences (unified KV cache) and a scheduler thread does continuous batching: each step
admits waiting requests into free slots, puts their prompt tokens and the next token of every running sequence
into one llama_batch, runs one decode, and picks each sequence's next token from its own logits row. A step's
weight reads are shared by every sequence in it, which is where the throughput comes from on a CPU.

A request whose client went away is cancelled (`Sequence.cancel()`, from any thread): the scheduler, which alone
owns the queue of waiting requests and the slots, drops it at its next step, so it stops costing decode steps.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import DataError

log = logging.getLogger(__name__)


def softmax_sample(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """A token drawn from softmax(logits / temperature), kept to the smallest set whose mass reaches top_p."""
    scaled = (logits.astype(np.float64) - logits.max()) / temperature
    probs = np.exp(scaled)
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")
    kept = order[: int(np.searchsorted(np.cumsum(probs[order]), top_p) + 1)]
    return int(rng.choice(kept, p=probs[kept] / probs[kept].sum()))


def pick_token(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Greedy (first maximum, as llama.cpp's greedy sampler) at temperature 0, else a softmax sample."""
    if temperature <= 0:
        return int(np.argmax(logits))
    return softmax_sample(logits, temperature, min(max(top_p, 1e-6), 1.0), rng)


def decode_pieces(ctx, batch, pieces: list[tuple[int, list[int], int]]) -> dict[int, int]:
    """One llama_decode over (sequence id, token ids, first position) pieces, logits at each piece's last token
    (llama.cpp mixes prompts and single next tokens of several sequences in one batch). Returns the batch row
    of each sequence's logits. `ctx`/`batch`: llama_cpp._internals' LlamaContext and LlamaBatch."""
    raw, index, rows = batch.batch, 0, {}
    for seq, ids, start in pieces:
        for offset, token in enumerate(ids):
            raw.token[index], raw.pos[index] = token, start + offset
            raw.seq_id[index][0], raw.n_seq_id[index] = seq, 1
            raw.logits[index] = offset == len(ids) - 1
            index += 1
        rows[seq] = index - 1
    raw.n_tokens = index
    ctx.decode(batch)
    return rows


@dataclass
class Sequence:
    """One request from admission to its end. `deliver(kind, value)` is called from the scheduler thread with
    ("text", new text), then ("done", finish_reason) or ("error", message); a cancelled request hears nothing
    more (whoever cancels it no longer listens)."""
    prompt: list[int]
    max_tokens: int
    deliver: Callable[[str, object], None]
    stop: list[str] = field(default_factory=list)
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0  # characters of `text` already delivered
    finish_reason: str | None = None

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        """Ask the scheduler to drop this request at its next step (safe from any thread; nothing once it ended)."""
        self.cancelled.set()

    def visible(self) -> str:
        """Text safe to send now: while running, hold back what could still become the start of a stop string."""
        if self.finish_reason or not self.stop:
            return self.text
        return self.text[: max(self.sent, len(self.text) - max(len(s) for s in self.stop) + 1)]


class SlotContext:
    """A GGUF's model and tokenizer with one llama.cpp context for `slots` sequences of up to `ctx_per_slot`
    tokens each (unified KV cache), and the GGUF's chat template for served prompts. The engine decodes in it;
    benchmarks/batched_decode.py times the same context."""

    def __init__(self, gguf: str, slots: int, ctx_per_slot: int, threads: int):
        import llama_cpp
        from llama_cpp._internals import LlamaBatch, LlamaContext
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        # Llama gives the model, tokenizer and metadata; its own 1-sequence context stays unused (tiny n_ctx)
        self.llm = llama_cpp.Llama(gguf, n_ctx=64, n_threads=threads, verbose=False)
        model = self.llm._model
        params = LlamaContext.default_params()
        params.n_ctx = params.n_batch = slots * ctx_per_slot  # a step may hold a full prompt for every slot
        params.n_ubatch, params.n_seq_max, params.kv_unified = 512, slots, True
        params.n_threads = params.n_threads_batch = threads
        self.ctx = LlamaContext(model=model, params=params, verbose=False)
        self.batch = LlamaBatch(n_tokens=slots * ctx_per_slot, embd=0, n_seq_max=slots, verbose=False)
        self.n_vocab = model.n_vocab()
        self.is_end = lambda token: bool(llama_cpp.llama_vocab_is_eog(model.vocab, token))
        eos_text = model.token_get_text(model.token_eos())
        self.formatter = Jinja2ChatFormatter(self.llm.metadata["tokenizer.chat_template"], eos_text,
                                             model.token_get_text(model.token_bos()))

    def prompt_ids(self, messages: list[dict]) -> tuple[list[int], list[str]]:
        """The chat template's prompt (it writes BOS itself) and its stop strings (the EOS text)."""
        formatted = self.formatter(messages=messages)
        ids = self.llm.tokenize(formatted.prompt.encode(), add_bos=False, special=True)
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
        return ids, stop

    def decode(self, pieces: list[tuple[int, list[int], int]]) -> dict[int, int]:
        return decode_pieces(self.ctx, self.batch, pieces)

    def logits(self, row: int) -> np.ndarray:
        return np.ctypeslib.as_array(self.ctx.get_logits_ith(row), shape=(self.n_vocab,))


@dataclass
class EngineCounts:
    """What the scheduler did since the engine started (GET /stats of the batched server shows them)."""
    admitted: int = 0  # requests that got a slot
    finished: int = 0  # ended by an end token, a stop string or max_tokens
    failed: int = 0
    cancelled_running: int = 0  # their client went away while they decoded: the slot was freed early
    cancelled_waiting: int = 0  # their client went away before they got a slot: they never took one
    cancelled_tokens: int = 0  # tokens the running cancelled requests had generated when they were dropped
    steps: int = 0  # llama_decode calls


class BatchedEngine:
    """The GGUF loaded once, `slots` sequences of up to `ctx_per_slot` tokens each decoded together."""

    def __init__(self, gguf: str, slots: int = 8, ctx_per_slot: int = 2048, threads: int = 1):
        self.context = SlotContext(gguf, slots, ctx_per_slot, threads)
        self.slots, self.ctx_per_slot = slots, ctx_per_slot
        self.waiting: queue.Queue[Sequence | None] = queue.Queue()  # submitted by any thread
        # the scheduler thread alone touches these: requests it took from `waiting` that wait for a slot, and
        # the slot (sequence id) -> sequence of those that run
        self.pending: deque[Sequence] = deque()
        self.running: dict[int, Sequence] = {}
        self.counts = EngineCounts()
        self.thread = threading.Thread(target=self.schedule, name="batched-scheduler", daemon=True)
        self.thread.start()

    def prompt_ids(self, messages: list[dict]) -> tuple[list[int], list[str]]:
        return self.context.prompt_ids(messages)

    def room(self, prompt: list[int], max_tokens: int | None) -> int:
        """The tokens a request may generate; a prompt and max_tokens that do not fit one slot are refused."""
        left = self.ctx_per_slot - len(prompt)
        if left < 1 or (max_tokens is not None and max_tokens > left):
            raise DataError(f"the prompt has {len(prompt)} tokens and max_tokens is {max_tokens}, but a slot holds "
                            f"{self.ctx_per_slot} tokens (prompt + answer); send less or serve with a larger --n-ctx")
        return left if max_tokens is None else max_tokens

    def submit(self, sequence: Sequence) -> None:
        self.room(sequence.prompt, sequence.max_tokens)
        if not self.thread.is_alive():
            raise RuntimeError("the batched engine is closed")
        self.waiting.put(sequence)

    def stats(self) -> dict:
        """The counts with the slots in use and the requests waiting for one. Read from another thread than
        the scheduler's, so each number is current but two of them may be a step apart."""
        return asdict(self.counts) | {"slots": self.slots, "running": len(self.running),
                                      "waiting": len(self.pending) + self.waiting.qsize()}

    def close(self) -> None:
        self.waiting.put(None)
        self.thread.join(timeout=30)

    def schedule(self) -> None:
        """The scheduler thread: steps until closed. Anything unexpected fails the running requests (a request
        must never wait forever) and the loop goes on with the next ones."""
        while True:
            try:
                if not self.step():
                    return
            except Exception as error:
                for slot in list(self.running):
                    self.fail(slot, f"the engine failed: {error}")

    def step(self) -> bool:
        """Take new requests, drop cancelled ones, fill free slots, decode one step and advance every sequence
        in it; blocks while nothing runs or waits. False once closed."""
        if not self.take_arrivals(block=not self.running and not self.pending):
            return False
        self.drop_cancelled()
        admitted = self.admit()
        if not self.running:
            return True  # every request was cancelled: nothing to decode
        pieces = self.step_pieces(admitted)
        self.counts.steps += 1
        try:
            rows = self.context.decode(pieces)
        except Exception as error:  # e.g. llama_decode found no KV cells: fail these requests, keep serving
            for slot, _, _ in pieces:
                self.fail(slot, f"decoding failed: {error}")
            return True
        for slot, row in rows.items():
            self.advance(slot, row)
        return True

    def take_arrivals(self, block: bool) -> bool:
        """Move submitted requests to the scheduler's own queue (waiting for the first one when `block`);
        False when the engine was closed."""
        while True:
            try:
                sequence = self.waiting.get(block=block)
            except queue.Empty:
                return True
            if sequence is None:
                return False
            self.pending.append(sequence)
            block = False

    def drop_cancelled(self) -> None:
        """Requests whose client went away: a waiting one leaves the queue without taking a slot, a running one
        frees its slot and KV cells now instead of decoding on to max_tokens for nobody."""
        waiting = len(self.pending)
        self.pending = deque(sequence for sequence in self.pending if not sequence.cancelled.is_set())
        self.counts.cancelled_waiting += waiting - len(self.pending)
        for slot in [slot for slot, sequence in self.running.items() if sequence.cancelled.is_set()]:
            sequence = self.release(slot)
            self.counts.cancelled_running += 1
            self.counts.cancelled_tokens += len(sequence.tokens)
            log.info("request cancelled after %d of %d tokens: slot %d freed", len(sequence.tokens),
                     sequence.max_tokens, slot)

    def admit(self) -> list[int]:
        """Waiting requests into free slots, first come first served: the slots filled now."""
        free = [slot for slot in range(self.slots) if slot not in self.running]
        admitted = free[: len(self.pending)]
        for slot in admitted:
            self.running[slot] = self.pending.popleft()
        self.counts.admitted += len(admitted)
        return admitted

    def step_pieces(self, admitted: list[int]) -> list[tuple[int, list[int], int]]:
        """(slot, token ids, first position): a new sequence's whole prompt, a running one's last token."""
        pieces = []
        for slot, sequence in self.running.items():
            if slot in admitted:
                pieces.append((slot, sequence.prompt, 0))
            else:
                pieces.append((slot, sequence.tokens[-1:], len(sequence.prompt) + len(sequence.tokens) - 1))
        return pieces

    def advance(self, slot: int, row: int) -> None:
        """Pick the slot's next token and end the sequence at an end token, a stop string or max_tokens."""
        sequence = self.running[slot]
        try:
            logits = self.context.logits(row)
            token = pick_token(logits, sequence.temperature, sequence.top_p, sequence.rng)
            if self.context.is_end(token):
                return self.finish(slot, "done", "stop")
            sequence.tokens.append(token)
            self.extend_text(sequence)
        except Exception as error:
            return self.fail(slot, f"sampling failed: {error}")
        if sequence.finish_reason:
            return self.finish(slot, "done", sequence.finish_reason)
        if len(sequence.tokens) >= sequence.max_tokens:
            return self.finish(slot, "done", "length")
        self.send_text(sequence)

    def extend_text(self, sequence: Sequence) -> None:
        """The text so far (bytes of a split character wait for the rest), cut at the first stop string."""
        text = self.context.llm.detokenize(sequence.tokens, prev_tokens=sequence.prompt).decode("utf-8", errors="ignore")
        cuts = [text.find(stop) for stop in sequence.stop if stop and stop in text]
        if cuts:
            text, sequence.finish_reason = text[: min(cuts)], "stop"
        sequence.text = text

    def send_text(self, sequence: Sequence) -> None:
        visible = sequence.visible()
        if len(visible) > sequence.sent:
            sequence.deliver("text", visible[sequence.sent:])
            sequence.sent = len(visible)

    def release(self, slot: int) -> Sequence:
        """Take the slot's sequence out and clear its KV cells (the slot's next sequence starts at position 0)."""
        sequence = self.running.pop(slot)
        self.context.ctx.kv_cache_seq_rm(slot, -1, -1)
        return sequence

    def finish(self, slot: int, kind: str, value: str) -> None:
        """Free the slot and its KV cells, send the rest of the text and the end (or the error)."""
        sequence = self.running[slot]
        if kind == "done":
            self.counts.finished += 1
        else:
            self.counts.failed += 1
        try:
            self.release(slot)
        finally:  # the request hears its end even when the KV cache could not be cleared
            if kind == "done":
                sequence.finish_reason = value
                self.send_text(sequence)
            sequence.deliver(kind, value)

    def fail(self, slot: int, message: str) -> None:
        try:
            self.finish(slot, "error", message)
        except Exception:
            pass  # delivered already; a KV cache that cannot be cleared fails the next decode, and those requests
