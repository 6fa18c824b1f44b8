"""Examples -> the two tasks' texts -> token ids -> padded batches.

Each training example yields a label row `[label] x -> y` and, for `dss`, a rationale row
`[rationale] x -> r`; an extra rationale of an input (train --rationales-per-input all) yields the rationale row
alone, so a batch may hold fewer label rows than rationale rows, or none (prompts.py builds the sources: these
prefixes, or with --input-format chat the student's chat template around x). The two tasks are padded separately
(their lengths differ a lot: a label is a few tokens, a rationale dozens), so neither pays for the other's padding.

Decoder-only students see `prompt + target + EOS`. Prompt and target are tokenised apart and joined as ids,
so the boundary is exact, and the prompt's positions carry no loss (label -100). Batches are left-padded:
every row's target then ends at the last position, and only the last positions need logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DataError
from ..tasks.base import EOS_MARKER, Example
from .prompts import PREFIX, PromptFormat
from .prompts import LABEL_PREFIX, RATIONALE_PREFIX, label_source, rationale_source  # noqa: F401 (imported from here)

if TYPE_CHECKING:  # torch and transformers load lazily: `stepdistill --help` should answer at once
    import torch
    from transformers import PreTrainedTokenizerBase

SINGLE_ANSWER_PHRASE = "So the answer is"  # single-task target: `<rationale> So the answer is <label>.`
IGNORE = -100
METHODS = ("standard", "dss", "single")


def single_answer(label: str) -> str:
    return f"{SINGLE_ANSWER_PHRASE} {label}."


def single_target(rationale: str | None, label: str) -> str:
    """`<rationale> So the answer is <label>.`; without a rationale the answer sentence alone, which the
    single-task parser reads (a bare label would score as wrong)."""
    return f"{rationale} {single_answer(label)}" if rationale else single_answer(label)


@dataclass(frozen=True)
class TaskTexts:
    label: tuple[str, str] | None  # (source, target); None: a rationale-only row, the label task skips it
    rationale: tuple[str, str] | None  # None: no usable rationale, the rationale task skips this example


def task_texts(example: Example, method: str, label: str, rationale: str | None, label_row: bool = True,
               prompts: PromptFormat = PREFIX) -> TaskTexts:
    """The training texts for one example (label_row=False: its rationale part alone). `single` with no rationale
    falls back to the answer sentence; its one target holds the label, so it always has a label part."""
    source = prompts.label(example.input)
    if method == "standard":
        return TaskTexts((source, label) if label_row else None, None)
    if method == "dss":
        return TaskTexts((source, label) if label_row else None,
                         (prompts.rationale(example.input), rationale) if rationale else None)
    if method == "single":
        return TaskTexts((source, single_target(rationale, label)), None)
    raise ValueError(f"unknown method {method!r} (expected one of {', '.join(METHODS)})")


class Encoder:
    """Token ids for (source, target) pairs, for seq2seq or decoder-only students.

    What is cut when a text is too long: a decoder-only input keeps the fixed text before x (the task prefix
    `[label]` / `[rationale]`, or the chat template's system turn) and the end of the rest (the question sits
    there, then a chat template's closing text); a seq2seq input keeps its start; a
    target keeps its start, except that a `single` target keeps its closing `So the answer is y.` (whole)
    and cuts the rationale before it. `sources_cut` and `targets_cut` count the texts cut so far.
    """

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", is_seq2seq: bool, max_source: int, max_target: int,
                 prompts: PromptFormat = PREFIX):
        self.tok, self.is_seq2seq, self.prompts = tokenizer, is_seq2seq, prompts
        self.max_source, self.max_target = max_source, max_target
        self.sources_cut = self.targets_cut = 0

    def prompt(self, source: str) -> str:
        if self.prompts.separator is None:  # NLI: premise EOS hypothesis, as in the paper (chat: x has a newline)
            source = source.replace(EOS_MARKER, self.tok.eos_token)
        return source if self.is_seq2seq else source + self.prompts.end

    def source_ids(self, source: str) -> list[int]:
        ids = self._ids(self.prompt(source), special=self.is_seq2seq)
        if self.is_seq2seq:
            if len(ids) <= self.max_source:
                return ids
            self.sources_cut += 1
            return ids[: self.max_source - 1] + ids[-1:]  # keep the closing EOS
        # BOS where the tokenizer adds one, unless the text already starts with it (a chat template may write it)
        bos = [self.tok.bos_token_id] if adds_bos(self.tok) and ids[:1] != [self.tok.bos_token_id] else []
        budget = self.max_source - len(bos)
        if len(ids) <= budget:
            return bos + ids
        self.sources_cut += 1
        head, rest = self.prompts.split(self.prompt(source))
        head_ids = self._ids(head) if head else []
        if budget <= len(head_ids):
            raise DataError(f"--max-source-len {self.max_source} leaves no room for the input after the "
                            f"{self.prompts.name} format's fixed text ({len(head_ids)} tokens)")
        return bos + head_ids + self._ids(rest)[-(budget - len(head_ids)):]  # the question sits at the end

    def target_ids(self, target: str) -> list[int]:
        ids, budget = self._ids(target), self.max_target - 1  # room for EOS
        if len(ids) > budget:
            self.targets_cut += 1
            at = target.rfind(" " + SINGLE_ANSWER_PHRASE)
            answer = self._ids(target[at:]) if at > 0 else []  # `single`: keep the answer, cut the rationale
            ids = self._ids(target[:at])[: max(budget - len(answer), 0)] + answer if answer else ids[:budget]
        return ids + [self.tok.eos_token_id]

    def encode(self, source: str, target: str) -> tuple[list[int], list[int]]:
        """(input_ids, labels). Seq2seq: labels are the target; decoder-only: prompt masked with -100."""
        src, tgt = self.source_ids(source), self.target_ids(target)
        if self.is_seq2seq:
            return src, tgt
        return src + tgt, [IGNORE] * len(src) + tgt

    def _ids(self, text: str, special: bool = False) -> list[int]:
        return self.tok(text, add_special_tokens=special).input_ids


def adds_bos(tokenizer: "PreTrainedTokenizerBase") -> bool:
    """Whether decoder-only prompts start with BOS: Llama-style tokenizers put it in front of every text (as the
    model was pretrained); the Encoder tokenises without special tokens and adds it, so training and generation
    see the same ids. Probed on a text rather than read from `add_bos_token`: transformers 5 reports False for a
    tokenizer loaded from files (a hub student, a run's saved tokenizer) whose post-processor still adds BOS."""
    if tokenizer.bos_token_id is None:
        return False
    ids = tokenizer("a").input_ids
    return bool(ids) and ids[0] == tokenizer.bos_token_id


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
    """Batch of encoded examples -> {"label": padded rows, "rationale": padded rows}; a task whose part no example
    of the batch has is left out (rationale-only rows have no label part, rows without a rationale no rationale
    part)."""

    def __init__(self, pad_id: int, is_seq2seq: bool):
        self.pad_id, self.is_seq2seq = pad_id, is_seq2seq

    def __call__(self, features: list[dict]) -> dict:
        batch = {}
        for task in ("label", "rationale"):
            rows = [(row[f"{task}_input_ids"], row[f"{task}_labels"]) for row in features if row[f"{task}_input_ids"]]
            if rows:
                batch[task] = pad_rows(rows, self.pad_id, self.is_seq2seq)
        return batch
