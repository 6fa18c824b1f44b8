"""`stepdistill sweep`: the cross product of a config, each cell an ordinary `stepdistill train` run folder.

Finished runs (run.json with status "done") are skipped and unfinished ones resume from their last
checkpoint, so a sweep killed at any point is continued by running the same command again. With
`--workers N` several cells train at once, each in its own process (experiments/workers.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import DataError
from ..jsonio import iter_jsonl, write_jsonl
from ..student.runfile import load_run
from ..student.settings import TrainSettings
from ..tasks.base import pool_shares
from ..tasks.spec import TaskSpec

RESULTS_FILE = "results.jsonl"
INVOCATIONS_FILE = "invocations.log"  # every sweep run into the folder, one line each; config.yaml is the latest
AXES = ("tasks", "methods", "labels", "fractions", "students", "seeds")
CELL_KEYS = ("task", "method", "labels", "fraction", "student", "seed")  # a cell's place on the axes; the rest of its
# train settings is the sweep's recipe, shared by every cell of one folder


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
    def load(cls, path: str | Path, overrides: list[str] | tuple = ()) -> "SweepConfig":
        raw = effective_mapping(path, overrides)
        where = described(path, overrides)  # errors name the file and the overrides
        check_mapping(raw, where)
        tasks = [str(TaskSpec.parse(task)) for task in raw.get("tasks", ["svamp"])]  # a mapping: a spec with options
        return cls(name=raw.get("name", Path(path).stem), tasks=tasks,
                   methods=raw.get("methods", ["standard", "dss"]), labels=raw.get("labels", ["gold"]),
                   fractions=numbers(raw.get("fractions", [1.0]), float, f"{where}: fractions"),
                   students=raw.get("students", ["smollm2"]), seeds=numbers(raw.get("seeds", [0]), int, f"{where}: seeds"),
                   train=raw.get("train", {}), teacher_accuracy=raw.get("teacher_accuracy", {}))


def check_mapping(raw: dict, path: str) -> None:
    """Known keys only, axes as lists, train as a mapping of TrainSettings fields (the values are checked when
    each cell's settings are made)."""
    if not isinstance(raw.get("train", {}), dict):
        raise DataError(f"{path}: 'train' should be a mapping of train settings")
    known = {field.name for field in dataclasses.fields(TrainSettings)}
    unknown = set(raw.get("train", {})) - known
    if unknown:
        raise DataError(f"{path}: unknown train setting(s) {', '.join(sorted(unknown))}")
    for axis in AXES:
        if axis in raw and not isinstance(raw[axis], list):
            raise DataError(f"{path}: '{axis}' should be a list")
    extra = set(raw) - set(AXES) - {"name", "train", "teacher_accuracy", "serve"}  # serve: report only
    if extra:
        raise DataError(f"{path}: unknown key(s) {', '.join(sorted(extra))}")


def read_mapping(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: sweep config not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except yaml.YAMLError as error:
        raise DataError(f"{path}: malformed YAML ({' '.join(str(error).split())})") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: the top level should be a mapping (name:, tasks:, train: ...), "
                        f"got a {type(raw).__name__}")
    return raw


def effective_mapping(path: str | Path, overrides: list[str] | tuple = ()) -> dict:
    """The config file's mapping with each `--set KEY=VALUE` applied in order (KEY: a top-level key such as
    seeds, or train.FIELD); the result is validated as if the file had said it."""
    raw = read_mapping(path)
    for override in overrides:
        key, value = parse_override(override)
        if key.startswith("train."):
            train = raw.get("train") or {}
            if isinstance(train, dict):  # else left as it is, for check_mapping to refuse
                raw["train"] = {**train, key.removeprefix("train."): value}
        else:
            raw[key] = [value] if key in AXES and not isinstance(value, list) else value  # seeds=3: one seed
    return raw


def described(path: str | Path, overrides: list[str] | tuple = ()) -> str:
    return f"{path} with --set {' --set '.join(overrides)}" if overrides else str(path)


NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")  # 1e-4, which YAML 1.1 would read as a word


def parse_override(text: str) -> tuple[str, object]:
    """"seeds=[3, 4]" -> ("seeds", [3, 4]); the value read as YAML, so lists, numbers and words all work."""
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key or key.startswith(".") or key.endswith("."):
        raise DataError(f"--set {text!r}: expected KEY=VALUE, e.g. seeds=[3,4], methods=[dss] or train.epochs=5")
    if NUMBER.fullmatch(value.strip()):
        return key, float(value)
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise DataError(f"--set {text!r}: the value is not valid YAML ({' '.join(str(error).split())})") from None


def numbers(values: list, kind: type, where: str) -> list:
    """Each value as `kind`; a word or a fraction where a number is expected is an error, not a traceback."""
    converted = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or kind(value) != value:
            raise DataError(f"{where} should be {'numbers' if kind is float else 'whole numbers'}, got {value!r}")
        converted.append(kind(value))
    return converted


def run_name(task: str, method: str, labels: str, student: str, fraction: float, seed: int) -> str:
    tag = re.sub(r"[^A-Za-z0-9.]+", "-", Path(student).name if "/" in student and Path(student).exists() else student)
    spec = TaskSpec.parse(task)
    task_tag = re.sub(r"[^A-Za-z0-9.]+", "-", spec.source)
    if spec.valid_fraction is not None:  # another protocol: its own runs, beside the default's in one sweep
        task_tag += f"-valid{spec.valid_fraction:g}"
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
        try:
            runs.append(TrainSettings(**settings))
        except DataError as error:
            raise DataError(f"sweep cell {Path(settings['out']).name}: {error}") from None
    return runs


def check_grid(config: SweepConfig, runs: list[TrainSettings], data_dir: str | None) -> None:
    """The whole grid before its first cell trains: every task loads, every student is known (methods, labels
    and numeric settings were checked as each cell's settings were made)."""
    from ..student.guards import check_student
    from ..tasks import get_task

    for spec in config.tasks:
        task = get_task(spec, data_dir)
        if not task.protocol_split("train", with_teacher=False):
            raise DataError(f"task {spec}: the training split has no examples")
    for student in config.students:
        check_student(student)
    for rationales in {settings.rationales for settings in runs if settings.rationales}:
        if not Path(rationales).is_dir():
            raise DataError(f"{rationales}: --rationales folder not found")


def resolved_input_formats(runs: list[TrainSettings]) -> list[TrainSettings]:
    """Each cell with --input-format auto resolved for its student (chat or prefix, as its run will record it),
    so a finished cell is compared with what the config gives now. One tokenizer load per student."""
    from ..student.guards import check_input_format, with_input_format

    keys = {(settings.input_format, settings.student) for settings in runs}
    formats = {key: check_input_format(*key) for key in keys}
    return [with_input_format(settings, formats[settings.input_format, settings.student]) for settings in runs]


def refuse_changed_cells(runs: list[TrainSettings]) -> None:
    """A cell already started or finished under other train settings would be skipped or resumed and then
    reported with the new ones: refused, naming the cells and settings (use another --out for new settings)."""
    from ..student.resume import settings_differences, stored_settings

    changed = {}
    for settings in runs:
        stored = stored_settings(settings.out)
        differences = settings_differences(stored, settings) if stored is not None else []
        if differences:
            changed[Path(settings.out).name] = differences
    if changed:
        first, differences = next(iter(changed.items()))
        raise DataError(f"{len(changed)} cell(s) of this sweep folder ran with other settings than the config now "
                        f"gives (first: {first}: {'; '.join(differences)}); use another --out for new settings, "
                        "or restore the config")


def refuse_mixed_recipe(runs: list[TrainSettings], out: Path) -> None:
    """New cells (other seeds by --set, say) must train with the recipe of the cells already in the folder: the
    report pools a cell's seeds into one arm, and would pool seeds trained at lr 1e-4 with seeds at 3e-4. Refused,
    naming a cell of the folder and the settings that differ."""
    from ..student.resume import settings_differences, stored_settings

    new = next((settings for settings in runs if stored_settings(settings.out) is None), None)
    if new is None or not (out / "runs").is_dir():
        return
    for folder in sorted(path for path in (out / "runs").iterdir() if path.is_dir()):
        stored = stored_settings(folder)
        if stored is None:
            continue
        as_new_cell = {**stored, **{key: getattr(new, key) for key in CELL_KEYS}}
        if stored.get("student") != new.student:  # --input-format auto resolves per student
            as_new_cell["input_format"] = new.input_format
        differences = settings_differences(as_new_cell, new)
        if differences:
            raise DataError(f"{out}: its cell {folder.name} ran with other train settings than the config now gives "
                            f"({'; '.join(differences)}), and a report pools the cells of one folder; train "
                            "another recipe into another --out")


def is_finished(run_dir: str | Path) -> bool:
    return load_run(run_dir, missing_ok=True).get("status") == "done"


def result_row(run_dir: Path) -> dict:
    run = load_run(run_dir)
    keys = ("task", "method", "labels", "student", "student_parameters", "fraction", "seed", "alpha", "protocol",
            "best_step", "steps", "valid_accuracy", "test_accuracy", "train_seconds", "train_tokens_per_second",
            "rationale_skipped")
    test_items = (run.get("sizes") or {}).get("test")
    return {"run": run_dir.name, **{key: run.get(key) for key in keys}, "task": task_label(run),
            "test_items": test_items}


def task_label(run: dict) -> str:
    """The task's name, and the validation share when the run's spec sets one: the report groups and pairs
    runs by this, so runs that chose their checkpoints on other validation sets are never one arm."""
    spec = TaskSpec.parse((run.get("settings") or {}).get("task") or run.get("task") or "?")
    if spec.valid_fraction is None:
        return run.get("task")
    return f"{run.get('task')} (valid {pool_shares(spec.valid_fraction)['valid']})"


def gather_results(out: Path) -> list[dict]:
    """Write results.jsonl: one row per finished run (only the sweep writes it; the report reads it)."""
    rows = [result_row(run_dir) for run_dir in sorted((out / "runs").glob("*")) if is_finished(run_dir)]
    write_jsonl(out / RESULTS_FILE, rows)
    return rows


def read_results(out: Path) -> list[dict]:
    path = out / RESULTS_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found (written by `stepdistill sweep` after each finished run)")
    return [row for _, row in iter_jsonl(path)]


def run_sweep(config_path: str | Path, out: str | Path, data_dir: str | None = None, workers: int = 1,
              overrides: list[str] | tuple = ()) -> list[dict]:
    """Train every unfinished cell (resuming the started ones), one after another or `workers` at once."""
    if workers < 1:
        raise DataError(f"--workers must be at least 1, got {workers}")
    config = SweepConfig.load(config_path, overrides)
    out = Path(out)
    runs = planned_runs(config, out, data_dir)
    check_grid(config, runs, data_dir)
    runs = resolved_input_formats(runs)
    refuse_changed_cells(runs)
    refuse_mixed_recipe(runs, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(saved_config(config_path, overrides), encoding="utf-8")
    log_invocation(out, config_path, overrides)
    cells = unfinished_cells(runs)
    if workers > 1 and len(cells) > 1:
        from .workers import train_in_workers

        train_in_workers(cells, min(workers, len(cells)), after_each=lambda: gather_results(out))
    else:
        train_one_by_one(cells, out)
    return gather_results(out)


def log_invocation(out: Path, config_path: str | Path, overrides: list[str] | tuple) -> None:
    """One line per sweep run into the folder (a folder filled by several --set runs keeps how each cell came)."""
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    with open(out / INVOCATIONS_FILE, "a", encoding="utf-8") as log:
        log.write(f"{started}  {described(config_path, overrides)}\n")


def saved_config(config_path: str | Path, overrides: list[str] | tuple = ()) -> str:
    """The config as the sweep ran it: the file itself (its comments kept), or with --set the effective mapping
    under a header naming the file and the overrides."""
    if not overrides:
        return Path(config_path).read_text(encoding="utf-8-sig")
    return f"# {described(config_path, overrides)}\n" + yaml.safe_dump(effective_mapping(config_path, overrides), sort_keys=False)


def unfinished_cells(runs: list[TrainSettings]) -> list[TrainSettings]:
    """The cells still to train, each set to resume when it has checkpoints; says which are done."""
    cells = []
    for number, settings in enumerate(runs, start=1):
        name = Path(settings.out).name
        if is_finished(settings.out):
            print(f"[{number}/{len(runs)}] {name}: done, skipped", flush=True)
            continue
        resume = (Path(settings.out) / "checkpoints").is_dir()
        print(f"[{number}/{len(runs)}] {name}: {'resuming' if resume else 'to train'}", flush=True)
        cells.append(dataclasses.replace(settings, resume=resume))
    return cells


def train_one_by_one(cells: list[TrainSettings], out: Path) -> None:
    from ..student.train import run_train

    for number, settings in enumerate(cells, start=1):
        name = Path(settings.out).name
        print(f"({number}/{len(cells)}) {name}: training", flush=True)
        record = run_train(settings)
        print(f"({number}/{len(cells)}) {name}: valid {record['valid_accuracy']:.2f}%, test {record['test_accuracy']}",
              flush=True)
        gather_results(out)
        gc.collect()
