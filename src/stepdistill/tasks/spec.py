"""What `--task` names, with the options that say how to read a user's rows, as one string.

A task spec is a benchmark name (`svamp`), a file or folder (`PATH[:SCORER]`, `jsonl:PATH[:SCORER]`) or a
Hugging Face dataset (`hf:NAME[:CONFIG][:SCORER]`), plus three optional ways of reading a user's rows:
`--input-template` (sandboxed Jinja over a row's columns), `--label-column` and `--id-column`, and one
option for any task: `--valid-fraction`, the share of the training pool held out for validation (default
0.1, the paper's rule; a larger share makes checkpoint selection less noisy). With any of those set, the
spec is written as a JSON object, e.g. `{"source": "svamp", "valid_fraction": 0.2}`, so that the one `task`
string every settings dataclass, run.json and manifest already carry also says how the rows were read and
split, and `eval` on a run folder reads and splits them the same way.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from ..errors import DataError
from .base import VALID_FRACTION

ROW_OPTIONS = ("input_template", "label_column", "id_column")
_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@dataclass(frozen=True)
class TaskSpec:
    source: str  # svamp | PATH[:SCORER] | jsonl:PATH[:SCORER] | hf:NAME[:CONFIG][:SCORER]
    input_template: str | None = None  # Jinja over a row's columns; default: the `input` column
    label_column: str | None = None  # default: `label` (optional: rows without one are unlabeled)
    id_column: str | None = None  # default: `id`, else SPLIT-ROWNUMBER
    valid_fraction: float | None = None  # share of the training pool held out for validation; None: 0.1

    def __post_init__(self):
        fraction = self.valid_fraction
        if fraction is None:
            return
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise DataError(f"valid_fraction (--valid-fraction) must be a number between 0 and 1 (exclusive), "
                            f"got {fraction!r}")
        # the default written out is the default: one protocol, one spec string (run names, compare's arms)
        object.__setattr__(self, "valid_fraction", None if fraction == VALID_FRACTION else float(fraction))

    @property
    def has_options(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name != "source")

    @property
    def has_row_options(self) -> bool:
        """Options that say how to read a user's rows (a benchmark's loader reads its own files)."""
        return any(getattr(self, name) for name in ROW_OPTIONS)

    def __str__(self) -> str:
        if not self.has_options:
            return self.source
        return json.dumps({k: v for k, v in asdict(self).items() if v}, ensure_ascii=False)

    @classmethod
    def parse(cls, text: "str | TaskSpec | dict") -> "TaskSpec":
        """A plain spec, its JSON object form, or a mapping (a sweep config's `tasks` entry)."""
        if isinstance(text, TaskSpec):
            return text
        if isinstance(text, str) and text.lstrip().startswith("{"):
            try:
                text = json.loads(text)
            except json.JSONDecodeError as error:
                raise DataError(f"task spec {text!r}: malformed JSON ({error.msg})") from None
        if isinstance(text, dict):
            unknown = set(text) - {f.name for f in fields(cls)}
            if unknown or not isinstance(text.get("source"), str):
                extra = f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""
                raise DataError(f"task spec {text}: expected a 'source' string and optionally input_template, "
                                f"label_column, id_column, valid_fraction{extra}")
            return cls(**text)
        if not isinstance(text, str) or not text:
            raise DataError(f"task spec should be a non-empty string, got {text!r}")
        return cls(text)


def with_options(spec: str, input_template: str | None = None, label_column: str | None = None,
                 id_column: str | None = None, valid_fraction: float | None = None) -> str:
    """The spec string with the given options added (options already in it are kept unless overridden)."""
    base = TaskSpec.parse(spec)
    return str(TaskSpec(base.source, input_template or base.input_template, label_column or base.label_column,
                        id_column or base.id_column,
                        valid_fraction if valid_fraction is not None else base.valid_fraction))


def add_task_options(parser: argparse.ArgumentParser) -> None:
    """--input-template, --label-column, --id-column and --valid-fraction for a command that takes --task."""
    parser.add_argument("--input-template", help="file and hf: tasks: the student's input as Jinja over a row's "
                        "columns, e.g. \"Premise: {{ premise }}\\nHypothesis: {{ hypothesis }}\" (\\n, \\t: newline, tab; "
                        "default: column 'input')")
    parser.add_argument("--label-column", help="file and hf: tasks: the gold label's column (default: 'label')")
    parser.add_argument("--id-column", help="file and hf: tasks: the row id's column (default: 'id', else row numbers)")
    parser.add_argument("--valid-fraction", type=float, help="share of the training pool held out for validation "
                        "(seed 0), which chooses the checkpoint (default: 0.1; not for data with its own valid split)")


def task_from_args(args: argparse.Namespace, task: str | None = None) -> str | None:
    """args.task (or `task`) with the four options folded in."""
    task = task if task is not None else args.task
    template = args.input_template
    if template is not None:  # a shell does not turn "\n" into a newline; the template means one
        template = template.replace("\\n", "\n").replace("\\t", "\t")
    options = (template, args.label_column, args.id_column, args.valid_fraction)
    if task is None:
        if any(option is not None for option in options):
            raise DataError("--input-template, --label-column, --id-column and --valid-fraction need --task")
        return None
    return with_options(task, *options)


class RowFormat:
    """Turns one row (a dict of columns) into the student's input text, gold label and id."""

    def __init__(self, spec: TaskSpec):
        self.label_column, self.id_column = spec.label_column, spec.id_column
        self.template_text = spec.input_template
        self.template = None
        if self.template_text is not None:
            try:
                parsed = _ENV.parse(self.template_text)
            except jinja2.TemplateSyntaxError as error:
                raise DataError(f"--input-template {self.template_text!r}: Jinja syntax error on line "
                                f"{error.lineno}: {error.message}") from None
            self.template_columns = sorted(meta.find_undeclared_variables(parsed))
            self.template = _ENV.from_string(self.template_text)

    def required_columns(self) -> list[str]:
        """Columns every row must have: the template's (or `input`), and an explicitly named label/id column."""
        needed = self.template_columns if self.template is not None else ["input"]
        return needed + [c for c in (self.label_column, self.id_column) if c]

    def check_columns(self, columns: list[str] | None, source: str) -> None:
        """For files with a header (CSV, TSV, Parquet, hf:): a missing column is named before any row is read."""
        if columns is None:
            return
        for column in self.required_columns():
            if column not in columns:
                raise DataError(f"{source}: no column '{column}' (columns: {', '.join(columns)})")

    def input_text(self, row: dict, where: str) -> str:
        if self.template is None:
            value = row.get("input")
            if not isinstance(value, str):
                raise DataError(f"{where}: missing field 'input' (a string; or pass --input-template)"
                                if value is None else f"{where}: field 'input' should be a string")
            return value
        try:
            return self.template.render(**row)
        except jinja2.TemplateError as error:
            raise DataError(f"--input-template {self.template_text!r}: {where}: {error} "
                            f"(columns: {', '.join(sorted(row))})") from None

    def label(self, row: dict, where: str) -> str | None:
        column = self.label_column or "label"
        if self.label_column and column not in row:
            raise DataError(f"{where}: missing column '{column}'")
        return _text(row.get(column), column, where)

    def example_id(self, row: dict, where: str, default: str) -> str:
        column = self.id_column or "id"
        if self.id_column and column not in row:
            raise DataError(f"{where}: missing column '{column}'")
        return _text(row.get(column), column, where) or default


def _text(value, column: str, where: str) -> str | None:
    """A cell as text: None and "" (an empty CSV cell) are missing; a number as Python prints it."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{where}: column '{column}' should be a string or a number, got {type(value).__name__}")
    return str(value)
