"""Checkpoint selection: each evaluated checkpoint's validation accuracy (kept with its predictions, so the
chosen one needs no second pass), and optionally, for analysis only, its test accuracy."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

from ..errors import DataError
from ..tasks.base import Example, Task
from .infer import predict, score_predictions
from .memory import release_free_memory
from .models import Student
from .prompts import PromptFormat
from .settings import TrainSettings

CHECKPOINT_SCORES_FILE = "checkpoint_scores.jsonl"


def validation_examples(task: Task, settings: TrainSettings) -> list[Example]:
    """The validation split checkpoints are chosen on, each example carrying the label it is scored against:
    gold, or (--select-on teacher, the unlabeled setting) the teacher's label for that input in its place."""
    if settings.selection_labels == "gold":
        valid = task.protocol_split("valid", with_teacher=False)
        if not any(example.label is not None for example in valid):
            raise DataError(f"{task.name}: the validation split has no gold labels, so checkpoints cannot be chosen "
                            "on them; use --select-on teacher")
    else:
        valid = [dataclasses.replace(example, label=example.teacher_label)
                 for example in teacher_labelled(task, settings.rationales) if example.teacher_label is not None]
        if not valid:
            raise DataError(f"{task.name}: --select-on teacher, but no validation input has a teacher label "
                            f"({settings.rationales or 'released completions'}); extract the validation inputs too "
                            "(they come from the train pool) or use --select-on gold")
    return valid[: settings.eval_limit] if settings.eval_limit else valid


def teacher_labelled(task: Task, rationales: str | None) -> list[Example]:
    """Validation examples with the teacher's labels: from an extraction folder, else the released completions."""
    if not rationales:
        return task.protocol_split("valid")
    from ..teacher.output import read_rationales

    by_id = read_rationales(rationales)
    return [dataclasses.replace(example, teacher_label=by_id[example.id].get("teacher_label"))
            for example in task.protocol_split("valid", with_teacher=False) if example.id in by_id]


def selection_protocol(settings: TrainSettings) -> str:
    """The part of the protocol line that says what the checkpoint was chosen on."""
    labels = "gold labels" if settings.selection_labels == "gold" else "the teacher's labels (no gold labels used)"
    return f"checkpoint chosen on validation accuracy against {labels}"


def warn_if_no_checkpoint_scored(log_history: list[dict]) -> str | None:
    """A warning when every evaluated checkpoint scored 0% (then the first one is kept, which says nothing)."""
    scores = [entry["eval_accuracy"] for entry in log_history if "eval_accuracy" in entry]
    if not scores or any(score > 0 for score in scores):
        return None
    message = (f"every evaluated checkpoint ({len(scores)}) scored 0% on validation, so the choice of checkpoint "
               "is arbitrary (the first is kept); check the validation labels (--select-on) and the label length")
    warnings.warn(message, stacklevel=2)
    return message


class CheckpointEvaluator:
    """Called by the trainer at every evaluation with the model being trained and the trainer's state."""

    def __init__(self, task: Task, valid: list[Example], student: Student, settings: TrainSettings, out: Path,
                 prompts: PromptFormat):
        self.task, self.valid, self.student, self.settings, self.out = task, valid, student, settings, out
        self.prompts = prompts  # the run's input format: checkpoints are scored on the prompts they trained on
        self.valid_rows_by_step: dict[int, list[dict]] = {}

    def predict(self, model, examples: list[Example]) -> list[dict]:
        settings = self.settings
        return predict(dataclasses.replace(self.student, model=model), examples, settings.method,
                       settings.label_tokens, settings.eval_batch_size, bf16=settings.bf16,
                       progress=settings.progress, max_source=settings.max_source_len, prompts=self.prompts)

    def __call__(self, model, state) -> float:
        rows = self.predict(model, self.valid)
        accuracy = score_predictions(self.task, self.valid, rows)
        self.valid_rows_by_step[state.global_step] = rows
        if self.settings.test_each_eval:
            self.record_test_score(model, state, accuracy)
        release_free_memory()  # generation's buffers, before training resumes
        return accuracy

    def record_test_score(self, model, state, valid_accuracy: float) -> None:
        """Analysis only: the test accuracy of every evaluated checkpoint, and the test items it got right, to
        measure what selection on a small validation split costs (and compare runs at a fixed budget, item by
        item). Checkpoints are still chosen on validation alone."""
        test = self.task.protocol_split("test", with_teacher=False)
        rows = self.predict(model, test)
        score = {"step": state.global_step, "epoch": round(state.epoch or 0, 3), "valid_accuracy": valid_accuracy,
                 "test_accuracy": score_predictions(self.task, test, rows),
                 "test_right": [row["id"] for row in rows if row["correct"]]}  # pairs runs at any checkpoint
        with (self.out / CHECKPOINT_SCORES_FILE).open("a") as handle:
            handle.write(json.dumps(score) + "\n")
