"""`stepdistill data stats`: per task and split, examples, teacher outputs, unparsable, teacher accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .tasks import BENCHMARKS, get_task
from .scoring import accuracy


@dataclass
class SplitStats:
    task: str
    split: str
    examples: int
    teacher_outputs: int
    unparsed: int
    teacher_accuracy: float | None  # percent over all examples; an unparsable completion counts as wrong
    parse_failures: dict  # reason -> count, so failures are shown, not just counted


def split_stats(task_name: str, split: str, data_dir: str | Path | None = None) -> SplitStats:
    task = get_task(task_name, data_dir)
    examples = task.load(split)
    with_teacher = [ex for ex in examples if ex.completion is not None]
    failures: dict[str, int] = {}
    for ex in with_teacher:
        if ex.parse_error:
            failures[ex.parse_error] = failures.get(ex.parse_error, 0) + 1
    scored = [task.score(ex.teacher_label, ex.label) for ex in with_teacher if ex.label is not None]
    return SplitStats(task=task_name, split=split, examples=len(examples), teacher_outputs=len(with_teacher),
                      unparsed=sum(failures.values()),
                      teacher_accuracy=round(accuracy(scored), 2) if scored else None,
                      parse_failures=failures)


def all_stats(data_dir: str | Path | None = None, task: str | None = None) -> list[SplitStats]:
    names = [task] if task else list(BENCHMARKS)
    return [split_stats(name, split, data_dir) for name in names for split in get_task(name, data_dir).release_splits]


def format_table(rows: list[SplitStats]) -> str:
    lines = [f"{'task':<8} {'split':<6} {'examples':>8} {'teacher':>8} {'unparsed':>8} {'teacher acc':>11}"]
    for row in rows:
        teacher = "-" if row.teacher_accuracy is None else f"{row.teacher_accuracy:.2f}%"
        lines.append(f"{row.task:<8} {row.split:<6} {row.examples:>8} {row.teacher_outputs:>8} {row.unparsed:>8} "
                     f"{teacher:>11}")
        for reason, count in sorted(row.parse_failures.items(), key=lambda item: -item[1]):
            lines.append(f"{'':<16}unparsed x{count}: {reason}")
    return "\n".join(lines)

