"""Answering by choosing: the listed choice the student finds most likely, instead of free generation.

`eval --answer choices` on a multiple-choice task (CQA's five choices, NLI's three labels). Each choice c is
scored as log p(c + EOS | the label task's source), summed over its tokens: the probability that the student,
decoding freely, would write exactly that answer and stop. The EOS matters: without it a choice that is a
prefix of a likelier text ("farm" inside "farm yard") borrows that text's probability. This is how
lm-evaluation-harness scores multiple choice (it leaves EOS out); the paper scores generated labels by exact
match, which stays the default here. Sources and targets are built and cut exactly as in training
(features.Encoder), so a choice's tokens are the ones a label target of that text was trained on.

Decoder-only students read each source once: the source's key/value cache is copied to its choices, which
then cost a few tokens each. Encoder-decoder students encode each source once likewise.
"""

from __future__ import annotations

import copy
import functools
import inspect

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache

from .features import IGNORE, Encoder, pad_ids, padding_mask
from .loss import shift_right
from .models import Student
from .prompts import PREFIX, PromptFormat

MAX_CHOICE_TOKENS = 256  # train's default --max-target-len: a longer choice is cut where its label target was


@torch.inference_mode()
def choice_logprobs(student: Student, sources: list[str], choices: list[list[str]], batch_size: int = 32,
                    max_source: int = 512, prompts: PromptFormat = PREFIX, progress: bool = True
                    ) -> list[list[float]]:
    """For each source (a label-task input x, not yet formatted) the summed log-probability of each of its
    choices, in the order given."""
    if len(sources) != len(choices):
        raise ValueError(f"{len(sources)} sources but {len(choices)} lists of choices")
    model, tokenizer = student.model, student.tokenizer
    model.eval()
    encoder = Encoder(tokenizer, student.is_seq2seq, max_source, MAX_CHOICE_TOKENS, prompts)
    source_ids = [encoder.source_ids(prompts.label(text)) for text in sources]
    target_ids = [[encoder.target_ids(choice) for choice in row] for row in choices]
    order = sorted(range(len(sources)), key=lambda index: -len(source_ids[index]))
    scores: list[list[float]] = [[] for _ in sources]
    score_batch = _seq2seq_batch if student.is_seq2seq else _decoder_batch
    bar = tqdm(total=len(sources), desc="choices", unit="ex", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        batch = order[start: start + batch_size]
        owners = [slot for slot, index in enumerate(batch) for _ in target_ids[index]]  # a row per choice
        targets = [target for index in batch for target in target_ids[index]]
        flat = iter(score_batch(model, tokenizer, [source_ids[index] for index in batch], owners, targets))
        for index in batch:
            scores[index] = [next(flat) for _ in target_ids[index]]
        bar.update(len(batch))
    bar.close()
    return scores


def pick(choices: list[str], scores: list[float]) -> str | None:
    """The likeliest choice (the first of equals), None when there are none."""
    return max(zip(choices, scores), key=lambda pair: pair[1])[0] if choices else None


def _decoder_batch(model, tokenizer, sources: list[list[int]], owners: list[int], targets: list[list[int]]
                   ) -> list[float]:
    """Decoder-only: the sources once (left-padded, cached), then every choice's tokens after its source."""
    device = next(model.parameters()).device
    mask = torch.tensor(padding_mask(sources, left=True), device=device)  # (B, S)
    cache = DynamicCache(config=model.config)  # filled in place by the first call, then copied to the choices
    out = model(input_ids=torch.tensor(pad_ids(sources, tokenizer.pad_token_id, left=True), device=device),
                attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=True,
                logits_to_keep=1, **{_cache_argument(model): cache})
    first = out.logits[:, -1].float().log_softmax(-1)  # (B, V): the first target token follows the source
    scores = first[torch.tensor(owners, device=device), torch.tensor([t[0] for t in targets], device=device)]
    starts = mask.sum(-1)  # (B,): real source tokens, where each source's choice positions start
    # The later tokens, in groups of one length: most choices are 1-3 tokens, so padding every row to the
    # longest of the batch would more than double this pass.
    for length in sorted({len(target) - 1 for target in targets} - {0}):
        rows = [row for row, target in enumerate(targets) if len(target) - 1 == length]
        index = torch.tensor([owners[row] for row in rows], device=device)
        steps = torch.tensor([targets[row][:-1] for row in rows], device=device)  # (G, length): position t
        labels = torch.tensor([targets[row][1:] for row in rows], device=device)  # predicts labels[:, t]
        positions = starts[index][:, None] + torch.arange(length, device=device)[None, :]
        logits = model(input_ids=steps, attention_mask=torch.cat([mask[index], torch.ones_like(steps)], dim=-1),
                       position_ids=positions, use_cache=True,
                       **{_cache_argument(model): _rows_of(cache, index)}).logits  # (G, length, V)
        scores[torch.tensor(rows, device=device)] += _summed(logits, labels)
    return scores.tolist()


def _rows_of(cache: DynamicCache, index: torch.Tensor) -> DynamicCache:
    """A cache holding the given batch rows of `cache` (repeated as the index repeats them), `cache` unchanged:
    selecting and appending give the copy's layers new tensors rather than writing into the shared ones."""
    rows = copy.copy(cache)
    rows.layers = [copy.copy(layer) for layer in cache.layers]
    rows.batch_select_indices(index)
    return rows


def _seq2seq_batch(model, tokenizer, sources: list[list[int]], owners: list[int], targets: list[list[int]]
                   ) -> list[float]:
    """Encoder-decoder: each source encoded once, each choice decoded against its source's encoding."""
    device = next(model.parameters()).device
    mask = torch.tensor(padding_mask(sources, left=False), device=device)  # (B, S)
    hidden = model.get_encoder()(input_ids=torch.tensor(pad_ids(sources, tokenizer.pad_token_id, left=False),
                                                        device=device), attention_mask=mask).last_hidden_state
    index = torch.tensor(owners, device=device)
    labels = torch.tensor(pad_ids(targets, IGNORE, left=False), device=device)  # (C, L)
    logits = model(encoder_outputs=(hidden[index],), attention_mask=mask[index],
                   decoder_input_ids=shift_right(labels, model)).logits  # (C, L, V); no loss computed
    return _summed(logits, labels).tolist()


@functools.lru_cache(maxsize=None)
def _cache_argument_of(cls: type) -> str:
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def _cache_argument(model) -> str:
    """The forward argument that takes a KV cache: `cache` since transformers 5.24, `past_key_values` before."""
    return _cache_argument_of(type(model))


def _summed(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(C,) sum over each row's target tokens of log p(token); IGNORE positions add 0."""
    logits = logits.float()  # (C, L, V)
    picked = logits.gather(-1, labels.clamp(min=0)[..., None])[..., 0] - logits.logsumexp(-1)  # (C, L) log p
    return picked.masked_fill(labels == IGNORE, 0.0).sum(-1)
