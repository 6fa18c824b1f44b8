"""Checkpoint selection: each evaluated checkpoint's validation accuracy (kept with its predictions, so the
chosen one needs no second pass), and optionally, for analysis only, its test accuracy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..tasks.base import Example, Task
from .infer import predict, score_predictions
from .models import Student
from .settings import TrainSettings

CHECKPOINT_SCORES_FILE = "checkpoint_scores.jsonl"


class CheckpointEvaluator:
    """Called by the trainer at every evaluation with the model being trained and the trainer's state."""

    def __init__(self, task: Task, valid: list[Example], student: Student, settings: TrainSettings, out: Path):
        self.task, self.valid, self.student, self.settings, self.out = task, valid, student, settings, out
        self.valid_rows_by_step: dict[int, list[dict]] = {}

    def predict(self, model, examples: list[Example]) -> list[dict]:
        settings = self.settings
        return predict(dataclasses.replace(self.student, model=model), examples, settings.method,
                       settings.label_tokens, settings.eval_batch_size, bf16=settings.bf16,
                       progress=settings.progress)

    def __call__(self, model, state) -> float:
        rows = self.predict(model, self.valid)
        accuracy = score_predictions(self.task, self.valid, rows)
        self.valid_rows_by_step[state.global_step] = rows
        if self.settings.test_each_eval:
            self.record_test_score(model, state, accuracy)
        return accuracy

    def record_test_score(self, model, state, valid_accuracy: float) -> None:
        """Analysis only: the test accuracy of every evaluated checkpoint, to measure what selection on a small
        validation split costs. Checkpoints are still chosen on validation alone."""
        test = self.task.protocol_split("test", with_teacher=False)
        rows = self.predict(model, test)
        score = {"step": state.global_step, "epoch": round(state.epoch or 0, 3), "valid_accuracy": valid_accuracy,
                 "test_accuracy": score_predictions(self.task, test, rows)}
        with (self.out / CHECKPOINT_SCORES_FILE).open("a") as handle:
            handle.write(json.dumps(score) + "\n")
