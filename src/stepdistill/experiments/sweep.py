"""`stepdistill sweep`: the cross product of a config, each cell an ordinary `stepdistill train` run folder.

Finished runs (run.json with status "done") are skipped and unfinished ones resume from their last
checkpoint, so a sweep killed at any point is continued by running the same command again.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import DataError
from ..jsonio import read_json, write_jsonl
from ..student.train import RUN_FILE, TrainSettings

AXES = ("tasks", "methods", "labels", "fractions", "students", "seeds")


@dataclass
class SweepConfig:
    name: str
    tasks: list[str]
    methods: list[str]
    labels: list[str]
    fractions: list[float]
    students: list[str]
    seeds: list[int]
    train: dict  # TrainSettings fields applied to every run
    teacher_accuracy: dict  # optional {task: percent}, drawn as the teacher's line in plots

    @classmethod
    def load(cls, path: str | Path) -> "SweepConfig":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: sweep config not found")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise DataError(f"{path}: malformed YAML ({e})") from None
        known = {f.name for f in dataclasses.fields(TrainSettings)}
        unknown = set(raw.get("train", {})) - known
        if unknown:
            raise DataError(f"{path}: unknown train setting(s) {', '.join(sorted(unknown))}")
        for axis in AXES:
            if axis in raw and not isinstance(raw[axis], list):
                raise DataError(f"{path}: '{axis}' should be a list")
        extra = set(raw) - set(AXES) - {"name", "train", "teacher_accuracy", "serve"}  # serve: report only
        if extra:
            raise DataError(f"{path}: unknown key(s) {', '.join(sorted(extra))}")
        return cls(name=raw.get("name", path.stem), tasks=raw.get("tasks", ["svamp"]),
                   methods=raw.get("methods", ["standard", "dss"]), labels=raw.get("labels", ["gold"]),
                   fractions=[float(f) for f in raw.get("fractions", [1.0])],
                   students=raw.get("students", ["smollm2"]), seeds=[int(s) for s in raw.get("seeds", [0])],
                   train=raw.get("train", {}), teacher_accuracy=raw.get("teacher_accuracy", {}))


def run_name(task: str, method: str, labels: str, student: str, fraction: float, seed: int) -> str:
    tag = re.sub(r"[^A-Za-z0-9.]+", "-", Path(student).name if "/" in student and Path(student).exists() else student)
    task_tag = re.sub(r"[^A-Za-z0-9.]+", "-", task)
    return f"{task_tag}__{method}-{labels}__{tag.strip('-')}__f{fraction:g}__s{seed}"


def planned_runs(config: SweepConfig, out: Path, data_dir: str | None = None) -> list[TrainSettings]:
    runs = []
    for task, method, labels, fraction, student, seed in itertools.product(
            config.tasks, config.methods, config.labels, config.fractions, config.students, config.seeds):
        settings = {**config.train, "task": task, "method": method, "labels": labels, "fraction": fraction,
                    "student": student, "seed": seed,
                    "out": str(out / "runs" / run_name(task, method, labels, student, fraction, seed))}
        if data_dir:
            settings["data_dir"] = data_dir
        runs.append(TrainSettings(**settings))
    return runs


def is_finished(run_dir: str | Path) -> bool:
    path = Path(run_dir) / RUN_FILE
    return path.is_file() and read_json(path).get("status") == "done"


def result_row(run_dir: Path) -> dict:
    run = read_json(run_dir / RUN_FILE)
    keys = ("task", "method", "labels", "student", "student_parameters", "fraction", "seed", "alpha", "protocol",
            "best_step", "steps", "valid_accuracy", "test_accuracy", "train_seconds", "train_tokens_per_second",
            "rationale_skipped")
    return {"run": run_dir.name, **{k: run.get(k) for k in keys}}


def gather_results(out: Path) -> list[dict]:
    rows = [result_row(d) for d in sorted((out / "runs").glob("*")) if is_finished(d)]
    write_jsonl(out / "results.jsonl", rows)
    return rows


def run_sweep(config_path: str | Path, out: str | Path, data_dir: str | None = None) -> list[dict]:
    from ..student.train import run_train

    config = SweepConfig.load(config_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(Path(config_path).read_text())
    runs = planned_runs(config, out, data_dir)
    for i, settings in enumerate(runs, start=1):
        name = Path(settings.out).name
        if is_finished(settings.out):
            print(f"[{i}/{len(runs)}] {name}: done, skipped", flush=True)
            continue
        resume = (Path(settings.out) / "checkpoints").is_dir()
        print(f"[{i}/{len(runs)}] {name}: {'resuming' if resume else 'training'}", flush=True)
        record = run_train(dataclasses.replace(settings, resume=resume))
        print(f"[{i}/{len(runs)}] {name}: valid {record['valid_accuracy']:.2f}%, test {record['test_accuracy']}",
              flush=True)
        gather_results(out)
        gc.collect()
    return gather_results(out)
