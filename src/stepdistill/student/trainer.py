"""The Hugging Face Trainer, with the two-task loss of Distilling step-by-step and validation-accuracy evaluation.

The Trainer brings multi-GPU (torchrun / accelerate launch: DDP, FSDP, DeepSpeed), gradient accumulation,
mixed precision, TensorBoard logs and resumable checkpoints; this subclass changes only what is ours.
"""

from __future__ import annotations

from typing import Callable

from transformers import Trainer, TrainerCallback

from .loss import two_task_loss


class TwoTaskTrainer(Trainer):
    """Trainer whose loss is the two-task objective, with both parts logged, and whose evaluation is
    label-only generation accuracy on validation (what checkpoint selection uses)."""

    def __init__(self, *args, alpha: float, alpha_schedule: str, is_seq2seq: bool,
                 evaluator: Callable[..., float], **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha, self.alpha_schedule, self.is_seq2seq = alpha, alpha_schedule, is_seq2seq
        self.evaluator = evaluator  # (model, trainer state) -> validation accuracy in percent
        self.model_accepts_loss_kwargs = False  # our loss is already a mean; let Trainer scale for accumulation
        self._parts: dict[str, list[float]] = {"label_loss": [], "rationale_loss": []}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, label_loss, rationale_loss = two_task_loss(model, inputs, self.is_seq2seq, self.current_alpha())
        for name, part in (("label_loss", label_loss), ("rationale_loss", rationale_loss)):
            if part is not None:  # a batch of rationale-only rows has no label loss, one without rationales none
                self._parts[name].append(part.item())
        return (loss, None) if return_outputs else loss

    def current_alpha(self) -> float:
        """linear: the rationale weight (1 - alpha) falls to 0 at the last step."""
        if self.alpha_schedule == "constant" or self.alpha >= 1.0:
            return self.alpha
        progress = self.state.global_step / max(self.state.max_steps, 1)
        return 1.0 - (1.0 - self.alpha) * (1.0 - progress)

    def log(self, logs, start_time=None):
        if "loss" in logs:
            logs["alpha"] = round(self.current_alpha(), 4)
            for name, values in self._parts.items():
                if values:
                    logs[name] = round(sum(values) / len(values), 4)
                values.clear()
        super().log(logs, start_time)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        model = self.accelerator.unwrap_model(self.model)
        metrics = {f"{metric_key_prefix}_accuracy": self.evaluator(model, self.state)}  # eval_dataset: unused
        model.train()
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


class EvaluateAtLastStep(TrainerCallback):
    """The last step is always evaluated and saved, so it can be chosen too."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_evaluate = True
            control.should_save = True
        return control
