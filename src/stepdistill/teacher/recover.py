"""`stepdistill extract ... --recover-cache`: copy what can still be read from a damaged answers cache into
a new one, and keep the damaged file beside it (CACHE.damaged) for a closer look.

A damaged page makes a whole-table SELECT fail part-way, so rows are read by rowid in blocks, and a block
that fails is read again one row at a time: every row on an intact page is saved. Answers are what cost
money; failures and the plans memo are rebuilt by the next run, the run log is copied when readable.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import DataError
from .cache import Cache

BLOCK = 1000
COLUMNS = "key, backend, model, text, reasoning, prompt_tokens, completion_tokens, created"


def recover_cache(path: Path) -> dict:
    """Rebuild `path` from its readable answers; returns counts for the report."""
    if not path.is_file():
        raise DataError(f"{path}: no answers cache to recover")
    damaged = path.with_name(path.name + ".damaged")
    rebuilt = path.with_name(path.name + ".recovered")
    rebuilt.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = _readable_answers(source)
    finally:
        source.close()
    with Cache(rebuilt) as cache, cache.transaction():
        cache.db.executemany(f"INSERT OR IGNORE INTO answers ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.replace(damaged)
    rebuilt.replace(path)
    return {"cache": str(path), "damaged_copy": str(damaged), "answers_recovered": len(rows)}


def _readable_answers(source: sqlite3.Connection) -> list[tuple]:
    """Every answer on an intact page."""
    try:
        highest = source.execute("SELECT MAX(rowid) FROM answers").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        highest = None
    if highest is None:
        return _scan(source)
    rows: list[tuple] = []
    for start in range(1, highest + 1, BLOCK):
        rows += _block(source, start, min(start + BLOCK, highest + 1))
    return rows


def _block(source: sqlite3.Connection, start: int, stop: int) -> list[tuple]:
    query = f"SELECT {COLUMNS} FROM answers WHERE rowid >= ? AND rowid < ?"
    try:
        return source.execute(query, (start, stop)).fetchall()
    except sqlite3.DatabaseError:
        pass
    rows = []
    for rowid in range(start, stop):
        try:
            rows += source.execute(query, (rowid, rowid + 1)).fetchall()
        except sqlite3.DatabaseError:
            continue
    return rows


def _scan(source: sqlite3.Connection) -> list[tuple]:
    """Without MAX(rowid), read in table order until the first damaged page."""
    rows = []
    try:
        for row in source.execute(f"SELECT {COLUMNS} FROM answers"):
            rows.append(row)
    except sqlite3.DatabaseError:
        pass
    return rows
