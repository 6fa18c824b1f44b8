"""A user's own task from files, so nobody must write Python to use their own data.

Spec: `PATH[:SCORER]` (or `jsonl:PATH[:SCORER]`, as before). PATH is one file (used as train) or a folder
with `train`, and optionally `valid` (or `validation`, `dev`) and `test` files, each `.jsonl`, `.csv`,
`.tsv` or `.parquet`. SCORER is `exact` (default), `numeric` or `equation`. Columns: `input` (or
--input-template), `label` (optional; or --label-column), `id` (optional; or --id-column), and teacher
output if any (tasks/rows.py).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .base import PROTOCOL_SPLITS
from .rows import VALID_NAMES, RowTask
from .spec import TaskSpec
from .tables import FORMATS, columns_of, read_rows


def split_files(folder: Path) -> dict[str, Path]:
    """{protocol split: file} in a folder; two files for one split is an error."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        name = "valid" if path.stem.lower() in VALID_NAMES else path.stem.lower()
        if name not in PROTOCOL_SPLITS or path.suffix.lower() not in FORMATS or not path.is_file():
            continue
        if name in found:
            raise DataError(f"{folder}: two files for the {name} split: {found[name].name} and {path.name}")
        found[name] = path
    return found


class JsonlTask(RowTask):
    """Files in JSON Lines, CSV, TSV or Parquet (the name stays from when JSON Lines was the only format)."""

    def __init__(self, path: str | Path, scorer: str = "exact", spec: TaskSpec | None = None, name: str | None = None):
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: file or folder not found")
        super().__init__(spec or TaskSpec(str(path)), scorer, path if path.is_dir() else path.parent)
        self.files = {"train": path} if path.is_file() else split_files(path)
        if "train" not in self.files and "test" not in self.files:
            raise DataError(f"{path}: expected a train file (train.jsonl, .csv, .tsv or .parquet; "
                            "optionally valid and test files beside it)")
        self.name = name or f"jsonl:{path}"
        self.use_splits(self.files, str(path))

    def input_path(self, split: str) -> Path:
        return self.files[split]

    def rows(self, split: str):
        return read_rows(self.files[split])

    def columns(self, split: str) -> list[str] | None:
        return columns_of(self.files[split])


FileTask = JsonlTask
