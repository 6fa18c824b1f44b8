"""The run folder across restarts: what it may already hold, the settings it was started with, and which
checkpoint a `--resume` continues from.

A run writes settings.json before its first step. `--resume` compares it with the new settings and refuses
any difference that changes what is trained (a "cqa" run must not continue checkpoints trained on SVAMP);
a finished run (run.json, or model/ outside a resume) is never replaced without `--overwrite`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

from ..errors import DataError
from ..jsonio import read_json, write_json
from .runfile import RUN_FILE
from .settings import TrainSettings

SETTINGS_FILE = "settings.json"  # written when a run starts; run.json repeats it when the run ends
# Settings that change how a run is watched, stored or evaluated, not what is trained: free to differ on --resume.
FREE_ON_RESUME = frozenset({"out", "resume", "overwrite", "progress", "data_dir", "eval_batch_size", "logging_steps",
                            "save_total_limit", "test", "test_each_eval", "attn"})
OUTPUTS = (RUN_FILE, SETTINGS_FILE, "model", "checkpoints", "checkpoint_scores.jsonl")


def prepare_run_folder(settings: TrainSettings) -> Path:
    """The run folder, created and checked before any work: writable, not a finished run, and on --resume
    started with the same settings. Writes settings.json for a run that starts now."""
    out = Path(settings.out)
    if settings.overwrite:
        remove_outputs(out)
    refuse_finished_run(out, settings)
    has_checkpoints = any((out / "checkpoints").glob("checkpoint-*"))
    if has_checkpoints and not settings.resume:
        raise DataError(f"{out}: holds checkpoints of an earlier run; pass --resume to continue it, "
                        "--overwrite to start again, or choose another --out")
    make_writable_folder(out)
    stored = stored_settings(out)
    if has_checkpoints and stored is not None:
        changed = settings_differences(stored, settings)
        if changed:
            raise DataError(f"{out}: --resume with other settings than the run started with: {'; '.join(changed)}. "
                            "Resume with the same settings, or choose another --out")
    elif has_checkpoints:
        print(f"warning: {out} has no {SETTINGS_FILE} (an older run): the settings it started with are not checked",
              file=sys.stderr)
    if (stored is None or not has_checkpoints) and is_main_process():  # a run starting now
        write_json(out / SETTINGS_FILE, dataclasses.asdict(settings))
    return out


def refuse_finished_run(out: Path, settings: TrainSettings) -> None:
    if settings.overwrite:  # (under several processes, rank 0 may not have removed them yet)
        return
    if (out / RUN_FILE).exists():
        raise DataError(f"{out}: holds a finished run ({RUN_FILE}); choose another --out, "
                        "or pass --overwrite to replace it")
    if (out / "model").exists() and not settings.resume:
        raise DataError(f"{out}: holds a trained model (model/); choose another --out, "
                        "or pass --overwrite to replace it")


def remove_outputs(out: Path) -> None:
    """--overwrite: the earlier run's outputs go (other files in the folder stay)."""
    if not is_main_process():
        return
    for name in OUTPUTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def make_writable_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"{out}: cannot create the run folder ({error.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise DataError(f"{out}: not writable; choose another --out")


def stored_settings(folder: str | Path) -> dict | None:
    """The settings a run in `folder` started with: settings.json, else run.json's copy; None for neither."""
    folder = Path(folder)
    if (folder / SETTINGS_FILE).is_file():
        return read_json(folder / SETTINGS_FILE)
    if (folder / RUN_FILE).is_file():
        return read_json(folder / RUN_FILE).get("settings")
    return None


def settings_differences(stored: dict, settings: TrainSettings) -> list[str]:
    """'--name: was X, now Y' for each setting that changes what is trained (fields added since: defaults)."""
    defaults = dataclasses.asdict(TrainSettings(out="-"))
    changed = []
    for name, value in dataclasses.asdict(settings).items():
        if name in FREE_ON_RESUME:
            continue
        before = stored.get(name, defaults[name])
        if before != value:
            changed.append(f"--{name.replace('_', '-')} was {before!r}, now {value!r}")
    return changed


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# -- the checkpoint to resume from ---------------------------------------------------------------------------
def resume_checkpoint(checkpoints: Path) -> Path | None:
    """The newest intact checkpoint. Damaged newer ones (a kill while saving, a full disk) are renamed
    damaged-checkpoint-N, so the Trainer neither resumes from nor rotates them, and the user is told."""
    for checkpoint in sorted(checkpoints.glob("checkpoint-*"), key=checkpoint_step, reverse=True):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        aside = checkpoint.with_name("damaged-" + checkpoint.name)
        if is_main_process():
            shutil.rmtree(aside, ignore_errors=True)
            checkpoint.rename(aside)
        print(f"warning: {checkpoint} is damaged ({problem}); moved to {aside.name}, "
              "resuming from the newest intact checkpoint before it", file=sys.stderr)
    if any(checkpoints.glob("damaged-checkpoint-*")):
        print(f"warning: no intact checkpoint in {checkpoints}: training starts again from step 0", file=sys.stderr)
    return None


def checkpoint_step(checkpoint: Path) -> int:
    tail = checkpoint.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None: its state must parse, its weights must be
    there, each safetensors file must hold what its header says, each torch file must be a whole archive."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"trainer_state.json unreadable: {error}"
    weights = [*checkpoint.glob("*.safetensors"), *checkpoint.glob("pytorch_model*.bin")]
    if not weights:
        return "no model weights"
    for path in checkpoint.iterdir():
        problem = safetensors_problem(path) if path.suffix == ".safetensors" else (
            torch_file_problem(path) if path.suffix in (".pt", ".pth", ".bin") else None)
        if problem:
            return f"{path.name}: {problem}"
    return None


def safetensors_problem(path: Path) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():
                handle.get_slice(name)
    except Exception as error:  # safetensors raises its own error types for a cut or garbled file
        return f"unreadable ({str(error).splitlines()[0][:120]})"
    return None


def torch_file_problem(path: Path) -> str | None:
    """torch.save writes a zip archive; a cut or overwritten one fails its central directory or a CRC."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile) as error:
        return f"not a whole torch file ({error})"
    return f"corrupt member {bad}" if bad else None
