"""SVAMP: arithmetic word problems; the label is an equation, scored by its value."""

from __future__ import annotations

from ..jsonio import iter_jsonl, require
from .base import Example, Task


class SVAMP(Task):
    name = "svamp"
    parser = "equation"
    scorer = "equation"
    release_splits = ("train", "test")
    pool_split = "train"
    protocol_template = ("SVAMP: train = {train} of the release train split, valid = the other {valid} (seed 0), "
                         "test = release test")

    def read_split(self, split: str) -> list[Example]:
        path = self.input_path(split)
        examples = []
        for lineno, row in iter_jsonl(path):
            where = f"{path}:{lineno}"
            text = require(row, "input", where, str)  # body + "\n" + question, as released
            examples.append(Example(id=f"svamp-{split}-{lineno - 1}", input=text,
                                    label=require(row, "label", where, str), fields={"question": text}))
        return examples
