"""Which examples a run trains on, with which label and which rationale, and how many were skipped."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import DataError
from ..tasks.base import Example, Task, take_fraction


@dataclass
class TrainingExample:
    example: Example
    label: str  # the target of the label task: gold y, or the teacher's y' when --labels teacher
    rationale: str | None  # None: no usable rationale, the rationale task skips this example


@dataclass
class DataReport:
    pool: int  # protocol train split size
    selected: int  # after --fraction
    used: int  # with a label to train on
    no_teacher_label: int  # dropped for --labels teacher: the teacher gave no parsable label
    no_rationale: int  # the rationale task skips these (parse failure, filtered out, or none)


def attach_extracted(examples: list[Example], folder: str | Path) -> list[Example]:
    """Replace released completions with `stepdistill extract` output (its kept rows, first sample each)."""
    from ..teacher.output import read_rationales

    by_id = read_rationales(folder)
    if not any(ex.id in by_id for ex in examples):
        raise DataError(f"{Path(folder) / 'rationales.jsonl'}: no kept rationale matches a training example id; "
                        "was it extracted for this task and for the split that holds the training pool?")
    out = []
    for ex in examples:
        row = by_id.get(ex.id)
        out.append(replace(ex, rationale=row.get("rationale") if row else None,
                           teacher_label=row.get("teacher_label") if row else None,
                           parse_error=row.get("parse_error") if row else "not extracted or not kept"))
    return out


def training_examples(task: Task, labels: str, fraction: float, seed: int,
                      rationales: str | None = None) -> tuple[list[TrainingExample], DataReport]:
    pool = task.protocol_split("train")
    if rationales:
        pool = attach_extracted(pool, rationales)
    selected = take_fraction(pool, fraction, seed)
    used, no_teacher_label = [], 0
    for ex in selected:
        label = ex.label if labels == "gold" else ex.teacher_label
        if label is None:
            if labels == "gold":
                raise DataError(f"example {ex.id} of {task.name} has no gold label; use --labels teacher")
            no_teacher_label += 1
            continue
        used.append(TrainingExample(ex, label, ex.rationale or None))
    report = DataReport(pool=len(pool), selected=len(selected), used=len(used), no_teacher_label=no_teacher_label,
                        no_rationale=sum(1 for t in used if t.rationale is None))
    return used, report
