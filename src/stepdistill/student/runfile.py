"""Reading a run folder's run.json: the one place that knows its name and how to get settings (and the input
format) back from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import DataError
from ..jsonio import read_json
from .prompts import PREFIX, PromptFormat
from .settings import TrainSettings

RUN_FILE = "run.json"  # written last by `stepdistill train`: its presence means the run finished


def load_run(folder: str | Path, missing_ok: bool = False) -> dict:
    """The run's record; {} for a folder without run.json when `missing_ok` (a model folder from elsewhere)."""
    path = Path(folder) / RUN_FILE
    if not path.is_file() and Path(folder).name == "model" and (Path(folder).parent / RUN_FILE).is_file():
        path = Path(folder).parent / RUN_FILE  # a run's model/ folder (eval and predict take either): its run's record
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
    older = {"input_format": "prefix"}  # runs made before --input-format trained in the prefix format
    return TrainSettings(**{"out": str(folder), **older, **stored})


def prompt_format_of(run: dict, folder: str | Path) -> PromptFormat:
    """The input format a run trained with: its --input-format, with a chat run's strings from run.json (its saved
    tokenizer's chat template is the served one, not the student's own). Prefix without a run record."""
    if not run or settings_of(run, folder).input_format == "prefix":
        return PREFIX
    if not isinstance(run.get("prompt_format"), dict):
        raise DataError(f"{Path(folder) / RUN_FILE}: an --input-format chat run without its prompt_format")
    return PromptFormat.from_record(run["prompt_format"])


def run_prompt_format(folder: str | Path) -> PromptFormat:
    """The input format of a run folder (or a model folder from elsewhere: prefix)."""
    return prompt_format_of(load_run(folder, missing_ok=True), folder)
