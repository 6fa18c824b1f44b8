"""What a user's own task shares, whatever it is read from (files or `hf:` datasets): rows become
examples through a RowFormat, teacher output may sit on the rows, and the splits follow the data.

A row may carry teacher output: a raw `completion` (parsed with the generic parser, `... So the answer
is <label>.`), or a ready `rationale` with `teacher_label` (else the gold label) as the teacher's answer.
Splits: the data's own train / valid / test when it has them; with no valid split, 10% of train is held
out (seed 0), the project's protocol rule, or the share the spec's `valid_fraction` asks for (refused for
data with a valid split of its own, which would otherwise be silently ignored).
"""

from __future__ import annotations

from typing import Iterator

from ..errors import DataError
from ..parsing import Parsed
from ..scoring import SCORERS
from .base import SPLIT_SEED, Example, Task, hold_out, pool_shares
from .spec import RowFormat, TaskSpec

VALID_NAMES = ("valid", "validation", "dev")  # what datasets call the validation split


def check_scorer(scorer: str) -> str:
    if scorer not in SCORERS:
        raise DataError(f"unknown scorer '{scorer}' (expected one of {', '.join(SCORERS)})")
    return scorer


class RowTask(Task):
    parser = "generic"
    pool_split = "train"

    def __init__(self, spec: TaskSpec, scorer: str, data_dir):
        super().__init__(data_dir, spec.valid_fraction)
        self.scorer = check_scorer(scorer)
        self.format = RowFormat(spec)
        self.asked_valid_fraction = spec.valid_fraction  # None unless the spec sets one

    def use_splits(self, splits, name: str) -> None:
        """The data's release splits, and the protocol line that says how train and valid come from them."""
        if "valid" in splits and self.asked_valid_fraction is not None:
            raise DataError(f"{name}: --valid-fraction {self.asked_valid_fraction:g} asks to hold out part of train, "
                            "but the data has a valid split of its own, which is used as it is; drop "
                            "--valid-fraction (valid_fraction) or the valid split")
        self.release_splits = tuple(splits)
        self.protocol = f"{name}: own data; valid = " + (
            "its valid split" if "valid" in splits
            else "{valid} of train held out (seed 0)".format(**pool_shares(self.valid_fraction)))

    # -- to implement: (where, row) pairs of a release split, and its columns when known -------------
    def rows(self, split: str):
        raise NotImplementedError

    def columns(self, split: str) -> list[str] | None:
        return None

    def source(self, split: str) -> str:
        return str(self.input_path(split))

    # -- shared ---------------------------------------------------------------------------------------
    streams = True

    def read_split(self, split: str) -> list[Example]:
        return list(self._examples(split))

    def stream(self, split: str, with_teacher: bool = True) -> Iterator[Example]:
        """The split's rows as examples, read one at a time (teacher output, if any, sits on the rows)."""
        self.check_split(split)
        return self._examples(split)

    def _examples(self, split: str) -> Iterator[Example]:
        self.format.check_columns(self.columns(split), self.source(split))
        for index, (where, row) in enumerate(self.rows(split)):
            yield self.row_example(row, where, f"{split}-{index}")

    def row_example(self, row: dict, where: str, default_id: str) -> Example:
        text = self.format.input_text(row, where)
        ex = Example(id=self.format.example_id(row, where, default_id), input=text,
                     label=self.format.label(row, where), fields={"question": text, **row})
        completion, rationale = row.get("completion"), row.get("rationale")
        if completion not in (None, ""):
            if not isinstance(completion, str):
                raise DataError(f"{where}: field 'completion' should be a string")
            return ex.with_teacher(completion, self.parse(completion))
        if rationale not in (None, ""):
            if not isinstance(rationale, str):
                raise DataError(f"{where}: field 'rationale' should be a string")
            teacher_label = row.get("teacher_label")
            teacher_label = ex.label if teacher_label in (None, "") else str(teacher_label)
            return ex.with_teacher(rationale, Parsed(rationale, teacher_label))
        return ex

    def teacher_completions(self, split: str) -> list[str] | None:
        return None  # teacher output, if any, sits on the same rows as the inputs

    def protocol_split(self, split: str, with_teacher: bool = True) -> list[Example]:
        if split in ("train", "valid") and "valid" in self.release_splits:
            return self.load(split, with_teacher)
        if split in ("train", "valid"):
            train, valid = hold_out(self.load("train", with_teacher), self.valid_fraction, SPLIT_SEED)
            return train if split == "train" else valid
        if split == "test" and "test" not in self.release_splits:
            raise DataError(f"{self.name}: no test split")
        return super().protocol_split(split, with_teacher)
