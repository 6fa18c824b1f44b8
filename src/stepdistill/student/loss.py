"""The two-task loss: each task's cross-entropy is a mean over that task's own target tokens.

Pooling both tasks' tokens into one mean would let long rationales swamp short labels; keeping the means
apart and mixing them with alpha is what the paper's objective says.

A batch with no rationale rows (every example in it lacks a usable rationale) still weights its label loss
by alpha: the label task's gradient scale then does not depend on which rows a batch happens to hold, and
the rationale term is simply absent (0) rather than its weight moving to the label task. alpha = 1
(standard, single) is the label loss alone.
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
        decoder_input_ids = _shift_right(labels, model)
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


def _shift_right(labels: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    inner = model.module if hasattr(model, "module") else model
    config = inner.config
    start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.pad_token_id
    shifted = labels.new_full(labels.shape, start)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == IGNORE, config.pad_token_id)


def two_task_loss(model: torch.nn.Module, batch: dict, is_seq2seq: bool, alpha: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(loss, label loss, rationale loss); the rationale loss is None for a batch without rationale rows, whose
    loss is then alpha * label loss (see the module docstring)."""
    label_loss = task_loss(model, batch["label"], is_seq2seq)
    if alpha >= 1.0:
        return label_loss, label_loss, None
    if "rationale" not in batch:
        return alpha * label_loss, label_loss, None
    rationale_loss = task_loss(model, batch["rationale"], is_seq2seq)
    loss = alpha * label_loss + (1 - alpha) * rationale_loss  # the objective of Distilling step-by-step
    return loss, label_loss, rationale_loss
