"""A user's own task from JSON Lines, so nobody must write Python to use their own data.

Spec: `jsonl:PATH[:SCORER]`. PATH is a folder with `train.jsonl` and optionally `valid.jsonl` and
`test.jsonl` (or one .jsonl file, used as train), SCORER is `exact` (default), `numeric` or `equation`.
Each line: `{"id"?, "input", "label"?, "rationale"?, "teacher_label"?, "completion"?}`. A raw teacher
`completion` is parsed with the generic parser (`... So the answer is <label>.`); a ready `rationale`
is used as it is, with `teacher_label` (or else the gold `label`) as the teacher's answer.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..jsonio import iter_jsonl, require
from ..parsing import Parsed
from ..scoring import SCORERS
from .base import PROTOCOL_SPLITS, SPLIT_SEED, VALID_FRACTION, Example, Task, hold_out


class JsonlTask(Task):
    parser = "generic"
    pool_split = "train"

    def __init__(self, path: str | Path, scorer: str = "exact"):
        path = Path(path)
        if scorer not in SCORERS:
            raise DataError(f"unknown scorer '{scorer}' (expected one of {', '.join(SCORERS)})")
        if not path.exists():
            raise DataError(f"{path}: file or folder not found")
        self.files = ({"train": path} if path.is_file()
                      else {s: path / f"{s}.jsonl" for s in PROTOCOL_SPLITS if (path / f"{s}.jsonl").is_file()})
        if "train" not in self.files and "test" not in self.files:
            raise DataError(f"{path}: expected train.jsonl (and optionally valid.jsonl, test.jsonl)")
        super().__init__(path if path.is_dir() else path.parent)
        self.name = f"jsonl:{path}"
        self.scorer = scorer
        self.release_splits = tuple(self.files)
        self.protocol = (f"{path}: own data; valid = " +
                         ("valid.jsonl" if "valid" in self.files else "10% of train held out (seed 0)"))

    def input_path(self, split: str) -> Path:
        return self.files[split]

    def read_split(self, split: str) -> list[Example]:
        path = self.input_path(split)
        examples = []
        for lineno, row in iter_jsonl(path):
            where = f"{path}:{lineno}"
            text = require(row, "input", where, str)
            label = row.get("label")
            if label is not None and not isinstance(label, (str, int, float)):
                raise DataError(f"{where}: field 'label' should be a string or number")
            ex = Example(id=str(row.get("id", f"{split}-{lineno - 1}")), input=text,
                         label=None if label is None else str(label), fields={"question": text, **row})
            if "completion" in row:
                ex = ex.with_teacher(require(row, "completion", where, str), self.parse(row["completion"]))
            elif "rationale" in row:
                rationale = require(row, "rationale", where, str)
                teacher_label = row.get("teacher_label", ex.label)
                ex = ex.with_teacher(rationale, Parsed(rationale, None if teacher_label is None else str(teacher_label)))
            examples.append(ex)
        return examples

    def teacher_completions(self, split: str) -> list[str] | None:
        return None  # teacher output, if any, sits on the same lines as the inputs

    def protocol_split(self, split: str, with_teacher: bool = True) -> list[Example]:
        if split == "valid" and "valid" in self.files:
            return self.load("valid", with_teacher)
        if split == "train" and "valid" in self.files:
            return self.load("train", with_teacher)
        if split in ("train", "valid"):
            train, valid = hold_out(self.load("train", with_teacher), VALID_FRACTION, SPLIT_SEED)
            return train if split == "train" else valid
        if split == "test" and "test" not in self.files:
            raise DataError(f"{self.data_dir}: no test.jsonl")
        return super().protocol_split(split, with_teacher)
