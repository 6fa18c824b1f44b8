"""The answers cache: one SQLite file, one row per answered request, committed the moment it arrives.

The key is a hash of everything that decides the answer: backend, model, the full prompt, the sampling
parameters and the sample index. So a run killed at any moment resumes without repeating a finished
request, an identical re-run sends nothing, and changing any of those sends new requests. WAL mode with
synchronous=NORMAL: a committed answer survives the process being killed (not a power cut, which costs
at most the last few answers, never consistency). Nothing secret is stored: no key, no headers.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from ..errors import DataError
from .backends import Completion

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    reasoning TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    out TEXT,
    requests_sent INTEGER DEFAULT 0,
    answered INTEGER DEFAULT 0,
    failed INTEGER DEFAULT 0,
    prompt_tokens INTEGER DEFAULT 0,
    completion_tokens INTEGER DEFAULT 0
);
"""


def request_key(backend: str, model: str, prompt, params: dict, sample: int, example_id: str | None = None) -> str:
    blob = {"backend": backend, "model": model, "prompt": prompt, "params": params, "sample": sample}
    if example_id is not None:  # replay: the answer belongs to the input, not to a prompt
        blob["id"] = example_id
    return hashlib.sha256(json.dumps(blob, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Cache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)  # autocommit
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise DataError(f"{self.path}: not a usable answers cache ({e})") from None

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        keys, found = list(keys), {}
        for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[i:i + 500]
            rows = self.db.execute(
                "SELECT key, text, reasoning, prompt_tokens, completion_tokens FROM answers "
                f"WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            for key, text, reasoning, pt, ct in rows:
                found[key] = Completion(text, reasoning, pt, ct)
        return found

    def known(self, keys: Iterable[str]) -> set[str]:
        """Which of the keys are answered, without loading the answers."""
        keys, found = list(keys), set()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            found.update(k for (k,) in self.db.execute(
                f"SELECT key FROM answers WHERE key IN ({','.join('?' * len(chunk))})", chunk))
        return found

    def put(self, key: str, backend: str, model: str, c: Completion) -> None:
        self.db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (key, backend, model, c.text, c.reasoning, c.prompt_tokens, c.completion_tokens, time.time()))

    def start_run(self, out: str) -> int:
        return self.db.execute("INSERT INTO runs (started, out) VALUES (?, ?)", (time.time(), out)).lastrowid

    def finish_run(self, run_id: int, requests_sent: int, answered: int, failed: int,
                   prompt_tokens: int, completion_tokens: int) -> None:
        self.db.execute("UPDATE runs SET finished=?, requests_sent=?, answered=?, failed=?, prompt_tokens=?, "
                        "completion_tokens=? WHERE id=?",
                        (time.time(), requests_sent, answered, failed, prompt_tokens, completion_tokens, run_id))

    def totals(self) -> dict:
        """Tokens of every answer this cache holds: what all runs together have paid for."""
        n, pt, ct = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM answers").fetchone()
        return {"answers": n, "prompt": pt, "completion": ct, "total": pt + ct}

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self.db.close()


class MemoryStore:
    """The same interface, in memory: for backends whose answers are already on disk (replay)."""

    def __init__(self):
        self.answers: dict[str, Completion] = {}

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        return {k: self.answers[k] for k in keys if k in self.answers}

    def known(self, keys: Iterable[str]) -> set[str]:
        return {k for k in keys if k in self.answers}

    def put(self, key: str, backend: str, model: str, c: Completion) -> None:
        self.answers[key] = c
