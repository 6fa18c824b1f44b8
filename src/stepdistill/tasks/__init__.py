"""The benchmarks (one module each) and users' own data (files or Hugging Face datasets), by spec.

See tasks/spec.py for what a spec is: `svamp`, `PATH[:SCORER]`, `jsonl:PATH[:SCORER]` or
`hf:NAME[:CONFIG][:SCORER]`, optionally with --input-template, --label-column and --id-column (own data)
and --valid-fraction (any task).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..paths import data_dir as resolve_data_dir
from .anli1 import ANLI1
from .base import Example, Task, hold_out, take_fraction
from .cqa import CQA
from .esnli import ESNLI
from .jsonl import JsonlTask
from .spec import TaskSpec, with_options
from .svamp import SVAMP

BENCHMARKS: dict[str, type[Task]] = {"cqa": CQA, "svamp": SVAMP, "anli1": ANLI1, "esnli": ESNLI}
SPEC_FORMS = "cqa, svamp, anli1, esnli, PATH[:SCORER], jsonl:PATH[:SCORER] or hf:NAME[:CONFIG][:SCORER]"


def split_path(rest: str) -> tuple[str, str]:
    """PATH[:SCORER] -> (path, scorer); a path that exists as written may itself hold colons."""
    head, _, tail = rest.rpartition(":")
    if head and not Path(rest).exists():
        return head, tail
    return rest, "exact"


def get_task(spec: "str | TaskSpec", data_dir: str | Path | None = None) -> Task:
    """The task a spec names (see tasks/spec.py); files and hf: datasets read with the spec's options."""
    spec = TaskSpec.parse(spec)
    source = spec.source
    if source in BENCHMARKS:
        if spec.has_row_options:
            raise DataError(f"--input-template, --label-column and --id-column are for your own data, not {source}")
        return BENCHMARKS[source](resolve_data_dir(data_dir), spec.valid_fraction)
    if source.startswith("hf:"):
        from .hf import HFTask
        return HFTask(spec)
    prefixed = source.startswith("jsonl:")
    path, scorer = split_path(source[len("jsonl:"):] if prefixed else source)
    if not prefixed and not Path(path).exists():
        raise DataError(f"unknown task '{source}': not a benchmark and no such file or folder (expected {SPEC_FORMS})")
    return JsonlTask(path, scorer, spec, name=f"jsonl:{path}" if prefixed else path)


__all__ = ["BENCHMARKS", "Example", "Task", "TaskSpec", "get_task", "hold_out", "take_fraction", "with_options"]
