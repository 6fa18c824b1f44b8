"""The Task interface: load a split, attach the teacher's completions, parse one, score a prediction.

Two kinds of split names are used:
- release splits, the files as the data release has them (`train`, `valid`, `test`);
- protocol splits, what training and evaluation use (`train`, `valid`, `test`). CQA and SVAMP hold out
  10% of the release train split for validation (the paper's rule). ANLI and e-SNLI have no train inputs
  here, so their pool is the release validation split (90% train, 10% validation) and test is test.
  A task spec's `valid_fraction` holds out another share of the same pool (same seed, test unchanged).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from ..errors import DataError
from ..jsonio import read_json
from ..parsing import PARSERS, Parsed
from ..scoring import SCORERS

PROTOCOL_SPLITS = ("train", "valid", "test")
VALID_FRACTION = 0.1
SPLIT_SEED = 0  # fixed: every run of every method sees the same validation set
EOS_MARKER = "</s>"  # joins NLI premise and hypothesis; students swap in their tokenizer's EOS token


@dataclass(frozen=True)
class Example:
    id: str
    input: str  # the student's input text, formatted as in the paper
    label: str | None  # gold label text, None when the data has none
    fields: dict = field(default_factory=dict, compare=False)  # raw fields, for teacher prompts
    completion: str | None = None  # the teacher's raw completion, if any
    rationale: str | None = None  # parsed from the completion (or given directly)
    teacher_label: str | None = None
    parse_error: str | None = None  # why the completion did not parse; None when it did or is absent

    def with_teacher(self, completion: str, parsed: Parsed) -> "Example":
        return replace(self, completion=completion, rationale=parsed.rationale if parsed.ok else None,
                       teacher_label=parsed.label, parse_error=parsed.error)


class Task:
    name: str = ""
    parser: str = "generic"  # key of parsing.PARSERS
    scorer: str = "exact"  # key of scoring.SCORERS
    release_splits: tuple[str, ...] = ()
    pool_split: str = "train"  # release split that protocol train + valid are drawn from
    protocol_template: str = ""  # the protocol line, with {train} and {valid}: the pool's shares, e.g. 90%

    def __init__(self, data_dir: str | Path, valid_fraction: float | None = None):
        self.data_dir = Path(data_dir)
        self.valid_fraction = VALID_FRACTION if valid_fraction is None else valid_fraction
        # one line saying which data the numbers come from
        self.protocol = self.protocol_template.format(**pool_shares(self.valid_fraction))

    # -- to implement per task ------------------------------------------------------------------
    def read_split(self, split: str) -> list[Example]:
        """The release split's inputs and gold labels, without teacher output."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def parse(self, completion: str) -> Parsed:
        return PARSERS[self.parser](completion)

    def score(self, prediction: str | None, gold: str | None) -> bool:
        return SCORERS[self.scorer](prediction, gold)

    def answer_choices(self, example: Example) -> list[str] | None:
        """The answers an example allows (`eval --answer choices`): its `choices` field (CQA; a JSON Lines row's
        own `choices` list of strings), or None for an open answer."""
        return choice_list(example.fields.get("choices"))

    def input_path(self, split: str) -> Path:
        return self.data_dir / self.name / f"{self.name}_{split}.json"

    def check_split(self, split: str) -> None:
        if split not in self.release_splits:
            raise DataError(f"task {self.name} has no split '{split}' with inputs here "
                            f"(available: {', '.join(self.release_splits)})")

    def teacher_files(self, split: str) -> list[Path]:
        """llm/<split>_CoT_<k>.json in numeric order of k."""
        files = list((self.data_dir / self.name / "llm").glob(f"{split}_CoT_*.json"))
        def number(path: Path) -> int:
            match = re.fullmatch(rf"{split}_CoT_(\d+)\.json", path.name)
            return int(match.group(1)) if match else -1
        files = sorted((path for path in files if number(path) >= 0), key=number)
        if files and [number(path) for path in files] != list(range(len(files))):
            raise DataError(f"{files[0].parent}: teacher files for '{split}' skip a number: "
                            f"{', '.join(p.name for p in files)} (expected {split}_CoT_0 ... in order)")
        return files

    def teacher_completions(self, split: str) -> list[str] | None:
        """The released completions for a release split, concatenated; None if there are none."""
        files = self.teacher_files(split)
        if not files:
            return None
        completions: list[str] = []
        for path in files:
            chunk = read_json(path)
            if not isinstance(chunk, list):
                raise DataError(f"{path}: expected a JSON array of completion strings, got {type(chunk).__name__}")
            for position, item in enumerate(chunk):
                if not isinstance(item, str):
                    raise DataError(f"{path}: item {position} should be a string, got {type(item).__name__}")
            completions.extend(chunk)
        return completions

    def load(self, split: str, with_teacher: bool = True) -> list[Example]:
        """A release split with the released teacher completions attached (when there are any)."""
        self.check_split(split)
        examples = self.read_split(split)
        if not with_teacher:
            return examples
        completions = self.teacher_completions(split)
        if completions is None:
            return examples
        if len(completions) != len(examples):
            raise DataError(
                f"{self.teacher_files(split)[0].parent}: {len(completions)} teacher completions in "
                f"{split}_CoT_*.json but {len(examples)} inputs in {self.input_path(split)}; "
                "expected one completion per input line, in order")
        return [ex.with_teacher(c, self.parse(c)) for ex, c in zip(examples, completions)]

    streams = False  # stream() reads the split lazily (tasks/rows.py), not loaded whole first

    def stream(self, split: str, with_teacher: bool = True) -> Iterator[Example]:
        """A release split's examples one at a time, as load() gives them. Here the split is loaded whole
        (the benchmarks' files are JSON arrays of a few thousand inputs); a user's rows are read lazily."""
        return iter(self.load(split, with_teacher))

    def protocol_split(self, split: str, with_teacher: bool = True) -> list[Example]:
        """train / valid / test under this task's data protocol (see the module docstring)."""
        if split not in PROTOCOL_SPLITS:
            raise DataError(f"unknown split '{split}' (expected one of {', '.join(PROTOCOL_SPLITS)})")
        if split == "test":
            return self.load("test", with_teacher)
        pool = self.load(self.pool_split, with_teacher)
        train, valid = hold_out(pool, self.valid_fraction, SPLIT_SEED)
        return train if split == "train" else valid


def choice_list(value) -> list[str] | None:
    """`value` when it is a non-empty list of strings (a row's answer choices), else None."""
    if isinstance(value, list) and value and all(isinstance(choice, str) for choice in value):
        return value
    return None


def pool_shares(valid_fraction: float) -> dict[str, str]:
    """The pool's train and valid shares as the protocol line states them: {"train": "90%", "valid": "10%"}."""
    def percent(share: float) -> str:
        return f"{round(share * 100, 2):g}%"
    return {"train": percent(1 - valid_fraction), "valid": percent(valid_fraction)}


def hold_out(examples: list, fraction: float, seed: int) -> tuple[list, list]:
    """(rest, held out), the held-out part a seeded random `fraction`, both in the original order."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_out = round(len(examples) * fraction)
    out = set(order[:n_out])
    return ([ex for i, ex in enumerate(examples) if i not in out],
            [ex for i, ex in enumerate(examples) if i in out])


def take_fraction(examples: list, fraction: float, seed: int) -> list:
    """A seeded subset of about `fraction` of the examples. Subsets nest: for one seed, the 0.25 subset
    contains the 0.125 one, since both are prefixes of the same permutation."""
    if not 0 < fraction <= 1:
        raise DataError(f"fraction must be in (0, 1], got {fraction}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    keep = set(order[: max(1, round(len(examples) * fraction))])
    return [ex for i, ex in enumerate(examples) if i in keep]
