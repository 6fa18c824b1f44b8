"""The two-task loss: each task's cross-entropy is a mean over that task's own target tokens.

Pooling both tasks' tokens into one mean would let long rationales swamp short labels; keeping the means
apart and mixing them with alpha is what the paper's objective says.

A task with no target tokens in a batch contributes 0, and the other keeps its own weight: a batch with no
rationale rows (every example in it lacks a usable rationale) is alpha * L_label, a batch of rationale-only rows
(extra rationales, train --rationales-per-input all) is (1 - alpha) * L_rationale. A task's gradient scale then
does not depend on which rows a batch happens to hold, and the mean over no tokens (NaN) is never taken.
alpha = 1 (standard, single) is the label loss alone.
"""

from __future__ import annotations

import functools
import inspect

import torch
import torch.nn.functional as F

from .features import IGNORE


def _accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    inner = model.module if hasattr(model, "module") else model  # DDP
    return _forward_takes_logits_to_keep(type(inner)) or hasattr(inner, "get_base_model")  # peft passes it on


@functools.lru_cache(maxsize=None)
def _forward_takes_logits_to_keep(cls: type) -> bool:  # once per model class, not at every step
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def task_loss(model: torch.nn.Module, rows: dict[str, torch.Tensor], is_seq2seq: bool) -> torch.Tensor:
    """Mean cross-entropy over the target tokens of one task's rows (a 0-dim tensor)."""
    labels = rows["labels"]
    if is_seq2seq:
        decoder_input_ids = shift_right(labels, model)
        logits = model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"],
                       decoder_input_ids=decoder_input_ids).logits  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)
    # Decoder-only, left-padded: targets end at the last position, so only the last K positions need
    # logits (K = longest target + 1). That skips the vocabulary projection for prompt tokens.
    target_len = int((labels != IGNORE).sum(-1).max())
    keep = target_len + 1
    kwargs = {"logits_to_keep": keep} if _accepts_logits_to_keep(model) else {}
    logits = model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"],
                   position_ids=rows["position_ids"], **kwargs).logits  # (B, K or T, V)
    logits = logits[:, -keep:-1]  # position t predicts token t+1
    targets = labels[:, -keep + 1:]
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


def shift_right(labels: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    inner = model.module if hasattr(model, "module") else model
    config = inner.config
    start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.pad_token_id
    shifted = labels.new_full(labels.shape, start)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == IGNORE, config.pad_token_id)


def two_task_loss(model: torch.nn.Module, batch: dict, is_seq2seq: bool, alpha: float
                  ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(loss, label loss, rationale loss); a part is None when the batch has no target tokens for that task (or
    alpha = 1 makes the rationale part unused), and then contributes 0 (see the module docstring)."""
    label_loss = task_loss(model, batch["label"], is_seq2seq) if has_targets(batch, "label") else None
    rationale_loss = None
    if alpha < 1.0 and has_targets(batch, "rationale"):
        rationale_loss = task_loss(model, batch["rationale"], is_seq2seq)
    if label_loss is None and rationale_loss is None:
        return zero_loss(model), None, None
    label_term = alpha * label_loss if label_loss is not None else 0.0
    rationale_term = (1 - alpha) * rationale_loss if rationale_loss is not None else 0.0
    loss = label_term + rationale_term  # alpha * L_label + (1 - alpha) * L_rationale: Distilling step-by-step
    return loss, label_loss, rationale_loss


def has_targets(batch: dict, task: str) -> bool:
    """Whether the batch holds rows of this task with at least one target token."""
    return task in batch and bool((batch[task]["labels"] != IGNORE).any())


def zero_loss(model: torch.nn.Module) -> torch.Tensor:
    """0, attached to the graph, for a batch with nothing to learn (dss at alpha = 1 on rationale-only rows):
    backward then runs and leaves the gradients at 0."""
    parameter = next(param for param in model.parameters() if param.requires_grad)
    return parameter.sum() * 0.0
