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
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

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
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY,
    error TEXT NOT NULL,
    source TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS plan_keys (
    plan TEXT NOT NULL,
    piece INTEGER NOT NULL,
    keys BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (plan, piece)
);
DROP TABLE IF EXISTS plans;  -- the plan memo's former form, one blob per plan: read whole, so replaced
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
    persistent = True  # answers outlive the process

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)  # autocommit; opens lazily
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            problem = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.DatabaseError as error:
            problem = str(error)
        problem = " ".join(problem.split())  # quick_check's report spans lines; the error is one
        if problem != "ok":
            self.db.close()
            raise DataError(f"{self.path}: the answers cache is damaged ({problem}); nothing else was touched. "
                            "Run the same command with --recover-cache to copy every readable answer into a new "
                            "cache (the damaged file is kept as .damaged), then run it again") from None

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        keys, found = list(keys), {}
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[start:start + 500]
            rows = self.db.execute(
                "SELECT key, text, reasoning, prompt_tokens, completion_tokens FROM answers "
                f"WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            for key, text, reasoning, prompt_tokens, completion_tokens in rows:
                found[key] = Completion(text, reasoning, prompt_tokens, completion_tokens)
        return found

    def known(self, keys: Iterable[str]) -> set[str]:
        """Which of the keys are answered, without loading the answers."""
        keys, found = list(keys), set()
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            found.update(key for (key,) in self.db.execute(
                f"SELECT key FROM answers WHERE key IN ({','.join('?' * len(chunk))})", chunk))
        return found

    def put(self, key: str, backend: str, model: str, answer: Completion) -> None:
        self.db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (key, backend, model, answer.text, answer.reasoning, answer.prompt_tokens,
                         answer.completion_tokens, time.time()))

    @contextmanager
    def transaction(self):
        """All or nothing: an import that meets a bad line leaves the cache as it was."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def add_answer(self, key: str, backend: str, model: str, answer: Completion) -> bool:
        """Store an answer unless the key already has one (an import never replaces); True if added."""
        added = self.db.execute("INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (key, backend, model, answer.text, answer.reasoning, answer.prompt_tokens,
                                 answer.completion_tokens, time.time())).rowcount == 1
        if added:
            self.db.execute("DELETE FROM failures WHERE key = ?", (key,))
        return added

    def record_failure(self, key: str, error: str, source: str) -> None:
        """A request that came back as an error (e.g. a Batch API error line); the next run asks again."""
        self.db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?)", (key, error, source, time.time()))

    def failures(self, keys: Iterable[str]) -> dict[str, str]:
        keys, found = list(keys), {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            found.update(self.db.execute(
                f"SELECT key, error FROM failures WHERE key IN ({','.join('?' * len(chunk))})", chunk))
        return found

    def mean_completion_tokens(self, model: str) -> float | None:
        """Mean completion length of this model's cached answers (None without any): the estimate's guess."""
        return self.db.execute("SELECT AVG(completion_tokens) FROM answers WHERE model = ? AND completion_tokens > 0",
                               (model,)).fetchone()[0]

    def plan_keys(self, plan_id: str, inputs: int, samples: int) -> Iterator[list[tuple[str, ...]]] | None:
        """The keys of a plan met before (plan.py), a piece at a time, or None."""
        size = self.db.execute("SELECT COALESCE(SUM(length(keys)), 0) FROM plan_keys WHERE plan = ?",
                               (plan_id,)).fetchone()[0]
        return self._plan_pieces(plan_id, samples) if size and size == inputs * samples * 32 else None

    def _plan_pieces(self, plan_id: str, samples: int) -> Iterator[list[tuple[str, ...]]]:
        width, rest = 32 * samples, b""
        for (piece,) in self.db.execute("SELECT keys FROM plan_keys WHERE plan = ? ORDER BY piece", (plan_id,)):
            data = rest + piece
            whole = len(data) - len(data) % width  # an input's keys may straddle two pieces
            rest = data[whole:]
            yield [tuple(data[start + 32 * sample:start + 32 * (sample + 1)].hex() for sample in range(samples))
                   for start in range(0, whole, width)]

    def remember_plan(self, plan_id: str, pieces: Iterable[bytes]) -> None:
        """Store a plan's keys (32 bytes each, in order), piece by piece; all or nothing."""
        created = time.time()
        with self.transaction():
            self.db.execute("DELETE FROM plan_keys WHERE plan = ?", (plan_id,))
            self.db.executemany("INSERT INTO plan_keys VALUES (?, ?, ?, ?)",
                                ((plan_id, number, piece, created) for number, piece in enumerate(pieces)))

    def start_run(self, out: str) -> int:
        return self.db.execute("INSERT INTO runs (started, out) VALUES (?, ?)", (time.time(), out)).lastrowid

    def finish_run(self, run_id: int, requests_sent: int, answered: int, failed: int,
                   prompt_tokens: int, completion_tokens: int) -> None:
        self.db.execute("UPDATE runs SET finished=?, requests_sent=?, answered=?, failed=?, prompt_tokens=?, "
                        "completion_tokens=? WHERE id=?",
                        (time.time(), requests_sent, answered, failed, prompt_tokens, completion_tokens, run_id))

    def totals(self) -> dict:
        """Tokens of every answer this cache holds: what all runs together have paid for."""
        answers, prompt, completion = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM answers").fetchone()
        return {"answers": answers, "prompt": prompt, "completion": completion, "total": prompt + completion}

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MemoryStore:
    """The same interface, in memory: for backends whose answers are already on disk (replay). It keeps
    no run log and no totals (`path` and `totals()` are None), since nothing it holds was paid for."""
    persistent = False

    path = None

    def __init__(self):
        self.answers: dict[str, Completion] = {}

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        return {key: self.answers[key] for key in keys if key in self.answers}

    def known(self, keys: Iterable[str]) -> set[str]:
        return {key for key in keys if key in self.answers}

    def put(self, key: str, backend: str, model: str, answer: Completion) -> None:
        self.answers[key] = answer

    def start_run(self, out: str) -> None:
        return None

    def finish_run(self, run_id, requests_sent: int, answered: int, failed: int,
                   prompt_tokens: int, completion_tokens: int) -> None:
        pass

    def totals(self) -> None:
        return None

    def mean_completion_tokens(self, model: str) -> None:
        return None

    def plan_keys(self, plan_id: str, inputs: int, samples: int) -> None:
        return None

    def remember_plan(self, plan_id: str, pieces) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc) -> None:
        pass


def open_store(backend, path: Path) -> "Cache | MemoryStore":
    """The SQLite cache at `path` for backends whose answers cost something, else a MemoryStore."""
    return Cache(path) if backend.cacheable else MemoryStore()
