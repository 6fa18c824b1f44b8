"""Reading finished run folders for comparison: their record, their test predictions, and readable names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..jsonio import iter_jsonl, read_json, require

RUN_RECORD = "run.json"  # written by `stepdistill train`
TEST_PREDICTIONS = "predictions_test.jsonl"  # one row per test item: id, prediction, gold, correct
CHECKPOINT_SCORES = "checkpoint_scores.jsonl"  # analysis only (train --test-each-eval)
RATIONALES_SAMPLE = "rationales_sample.jsonl"  # a few training (input, rationale, label) rows

METHOD_NAMES = {"standard-gold": "standard finetuning", "standard-teacher": "standard distillation",
                "dss-gold": "distilling step-by-step", "dss-teacher": "distilling step-by-step (teacher labels)",
                "single-gold": "single-task (rationale then label)",
                "single-teacher": "single-task, teacher labels"}


def method_name(row: dict) -> str:
    key = f"{row['method']}-{row['labels']}"
    return METHOD_NAMES.get(key, key)


def task_name(task: str) -> str:
    """A user's jsonl task is named by its folder (or file) name, not by its absolute path."""
    if task.startswith("jsonl:"):
        return Path(task[len("jsonl:"):]).name
    return task


def student_name(student: str) -> str:
    """A student by its model name: a local folder or GGUF file by its file name (no .gguf), a hub id as is."""
    path = Path(student)
    if path.suffix == ".gguf":
        return path.stem
    if path.is_absolute() or path.exists():
        return path.name
    return student


def read_run(folder: str | Path) -> dict:
    """The run's record; a clear error when the folder is not a finished `stepdistill train` run."""
    path = Path(folder) / RUN_RECORD
    if not path.is_file():
        raise DataError(f"{folder}: no {RUN_RECORD} (not a finished `stepdistill train` run folder)")
    run = read_json(path)
    if run.get("status") != "done":
        raise DataError(f"{path}: the run has not finished (status {run.get('status')!r})")
    return run


def test_correctness(folder: str | Path) -> dict[str, bool]:
    """{test item id: answered correctly} from the run's test predictions."""
    path = Path(folder) / TEST_PREDICTIONS
    if not path.is_file():
        raise DataError(f"{folder}: no {TEST_PREDICTIONS} (the run was trained with --no-test, or did not finish)")
    return correctness(path)


def correctness(path: Path) -> dict[str, bool]:
    """{item id: answered correctly} from a predictions file (rows with `id` and `correct`), as eval writes it."""
    correct = {}
    for lineno, row in iter_jsonl(path):
        item = str(require(row, "id", f"{path}:{lineno}"))
        correct[item] = bool(require(row, "correct", f"{path}:{lineno}", (bool, int)))
    if not correct:
        raise DataError(f"{path}: no predictions")
    return correct


@dataclass
class RunScores:
    """One finished run: where it is, its record and its correctness on each test item."""
    folder: Path
    record: dict
    correct: dict[str, bool]

    @classmethod
    def load(cls, folder: str | Path) -> "RunScores":
        return cls(Path(folder), read_run(folder), test_correctness(folder))

    @property
    def seed(self) -> int | None:
        return self.record.get("seed")


def aligned(run_a: RunScores, run_b: RunScores) -> tuple[list[bool], list[bool]]:
    """Both runs' correctness in one item order; an error naming both runs when their test items differ."""
    if run_a.correct.keys() != run_b.correct.keys():
        shared = len(run_a.correct.keys() & run_b.correct.keys())
        raise DataError(f"{run_a.folder} and {run_b.folder} were scored on different test items "
                        f"({len(run_a.correct)} and {len(run_b.correct)} items, {shared} in common); "
                        "a paired comparison needs the same items")
    items = sorted(run_a.correct)
    return [run_a.correct[item] for item in items], [run_b.correct[item] for item in items]
