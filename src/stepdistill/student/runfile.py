"""Reading a run folder's run.json: the one place that knows its name and how to get settings back from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import DataError
from ..jsonio import read_json
from .settings import TrainSettings

RUN_FILE = "run.json"  # written last by `stepdistill train`: its presence means the run finished


def load_run(folder: str | Path, missing_ok: bool = False) -> dict:
    """The run's record; {} for a folder without run.json when `missing_ok` (a model folder from elsewhere)."""
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        if missing_ok:
            return {}
        raise DataError(f"{path}: not found (not a finished `stepdistill train` run)")
    return read_json(path)


def run_settings(folder: str | Path) -> TrainSettings | None:
    """The settings the run was trained with (defaults for fields added since), or None without run.json."""
    run = load_run(folder, missing_ok=True)
    return settings_of(run, folder) if run else None


def settings_of(run: dict, folder: str | Path) -> TrainSettings:
    """The TrainSettings stored in a run.json record; fields added since take today's defaults."""
    known = {field.name for field in dataclasses.fields(TrainSettings)}
    stored = {name: value for name, value in run.get("settings", {}).items() if name in known}
    return TrainSettings(**{"out": str(folder), **stored})
