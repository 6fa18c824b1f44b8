"""Which examples a run trains on, with which label and which rationale(s), and how many were skipped.

With an extraction folder (`--rationales`), an input may have several kept rationales (extract
--samples N) and hinted ones (extract --rationalize, rows tagged `hinted: true`). `--hinted exclude`
leaves hinted rows out; `--rationales-per-input 1` trains on the first kept rationale of each input.

`all` trains on every kept rationale, without repeating the label task: an input's first row carries its
label and its first rationale, and each further kept rationale becomes a rationale-only row (no label part),
so with dss the label task sees each input once and the rationale task sees every kept rationale. For
`single` the rationale and the label are one target, so each kept rationale is a full row of its own;
`standard` trains no rationale, so it gets no extra rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import DataError
from ..tasks.base import Example, Task, take_fraction

HINTED_CHOICES = ("include", "exclude")
PER_INPUT_CHOICES = ("1", "all")


@dataclass
class TrainingExample:
    example: Example
    label: str  # the target of the label task: gold y, or the teacher's y' when --labels teacher
    rationale: str | None  # None: no usable rationale, the rationale task skips this example
    hinted: bool = False  # the rationale came from a hinted request (extract --rationalize)
    label_row: bool = True  # False: an extra rationale of an input whose label row is another row (dss, `all`)


@dataclass
class DataReport:
    pool: int  # protocol train split size
    selected: int  # after --fraction
    used: int  # inputs with a label to train on
    no_teacher_label: int  # dropped for --labels teacher: the teacher gave no parsable label
    no_rationale: int  # inputs the rationale task skips (parse failure, filtered out, or none)
    rows: int = 0  # training rows: `used`, plus one per extra rationale with --rationales-per-input all
    label_rows: int = 0  # rows the label task trains on: `used` (single: one per kept rationale with `all`)
    rationale_rows: int = 0  # rows with a rationale (what dss and single train on; standard trains none)
    hinted_rows: int = 0  # of those, rationales from hinted requests
    hinted_excluded: int = 0  # kept hinted rationales of the selected inputs left out by --hinted exclude
    hinted: str = "include"
    rationales_per_input: str = "1"


def extracted_rows(folder: str | Path, hinted: str = "include") -> tuple[dict[str, list[dict]], dict[str, int]]:
    """{id: kept rows} of an extraction folder (hinted rows left out with hinted="exclude"), and
    {id: number of kept hinted rows left out}."""
    from ..teacher.output import read_rationales

    by_id, excluded = {}, {}
    for example_id, rows in read_rationales(folder, all_samples=True).items():
        own = [r for r in rows if hinted == "include" or not r.get("hinted")]
        excluded[example_id] = len(rows) - len(own)
        if own:
            by_id[example_id] = own
    return by_id, excluded


def attach_extracted(examples: list[Example], folder: str | Path, hinted: str = "include"
                     ) -> tuple[list[Example], dict[str, list[dict]], dict[str, int]]:
    """Replace released completions with `stepdistill extract` output (the first kept row of each input);
    also returns every kept row by id, and the hinted rows left out by id."""
    by_id, excluded = extracted_rows(folder, hinted)
    if not any(ex.id in by_id for ex in examples) and not any(excluded.get(ex.id) for ex in examples):
        raise DataError(f"{Path(folder) / 'rationales.jsonl'}: no kept rationale matches a training example id; "
                        "was it extracted for this task and for the split that holds the training pool?")
    out = []
    for ex in examples:
        row = by_id.get(ex.id, [None])[0]
        out.append(replace(ex, rationale=row.get("rationale") if row else None,
                           teacher_label=row.get("teacher_label") if row else None,
                           parse_error=row.get("parse_error") if row else "not extracted or not kept"))
    return out, by_id, excluded


def input_rows(example: Example, label: str, kept_rows: list[dict] | None, per_input: str,
               method: str = "dss") -> list[TrainingExample]:
    """The training rows of one input: its label with its first rationale, and with per_input="all" one more row
    per further kept rationale (rationale-only for dss, a full row for single, none for standard)."""
    if kept_rows is None:  # released completions, or nothing extracted for this input
        return [TrainingExample(example, label, example.rationale or None)]
    first, *extra = ([r for r in kept_rows if r.get("rationale")] or kept_rows[:1]) if per_input == "all" \
        else kept_rows[:1]
    rows = [TrainingExample(example, label, first.get("rationale") or None, bool(first.get("hinted")))]
    if method == "standard":
        return rows
    return rows + [TrainingExample(example, label, row["rationale"], bool(row.get("hinted")),
                                   label_row=method == "single") for row in extra]


def training_examples(task: Task, labels: str, fraction: float, seed: int, rationales: str | None = None,
                      hinted: str = "include", rationales_per_input: str = "1", method: str = "dss"
                      ) -> tuple[list[TrainingExample], DataReport]:
    if hinted not in HINTED_CHOICES or rationales_per_input not in PER_INPUT_CHOICES:
        raise DataError(f"--hinted must be one of {', '.join(HINTED_CHOICES)} and --rationales-per-input one of "
                        f"{', '.join(PER_INPUT_CHOICES)}")
    pool = task.protocol_split("train")
    kept_by_id, excluded = {}, {}
    if rationales:
        pool, kept_by_id, excluded = attach_extracted(pool, rationales, hinted)
    selected = take_fraction(pool, fraction, seed)
    rows, used, no_teacher_label = [], 0, 0
    for ex in selected:
        label = ex.label if labels == "gold" else ex.teacher_label
        if label is None:
            if labels == "gold":
                raise DataError(f"example {ex.id} of {task.name} has no gold label; use --labels teacher")
            no_teacher_label += 1
            continue
        used += 1
        rows += input_rows(ex, label, kept_by_id.get(ex.id) if rationales else None, rationales_per_input, method)
    with_rationale = [t for t in rows if t.rationale is not None]
    report = DataReport(pool=len(pool), selected=len(selected), used=used, no_teacher_label=no_teacher_label,
                        no_rationale=used - len({t.example.id for t in with_rationale}), rows=len(rows),
                        label_rows=sum(t.label_row for t in rows), rationale_rows=len(with_rationale),
                        hinted_rows=sum(t.hinted for t in with_rationale),
                        hinted_excluded=sum(excluded.get(ex.id, 0) for ex in selected),
                        hinted=hinted, rationales_per_input=rationales_per_input)
    return rows, report
