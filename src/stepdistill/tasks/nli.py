"""What ANLI and e-SNLI share: premise + hypothesis, label 0/1/2 = entailment/neutral/contradiction."""

from __future__ import annotations

from ..errors import DataError
from ..jsonio import iter_jsonl, require
from ..parsing import NLI_LABELS
from .base import EOS_MARKER, Example, Task

NLI_PROTOCOL = ("{name}: the release has no train inputs here, so train = {train} of the release validation "
                "split, valid = the other {valid} (seed 0), test = release test")


def format_input(premise: str, hypothesis: str) -> str:
    return f"{premise} {EOS_MARKER} {hypothesis}"


class NLITask(Task):
    release_splits = ("valid", "test")
    pool_split = "valid"
    scorer = "exact"
    id_field: str | None = None

    def answer_choices(self, example: Example) -> list[str]:
        return list(NLI_LABELS)

    def read_split(self, split: str) -> list[Example]:
        path = self.input_path(split)
        examples = []
        for lineno, row in iter_jsonl(path):
            where = f"{path}:{lineno}"
            premise = require(row, "premise", where, str)
            hypothesis = require(row, "hypothesis", where, str)
            label = require(row, "label", where, int)
            if label not in (0, 1, 2):
                raise DataError(f"{where}: field 'label' should be 0, 1 or 2, got {label}")
            ex_id = str(row[self.id_field]) if self.id_field and self.id_field in row else f"{self.name}-{split}-{lineno - 1}"
            examples.append(Example(id=ex_id, input=format_input(premise, hypothesis), label=NLI_LABELS[label],
                                    fields={"premise": premise, "hypothesis": hypothesis}))
        return examples
