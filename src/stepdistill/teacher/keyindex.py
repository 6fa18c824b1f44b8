"""What an extraction must remember per input, kept on disk instead of in memory: the request key of
every (input, sample) and the input ids met so far. Both live in a private temporary SQLite database
(`sqlite3.connect("")`: a file SQLite deletes when it is closed, with a small page cache), so that a
plan of a million inputs costs a few MB of memory, not a few hundred.

KeyIndex, table `keys`: one row per (input position, sample) with its key and whether that is the key's
first use (two inputs with the same prompt share one request; only the first use is sent). Whatever
walks the plan (sending, writing rows, exporting) reads it a chunk of inputs at a time, in input order.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Iterator

CHUNK = 1000  # inputs read, keyed, checked against the cache and written at a time
BINDS = 500  # keys per `IN (...)` query: under SQLite's limit on bound parameters


def temporary_db() -> sqlite3.Connection:
    db = sqlite3.connect("")  # "": a private temporary database on disk, deleted on close
    db.execute("PRAGMA journal_mode=OFF")  # nothing here outlives the process: no journal to keep
    db.execute("PRAGMA synchronous=OFF")
    return db


def in_groups(items: list, size: int = BINDS) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class KeyIndex:
    def __init__(self):
        self.db = temporary_db()
        self.db.execute("CREATE TABLE keys (position INTEGER, sample INTEGER, key TEXT NOT NULL, "
                        "first INTEGER NOT NULL, PRIMARY KEY (position, sample)) WITHOUT ROWID")
        self.db.execute("CREATE INDEX keys_by_key ON keys (key)")
        self.db.execute("CREATE TABLE met (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        self.inputs = 0  # positions added
        self.requests = 0  # distinct keys

    def add(self, rows: list[tuple[str, ...]]) -> None:
        """The keys of the next inputs (one tuple per input, one key per sample), in input order."""
        seen = self._present({key for row in rows for key in row})
        records = []
        for offset, row in enumerate(rows):
            for sample, key in enumerate(row):
                records.append((self.inputs + offset, sample, key, key not in seen))
                self.requests += key not in seen
                seen.add(key)
        with self.db:
            self.db.executemany("INSERT INTO keys VALUES (?, ?, ?, ?)", records)
        self.inputs += len(rows)

    def _present(self, keys: set[str]) -> set[str]:
        found: set[str] = set()
        for group in in_groups(list(keys)):
            found.update(key for (key,) in self.db.execute(
                f"SELECT key FROM keys WHERE key IN ({','.join('?' * len(group))})", group))
        return found

    def rows(self, start: int, stop: int) -> list[list[tuple[str, bool]]]:
        """[(key, first use?) per sample] of the inputs at positions start .. stop - 1."""
        rows: list[list[tuple[str, bool]]] = [[] for _ in range(stop - start)]
        for position, key, first in self.db.execute(
                "SELECT position, key, first FROM keys WHERE position >= ? AND position < ? ORDER BY position, sample",
                (start, stop)):
            rows[position - start].append((key, bool(first)))
        return rows

    def distinct(self) -> Iterator[list[str]]:
        """Every distinct key, in order of first use, a few hundred at a time."""
        cursor = self.db.execute("SELECT key FROM keys WHERE first ORDER BY position, sample")
        while group := [key for (key,) in cursor.fetchmany(BINDS)]:
            yield group

    def blob(self) -> Iterator[bytes]:
        """All keys, 32 bytes each, in (position, sample) order: what the cache remembers of a plan."""
        cursor = self.db.execute("SELECT key FROM keys ORDER BY position, sample")
        while group := cursor.fetchmany(CHUNK):
            yield b"".join(bytes.fromhex(key) for (key,) in group)

    def __contains__(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM keys WHERE key = ? LIMIT 1", (key,)).fetchone() is not None

    def first_line(self, key: str, line: int) -> int | None:
        """Within one results file: the line where `key` was met before, else None (and it is noted)."""
        if self.db.execute("INSERT OR IGNORE INTO met VALUES (?, ?)", (key, line)).rowcount == 1:
            return None
        return self.db.execute("SELECT line FROM met WHERE key = ?", (key,)).fetchone()[0]

    def forget_lines(self) -> None:
        """Before the next results file."""
        with self.db:
            self.db.execute("DELETE FROM met")

    def close(self) -> None:
        self.db.close()


class SeenIds:
    """Input ids met so far: `add` returns an id met before (among these or earlier ones), else None."""

    def __init__(self):
        self.db = temporary_db()
        self.db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY) WITHOUT ROWID")

    def add(self, ids: Iterable[str]) -> str | None:
        ids, within = list(ids), set()
        for one in ids:
            if one in within:
                return one
            within.add(one)
        for group in in_groups(ids):
            row = self.db.execute(f"SELECT id FROM ids WHERE id IN ({','.join('?' * len(group))}) LIMIT 1",
                                  group).fetchone()
            if row is not None:
                return row[0]
        with self.db:
            self.db.executemany("INSERT INTO ids VALUES (?)", ((one,) for one in ids))
        return None

    def close(self) -> None:
        self.db.close()
