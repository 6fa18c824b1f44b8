"""CommonsenseQA (via CoS-E v1.11): five answer choices; the label is the right choice's text."""

from __future__ import annotations

from ..jsonio import iter_jsonl, require
from .base import Example, Task

CHOICE_LETTERS = "abcde"
CHOICES_HEADER = "Answer Choices:"  # the line between the question and its lettered choices


def format_input(question: str, choices: list[str]) -> str:
    lines = [question, CHOICES_HEADER] + [f"({CHOICE_LETTERS[i]}) {c}" for i, c in enumerate(choices)]
    return "\n".join(lines)


def choices_in(text: str) -> list[str]:
    """The answer choices of an input written by format_input, in order ([] for a text without them)."""
    _, marker, listing = text.rpartition(f"\n{CHOICES_HEADER}\n")
    if not marker:
        return []
    choices = []
    for letter, line in zip(CHOICE_LETTERS, listing.split("\n")):
        prefix = f"({letter}) "
        if not line.startswith(prefix):
            break
        choices.append(line[len(prefix):])
    return choices


class CQA(Task):
    name = "cqa"
    parser = "multiple_choice"
    scorer = "exact"
    release_splits = ("train", "test")
    pool_split = "train"
    protocol_template = ("CQA: train = {train} of the release train split, valid = the other {valid} (seed 0), "
                         "test = release test")

    def read_split(self, split: str) -> list[Example]:
        path = self.input_path(split)
        examples = []
        for lineno, row in iter_jsonl(path):
            where = f"{path}:{lineno}"
            question = require(row, "question", where, str)
            choices = require(row, "choices", where, list)
            examples.append(Example(
                id=str(require(row, "id", where)),
                input=format_input(question, choices),
                label=require(row, "answer", where, str),
                fields={"question": question, "choices": choices},
            ))
        return examples
