"""One extraction at a time per output folder and per answers cache.

Two processes writing one OUT would race on rationales.jsonl.tmp, and two sharing one cache would both
pay for every request they have in common; so each takes an exclusive lock first and a second one is
refused with the PID that holds it. The lock is an flock(2) on a small file holding the owner's PID: the
kernel drops it when its process dies, however it died, so a stale lock file (a killed run) is simply
taken over.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ..errors import DataError


@contextmanager
def exclusive(lock_path: Path, what: str):
    """Hold `lock_path` for the duration; DataError naming the holder's PID if another process has it."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+", encoding="utf-8")
    except OSError as error:
        raise DataError(f"{lock_path.parent}: cannot write there ({error.strerror or error})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise DataError(f"{what} is in use by PID {holder} (another stepdistill extract); wait for it to "
                            f"finish, or give this run another --out and --cache") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def extraction_locks(out: Path, cache: Path | None):
    """The output folder's lock, then the cache's (which another --out may share); None: no cache."""
    with ExitStack() as stack:
        stack.enter_context(exclusive(out / ".extract.lock", f"output folder {out}"))
        if cache is not None:
            stack.enter_context(exclusive(cache.with_name(cache.name + ".lock"), f"answers cache {cache}"))
        yield
