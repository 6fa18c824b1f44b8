"""Reading and writing JSON / JSON Lines with errors that name the file and the line."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import DataError


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; a bad line stops with its number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = decode_line(raw[3:] if lineno == 1 and raw.startswith(BOM) else raw, path, lineno)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{lineno}: malformed JSON ({error.msg} at column {error.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, which some editors write first: accepted


def decode_line(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}:{lineno}: not UTF-8 text (byte {error.start} of the line); "
                        "save the file as UTF-8") from None


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        lineno = data[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{lineno}: not UTF-8 text (byte {error.start}); save the file as UTF-8") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: malformed JSON ({error.msg} at column {error.colno})") from None


def require(obj: dict, field: str, where: str, types: type | tuple[type, ...] = object) -> Any:
    """obj[field], or a DataError naming `where` (file:line) and the missing or mistyped field."""
    if field not in obj:
        raise DataError(f"{where}: missing field '{field}'")
    value = obj[field]
    if not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise DataError(f"{where}: field '{field}' should be {names}, got {type(value).__name__}")
    return value


def check_writable_file(path: str | Path, option: str = "--out") -> Path:
    """Before any work: `path` can be written (write_jsonl / write_json create a file beside it, then rename).
    A real probe file, not os.access: root passes os.access everywhere, even where the filesystem refuses."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise DataError(f"{path}: is a folder; {option} needs a file name")
    if not folder.is_dir():
        missing = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"{path}: its folder {folder} {missing}; create it or choose another {option}")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as error:
        raise DataError(f"{path}: cannot write in {folder} ({error.strerror}); choose another {option}") from None
    return path


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Write atomically: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_json(path: str | Path, obj: Any) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
