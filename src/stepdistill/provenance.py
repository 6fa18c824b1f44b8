"""What every output folder records about where it came from: hashes of the files read, library versions."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path

from . import __version__


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks (rationale files can be large)."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def library_versions(*distributions: str) -> dict[str, str]:
    """stepdistill's and Python's versions, and each named distribution's installed version."""
    found = {"stepdistill": __version__, "python": platform.python_version()}
    for name in distributions:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
