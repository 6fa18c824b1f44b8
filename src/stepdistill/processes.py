"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(parent: int | None = None) -> None:
    """Watch the parent from a daemon thread and exit once it is gone: a server or a sweep cell whose starter was
    killed outright (kill -9, where nothing can clean up) would otherwise hold its cores, or train on into a run
    folder that the next sweep also trains into. `parent`: the starter's pid as the starter gave it, so that a
    starter killed before this runs is noticed too (the default, today's parent, is already init's by then)."""
    parent = os.getppid() if parent is None else parent

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
