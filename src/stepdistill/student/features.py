"""Examples -> the two tasks' texts -> token ids -> padded batches.

Each training example yields a label row `[label] x -> y` and, for `dss`, a rationale row
`[rationale] x -> r`. The two tasks are padded separately (their lengths differ a lot: a label is a few
tokens, a rationale dozens), so neither pays for the other's padding.

Decoder-only students see `prompt + target + EOS`. Prompt and target are tokenised apart and joined as ids,
so the boundary is exact, and the prompt's positions carry no loss (label -100). Batches are left-padded:
every row's target then ends at the last position, and only the last positions need logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..tasks.base import EOS_MARKER, Example

if TYPE_CHECKING:  # torch and transformers load lazily: `stepdistill --help` should answer at once
    import torch
    from transformers import PreTrainedTokenizerBase

LABEL_PREFIX = "[label]"
RATIONALE_PREFIX = "[rationale]"
SINGLE_ANSWER_PHRASE = "So the answer is"  # single-task target: `<rationale> So the answer is <label>.`
IGNORE = -100
METHODS = ("standard", "dss", "single")


def label_source(text: str) -> str:
    return f"{LABEL_PREFIX} {text}"


def rationale_source(text: str) -> str:
    return f"{RATIONALE_PREFIX} {text}"


def single_target(rationale: str, label: str) -> str:
    return f"{rationale} {SINGLE_ANSWER_PHRASE} {label}."


@dataclass(frozen=True)
class TaskTexts:
    label: tuple[str, str]  # (source, target)
    rationale: tuple[str, str] | None  # None: no usable rationale, the rationale task skips this example


def task_texts(example: Example, method: str, label: str, rationale: str | None) -> TaskTexts:
    """The training texts for one example. `single` with no rationale falls back to the plain label."""
    source = label_source(example.input)
    if method == "standard":
        return TaskTexts((source, label), None)
    if method == "dss":
        return TaskTexts((source, label), (rationale_source(example.input), rationale) if rationale else None)
    if method == "single":
        return TaskTexts((source, single_target(rationale, label) if rationale else label), None)
    raise ValueError(f"unknown method {method!r} (expected one of {', '.join(METHODS)})")


class Encoder:
    """Token ids for (source, target) pairs, for seq2seq or decoder-only students."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", is_seq2seq: bool, max_source: int, max_target: int):
        self.tok, self.is_seq2seq = tokenizer, is_seq2seq
        self.max_source, self.max_target = max_source, max_target

    def prompt(self, source: str) -> str:
        source = source.replace(EOS_MARKER, self.tok.eos_token)  # NLI: premise EOS hypothesis, as in the paper
        return source if self.is_seq2seq else source + "\n"

    def source_ids(self, source: str) -> list[int]:
        ids = self.tok(self.prompt(source), add_special_tokens=self.is_seq2seq).input_ids
        if self.is_seq2seq:
            return ids[: self.max_source - 1] + ids[-1:] if len(ids) > self.max_source else ids
        bos = [self.tok.bos_token_id] if self._adds_bos() else []
        return bos + ids[-(self.max_source - len(bos)):]  # keep the end: the question sits there

    def target_ids(self, target: str) -> list[int]:
        ids = self.tok(target, add_special_tokens=False).input_ids[: self.max_target - 1]
        return ids + [self.tok.eos_token_id]

    def encode(self, source: str, target: str) -> tuple[list[int], list[int]]:
        """(input_ids, labels). Seq2seq: labels are the target; decoder-only: prompt masked with -100."""
        src, tgt = self.source_ids(source), self.target_ids(target)
        if self.is_seq2seq:
            return src, tgt
        return src + tgt, [IGNORE] * len(src) + tgt

    def _adds_bos(self) -> bool:
        # Llama-style tokenizers add BOS themselves when asked; we tokenise without special tokens and
        # add it here, so training and generation see the same prompt ids.
        return bool(getattr(self.tok, "add_bos_token", False)) and self.tok.bos_token_id is not None


def pad_ids(rows: list[list[int]], value: int, left: bool) -> list[list[int]]:
    """Each row filled with `value` up to the longest row's length: on the left for decoder-only students (every
    row then ends at the last position), on the right for seq2seq encoders and decoders."""
    width = max(len(row) for row in rows)
    return [[value] * (width - len(row)) + row if left else row + [value] * (width - len(row)) for row in rows]


def padding_mask(rows: list[list[int]], left: bool) -> list[list[int]]:
    """1 on each row's own tokens, 0 on the padding `pad_ids` adds."""
    return pad_ids([[1] * len(row) for row in rows], 0, left)


def pad_rows(rows: list[tuple[list[int], list[int]]], pad_id: int, is_seq2seq: bool) -> dict[str, "torch.Tensor"]:
    """Seq2seq: right-pad inputs and labels. Decoder-only: left-pad, with positions counted from the first
    real token, so a row's position ids do not depend on the batch it lands in."""
    import torch

    left = not is_seq2seq
    input_ids = [ids for ids, _ in rows]
    batch = {"input_ids": torch.tensor(pad_ids(input_ids, pad_id, left)),
             "attention_mask": torch.tensor(padding_mask(input_ids, left)),
             "labels": torch.tensor(pad_ids([labels for _, labels in rows], IGNORE, left))}
    if not is_seq2seq:
        batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    return batch


class TwoTaskCollator:
    """Batch of encoded examples -> {"label": padded rows, "rationale": padded rows (if any)}."""

    def __init__(self, pad_id: int, is_seq2seq: bool):
        self.pad_id, self.is_seq2seq = pad_id, is_seq2seq

    def __call__(self, features: list[dict]) -> dict:
        batch = {"label": pad_rows([(row["label_input_ids"], row["label_labels"]) for row in features],
                                   self.pad_id, self.is_seq2seq)}
        rationale_rows = [(row["rationale_input_ids"], row["rationale_labels"]) for row in features
                          if row["rationale_input_ids"]]
        if rationale_rows:
            batch["rationale"] = pad_rows(rationale_rows, self.pad_id, self.is_seq2seq)
        return batch
