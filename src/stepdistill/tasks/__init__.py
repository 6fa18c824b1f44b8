"""The benchmarks (one module each) and users' own JSON Lines data, by name."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..paths import data_dir as resolve_data_dir
from .anli1 import ANLI1
from .base import Example, Task, hold_out, take_fraction
from .cqa import CQA
from .esnli import ESNLI
from .jsonl import JsonlTask
from .svamp import SVAMP

BENCHMARKS: dict[str, type[Task]] = {"cqa": CQA, "svamp": SVAMP, "anli1": ANLI1, "esnli": ESNLI}


def get_task(spec: str, data_dir: str | Path | None = None) -> Task:
    """`cqa`, `svamp`, `anli1`, `esnli` (read from the data directory) or `jsonl:PATH[:SCORER]`."""
    if spec.startswith("jsonl:"):
        rest = spec[len("jsonl:"):]
        head, _, tail = rest.rpartition(":")
        if head and not Path(rest).exists():  # PATH:SCORER (a path may itself hold colons)
            return JsonlTask(head, tail)
        return JsonlTask(rest)
    if spec not in BENCHMARKS:
        raise DataError(f"unknown task '{spec}' (expected one of {', '.join(BENCHMARKS)} or jsonl:PATH[:SCORER])")
    return BENCHMARKS[spec](resolve_data_dir(data_dir))


__all__ = ["BENCHMARKS", "Example", "Task", "get_task", "hold_out", "take_fraction"]
