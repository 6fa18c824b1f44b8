"""`sweep --workers N`: N cells of a sweep train at once, each in a fresh process of its own.

Why: a small student leaves most of a machine idle. On a 2-core CPU two 1-thread runs finish more cells per
hour than one 2-thread run; on a GPU a 135M student uses a sliver of the card, so many cells share it. Each
cell is an ordinary `stepdistill train` run (its own folder, checkpoints and resume), so a sweep killed
with workers is continued by the same command, with or without workers.

Each cell gets a fresh process (spawned, one cell per process): its GPU is chosen by CUDA_VISIBLE_DEVICES
before CUDA starts, round-robin over the visible GPUs, and CPU threads are split evenly between workers.
A cell's output (progress, loss lines, warnings) goes to `train.log` in its run folder, not interleaved
on the terminal. Only this process writes results.jsonl, after each cell. A cell that fails does not stop
the others; the sweep then ends with an error naming the failed cells and their logs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

from ..errors import DataError
from ..processes import exit_with_parent
from ..student.settings import TrainSettings

LOG_FILE = "train.log"


def cell_environments(cells: int, workers: int, gpus: int, cpus: int) -> list[dict[str, str]]:
    """The environment of each cell's process: its GPU (round-robin) or its share of CPU threads."""
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": str(number % gpus)} for number in range(cells)]
    threads = str(max(1, cpus // workers))
    return [{"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads} for _ in range(cells)]


def visible_gpus() -> int:
    """GPUs this process may use, counted without starting CUDA here (the cells start it in their own)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return len([device for device in listed.split(",") if device.strip() and device.strip() != "-1"])
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def train_cell(settings: TrainSettings, environment: dict[str, str], sweep_pid: int) -> dict:
    """In the cell's own process: set its environment, send all output to its log, train; exit if the sweep is
    killed outright (kill -9), so that a rerun never trains the same cell beside an orphan."""
    exit_with_parent(sweep_pid)
    os.environ.update(environment)
    log_path = Path(settings.out) / LOG_FILE
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "a", encoding="utf-8")
    sys.stdout.flush(), sys.stderr.flush()
    os.dup2(log.fileno(), 1)  # file descriptors, so that C extensions and tqdm land in the log too
    os.dup2(log.fileno(), 2)
    import torch

    if "OMP_NUM_THREADS" in environment:
        torch.set_num_threads(int(environment["OMP_NUM_THREADS"]))
    from ..student.train import run_train

    try:
        record = run_train(settings)
    except BaseException:
        traceback.print_exc()  # into the cell's log; the error itself goes back to the sweep
        raise
    return {"valid_accuracy": record.get("valid_accuracy"), "test_accuracy": record.get("test_accuracy")}


def train_in_workers(cells: list[TrainSettings], workers: int, after_each: Callable[[], None]) -> None:
    """Train `cells` with `workers` processes at once; `after_each` runs here after every finished cell."""
    environments = cell_environments(len(cells), workers, visible_gpus(), os.cpu_count() or 1)
    failed: list[str] = []
    context = multiprocessing.get_context("spawn")  # fork would copy this process's threads and CUDA state
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1) as pool:
        running = {pool.submit(train_cell, settings, environment, os.getpid()): settings
                   for settings, environment in zip(cells, environments)}
        for settings in cells:
            print(f"queued {Path(settings.out).name} (log: {Path(settings.out) / LOG_FILE})", flush=True)
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                settings = running.pop(future)
                report_cell(settings, future, failed)
                after_each()
    if failed:
        raise DataError(f"{len(failed)} of {len(cells)} sweep cell(s) failed: {'; '.join(failed)} (the other cells "
                        "finished; run the same command again to retry, finished cells are skipped)")


def report_cell(settings: TrainSettings, future, failed: list[str]) -> None:
    name, log = Path(settings.out).name, Path(settings.out) / LOG_FILE
    error = future.exception()
    if error is not None:
        failed.append(f"{name} ({type(error).__name__}: {' '.join(str(error).split())[:200]}; log: {log})")
        print(f"{name}: failed, see {log}", flush=True)
        return
    result = future.result()
    print(f"{name}: valid {result['valid_accuracy']:.2f}%, test {result['test_accuracy']}", flush=True)
