"""Rows of a user's data file: JSON Lines, CSV, TSV or Parquet, each row a dict of columns.

Every reader says where a row came from (`file:line` for text files, `file row N` for Parquet), so an
error names the file and the row, and refuses an empty file by name.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from ..errors import DataError
from ..jsonio import iter_jsonl

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


def table_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown file type '{path.suffix}' (expected {', '.join(FORMATS)})")
    return fmt


def columns_of(path: Path) -> list[str] | None:
    """The header of a CSV/TSV file or a Parquet schema; None for JSON Lines (each line has its own keys)."""
    fmt = table_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq
        return list(pq.read_schema(path).names)
    if fmt == "jsonl":
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle, delimiter="\t" if fmt == "tsv" else ","), None)
    if not header:
        raise DataError(f"{path}: empty file (expected a header line, then one row per example)")
    return header


def read_rows(path: Path) -> Iterator[tuple[str, dict]]:
    """(where, row) for every row of the file; an empty file is an error."""
    fmt = table_format(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows = {"jsonl": _jsonl_rows, "csv": _csv_rows, "tsv": _csv_rows, "parquet": _parquet_rows}[fmt](path, fmt)
    empty = True
    for where, row in rows:
        empty = False
        yield where, row
    if empty:
        raise DataError(f"{path}: empty file (no rows)")


def _jsonl_rows(path: Path, fmt: str):
    for lineno, row in iter_jsonl(path):
        yield f"{path}:{lineno}", row


def _csv_rows(path: Path, fmt: str):
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t" if fmt == "tsv" else ",")
        for row in reader:
            if None in row:  # more cells than the header has names
                raise DataError(f"{path}:{reader.line_num}: {len(reader.fieldnames) + len(row[None])} cells "
                                f"but {len(reader.fieldnames)} columns in the header")
            yield f"{path}:{reader.line_num}", row


def _parquet_rows(path: Path, fmt: str):
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    index = 0
    for batch in table.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            index += 1
            yield f"{path} row {index}", row
