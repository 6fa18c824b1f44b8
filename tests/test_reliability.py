"""Issue 9 (student, sweep, CLI): no silent mix-ups, no "successful" nonsense, no lost work, and clear
one-line errors instead of tracebacks. Everything fails before any training unless said otherwise."""

import json
import platform
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from stepdistill import provenance
from stepdistill.cli import main
from stepdistill.errors import DataError
from stepdistill.experiments.sweep import run_sweep
from stepdistill.jsonio import iter_jsonl, read_json
from stepdistill.provenance import bf16_is_emulated, cpu_bf16_instructions
from stepdistill.student.guards import warn_slow_bf16
from stepdistill.student.resume import SETTINGS_FILE, checkpoint_problem
from stepdistill.student.settings import TrainSettings
from stepdistill.student.train import evaluation_interval, load_data, run_train
from stepdistill.teacher.extract import ExtractSettings

TINY = dict(max_steps=4, eval_steps=2, batch_size=4, eval_limit=4, label_max_new_tokens=6, max_target_len=48,
            max_source_len=128, logging_steps=1, progress=False, eval_batch_size=8, test=False)


def write_jsonl_task(folder: Path, splits=("train",), n=20, text="Tom has {i} apples. How many?") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split in splits:
        rows = [{"input": text.format(i=i), "label": str(i)} for i in range(n)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def write_extraction(folder: Path, inputs: list[str]) -> Path:
    """An extraction folder as `stepdistill extract` leaves it, for inputs without ids (train-N)."""
    folder.mkdir(parents=True)
    rows = [{"id": f"train-{i}", "input": text, "label": "1", "rationale": "Because.", "teacher_label": "1",
             "kept": True} for i, text in enumerate(inputs)]
    (folder / "rationales.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "manifest.json").write_text(json.dumps({"keep": "parsed", "task": "jsonl:other",
                                                      "input_file": "other/train.jsonl"}))
    return folder


# -- 4. numeric settings ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, flag", [
    (dict(max_steps=0, epochs=0), "nothing to train"), (dict(epochs=-1), "--epochs"), (dict(batch_size=0), "--batch-size"),
    (dict(grad_accum=0), "--grad-accum"), (dict(lr=-1.0), "--lr"), (dict(lr=float("nan")), "--lr"),
    (dict(eval_limit=-1), "--eval-limit"), (dict(max_steps=-5), "--max-steps"), (dict(method="dsss"), "--method"),
    (dict(eval_batch_size=0), "--eval-batch-size"), (dict(max_target_len=0), "--max-target-len"),
    (dict(eval_epochs=-2.0), "--eval-epochs"), (dict(eval_steps=40, eval_epochs=2.0), "give one of them"),
])
def test_train_settings_out_of_range_are_refused(bad, flag):
    with pytest.raises(DataError, match=flag):
        TrainSettings(out="x", **bad)


def test_valid_train_settings_pass():
    TrainSettings(out="x", max_steps=-1, epochs=0.5)
    TrainSettings(out="x", max_steps=3, epochs=0)


@pytest.mark.parametrize("interval, steps_per_epoch, total, expected", [
    (dict(), 23, 276, 23),                        # default: once an epoch
    (dict(eval_steps=46), 23, 276, 46),
    (dict(eval_epochs=2.0), 23, 276, 46),         # 25% of SVAMP: the same checkpoints as eval_steps 46
    (dict(eval_epochs=2.0), 12, 144, 24),         # 12.5%: 2 epochs of its own
    (dict(eval_epochs=0.5), 23, 276, 12),         # rounded up to a whole step
    (dict(eval_epochs=1.1), 50, 500, 55),         # 1.1 x 50 is 55.00000000000001 in floats: still 55
    (dict(eval_epochs=30.0), 23, 276, 276),       # never past the run: the last step is evaluated
])
def test_evaluation_interval_in_steps(interval, steps_per_epoch, total, expected):
    assert evaluation_interval(TrainSettings(out="x", **interval), steps_per_epoch, total) == expected


@pytest.mark.parametrize("bad, flag", [(dict(max_tokens_budget=-1), "--max-tokens-budget"), (dict(rpm=0.0), "--rpm"),
                                       (dict(top_p=1.5), "--top-p"), (dict(threads=0), "--threads")])
def test_extract_settings_out_of_range_are_refused(bad, flag):
    with pytest.raises(DataError, match=flag):
        ExtractSettings(task="svamp", out="x", **bad)


# -- 1. resume with other settings; 3. a finished run is not overwritten -------------------------------------------
def test_resume_with_another_task_is_refused_naming_the_setting(tmp_path, data_dir):
    started = TrainSettings(task="svamp", student="tiny-llama", out=str(tmp_path), data_dir=str(data_dir),
                            input_format="prefix", **TINY)  # as settings.json keeps it: auto resolved
    (tmp_path / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(started.__dict__))
    changed = TrainSettings(**{**started.__dict__, "task": "cqa", "max_steps": 8, "resume": True, "progress": True})
    with pytest.raises(DataError, match=r"--task was 'svamp', now 'cqa'; --max-steps was 4, now 8"):
        run_train(changed)
    assert json.loads((tmp_path / SETTINGS_FILE).read_text())["task"] == "svamp"  # kept as it was


@pytest.mark.parametrize("leftover", ["run.json", "model"])
def test_a_finished_run_needs_overwrite(tmp_path, data_dir, leftover):
    (tmp_path / "model").mkdir()
    if leftover == "run.json":
        (tmp_path / "run.json").write_text("{}")
    settings = TrainSettings(task="svamp", student="tiny-llama", out=str(tmp_path), data_dir=str(data_dir), **TINY)
    with pytest.raises(DataError, match="--overwrite"):
        run_train(settings)
    assert (tmp_path / "model").is_dir()


def test_overwrite_replaces_a_finished_run_and_a_damaged_checkpoint_is_skipped_on_resume(tmp_path, data_dir, capsys):
    """One tiny run (4 steps, checkpoints at 2 and 4); then: killed after saving checkpoint-4 badly."""
    out = tmp_path / "run"
    settings = TrainSettings(task="svamp", student="tiny-llama", out=str(out), data_dir=str(data_dir), **TINY)
    (out / "model").mkdir(parents=True)  # an earlier run's model: replaced with --overwrite
    first = run_train(TrainSettings(**{**settings.__dict__, "overwrite": True}))
    assert first["steps"] == 4 and (out / "model" / "config.json").is_file()
    assert json.loads((out / SETTINGS_FILE).read_text())["max_steps"] == 4
    (out / "run.json").unlink()
    weights = out / "checkpoints" / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert checkpoint_problem(weights.parent) and checkpoint_problem(out / "checkpoints" / "checkpoint-2") is None
    capsys.readouterr()
    resumed = run_train(TrainSettings(**{**settings.__dict__, "resume": True}))
    assert "checkpoint-4 is damaged" in capsys.readouterr().err
    assert resumed["resumed_from_step"] == 2 and resumed["steps"] == 4 and resumed["status"] == "done"
    assert (out / "checkpoints" / "damaged-checkpoint-4").is_dir()
    assert checkpoint_problem(out / "checkpoints" / "checkpoint-4") is None  # saved again, whole


# -- 2. rationales of other inputs; 7. a missing test split; small validation --------------------------------------
def test_rationales_of_other_inputs_are_refused_with_the_count(tmp_path):
    task = write_jsonl_task(tmp_path / "task", splits=("train", "valid"))
    other = [f"Tom has {i} apples. How many?" if i < 5 else f"What colour is sky {i}?" for i in range(20)]
    extraction = write_extraction(tmp_path / "r", other)
    settings = TrainSettings(task=f"jsonl:{task}", rationales=str(extraction), student="tiny-llama",
                             out=str(tmp_path / "out"), **TINY)
    with pytest.raises(DataError, match=r"15 of 20 rows have another input"):
        run_train(settings)
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_rationales_of_the_same_inputs_pass(tmp_path):
    task = write_jsonl_task(tmp_path / "task", splits=("train", "valid"))
    extraction = write_extraction(tmp_path / "r", [f"Tom  has {i} apples.\nHow many?" for i in range(20)])
    settings = TrainSettings(task=f"jsonl:{task}", rationales=str(extraction), student="tiny-llama",
                             out=str(tmp_path / "out"), **TINY)
    _, examples, report, _ = load_data(settings)
    assert report.no_rationale == 0 and examples[0].rationale == "Because."


def test_a_missing_test_split_stops_before_training(tmp_path):
    task = write_jsonl_task(tmp_path / "task", splits=("train",))
    settings = TrainSettings(task=f"jsonl:{task}", student="tiny-llama", out=str(tmp_path / "out"),
                             **{**TINY, "test": True})
    with pytest.raises(DataError, match="--no-test"):
        run_train(settings)
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_a_small_validation_split_is_warned_about(tmp_path, capsys):
    task = write_jsonl_task(tmp_path / "task", splits=("train",), n=12)  # 10% held out: 1 example
    load_data(TrainSettings(task=f"jsonl:{task}", student="tiny-llama", out=str(tmp_path / "out"), **TINY))
    assert "only 1 validation examples: checkpoint selection" in capsys.readouterr().err


def cpuinfo_flags() -> set[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((line for line in text.splitlines() if line.startswith("flags")), None)
    return set(line.split(":", 1)[1].split()) if line else None


def test_bf16_instructions_are_read_as_the_kernel_lists_them():
    found, flags = cpu_bf16_instructions(), cpuinfo_flags()
    if platform.machine() != "x86_64" or flags is None:
        pytest.skip("the check reads x86 flags from /proc/cpuinfo")
    assert found == bool(flags & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize("bf16, instructions, warned", [(True, False, True), (True, True, False),
                                                         (True, None, False), (False, False, False)])
def test_bf16_without_bf16_instructions_is_warned_about_and_kept(monkeypatch, capsys, bf16, instructions, warned):
    monkeypatch.setattr(provenance, "cpu_bf16_instructions", lambda: instructions)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    warn_slow_bf16(bf16)
    assert ("bf16 on a CPU without bf16 instructions" in capsys.readouterr().err) == warned
    assert bf16_is_emulated() == (instructions is False)  # `make demo` trains in fp32 where this holds


# -- 1 and 6: sweeps ------------------------------------------------------------------------------------------
def write_sweep_config(path: Path, data_dir: Path, **changes) -> Path:
    config = {"name": "t", "tasks": ["svamp"], "methods": ["standard", "dss"], "students": ["tiny-llama"],
              "train": {"max_steps": 2, "batch_size": 4}, **changes}
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@pytest.mark.parametrize("change, message", [(dict(methods=["dss", "dsss"]), "--method must be one of"),
                                             (dict(tasks=["svamp", "svmap"]), "unknown task 'svmap'"),
                                             (dict(students=["tiny-llama", "smollm"]), "unknown student 'smollm'"),
                                             (dict(train={"lr": 0}), "--lr must be")])
def test_sweep_checks_the_whole_grid_before_the_first_cell(tmp_path, data_dir, change, message):
    config = write_sweep_config(tmp_path / "c.yaml", data_dir, **change)
    with pytest.raises(DataError, match=message):
        run_sweep(config, tmp_path / "sweep", str(data_dir))
    assert not (tmp_path / "sweep").exists()


def test_sweep_rerun_with_edited_train_settings_is_refused(tmp_path, data_dir):
    from stepdistill.experiments.sweep import SweepConfig, planned_runs

    config = write_sweep_config(tmp_path / "c.yaml", data_dir)
    out = tmp_path / "sweep"
    for settings in planned_runs(SweepConfig.load(config), out, str(data_dir)):  # as if the sweep had finished
        Path(settings.out).mkdir(parents=True)
        (Path(settings.out) / "run.json").write_text(json.dumps({"status": "done", "settings": settings.__dict__}))
    (out / "config.yaml").write_text("kept")
    edited = write_sweep_config(tmp_path / "c.yaml", data_dir, train={"max_steps": 2, "batch_size": 8})
    with pytest.raises(DataError, match=r"2 cell\(s\).*--batch-size was 4, now 8"):
        run_sweep(edited, out, str(data_dir))
    assert (out / "config.yaml").read_text() == "kept"


# -- clear errors instead of tracebacks ---------------------------------------------------------------------------
def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"input": "x"}\n')
    assert [row for _, row in iter_jsonl(path)] == [{"input": "x"}]
    (tmp_path / "b.json").write_bytes(b'\xef\xbb\xbf["x"]')
    assert read_json(tmp_path / "b.json") == ["x"]


def _cli_cases(tmp: Path, data_dir: Path) -> dict:
    """name -> (argv, what the one error line must say). Each case sets up its own files under `tmp`."""
    svamp = ["--task", "svamp", "--data-dir", str(data_dir), "--student", "tiny-llama", "--no-progress"]
    latin = write_jsonl_task(tmp / "latin", splits=("train", "test"))
    (latin / "train.jsonl").write_bytes(b'{"input": "a", "label": "1"}\n{"input": "caf\xe9", "label": "1"}\n')
    (tmp / "a-file").write_text("")
    (tmp / "list.yaml").write_text("- tasks: [svamp]\n")
    (tmp / "words.yaml").write_text("fractions: [half]\n")
    (tmp / "empty-student").mkdir()
    empty = write_jsonl_task(tmp / "empty", splits=("train", "test"))
    (empty / "test.jsonl").write_text("")
    no_test = write_jsonl_task(tmp / "no-test")
    mixed = write_jsonl_task(tmp / "mixed", splits=("train", "test"))
    write_extraction(tmp / "other-r", [f"colour {i}" for i in range(20)])
    (tmp / "run").mkdir()
    return {
        "non-utf8": (["train", "--task", f"jsonl:{latin}", "--out", str(tmp / "o1")], "train.jsonl:2: not UTF-8"),
        "unwritable-out": (["train", *svamp, "--out", str(tmp / "a-file" / "run")], "cannot create the run folder"),
        "missing-weights": (["train", *svamp[:4], "--student", str(tmp / "empty-student"), "--no-test",
                             "--out", str(tmp / "o2")], "cannot load the model"),
        "yaml-list": (["sweep", "--config", str(tmp / "list.yaml"), "--out", str(tmp / "s")], "top level should be"),
        "yaml-fractions": (["sweep", "--config", str(tmp / "words.yaml"), "--out", str(tmp / "s")], "fractions should"),
        "eval-no-run": (["eval", "--model", str(tmp / "nothing")], f"no run at {tmp / 'nothing'}"),
        "missing-rationales": (["train", *svamp, "--rationales", str(tmp / "nothing"), "--out", str(tmp / "o3")],
                               "--rationales folder not found"),
        "empty-split": (["eval", "--model", str(tmp / "run"), "--task", f"jsonl:{empty}"], "empty file"),
        "eval-batch-size": (["eval", "--model", str(tmp / "run"), "--batch-size", "-1"], "--batch-size must be"),
        "eval-limit": (["eval", "--model", str(tmp / "run"), "--limit", "-1"], "--limit must be"),
        # --out is checked before the task, the model or an endpoint is touched (the run folder here holds no model)
        "eval-out-no-folder": (["eval", "--model", str(tmp / "run"), "--out", str(tmp / "no" / "p.jsonl")],
                               f"its folder {tmp / 'no'} does not exist"),
        "eval-out-under-a-file": (["eval", "--model", str(tmp / "run"), "--out", str(tmp / "a-file" / "p.jsonl")],
                                  "is not a folder"),
        "eval-out-is-a-folder": (["eval", "--model", str(tmp / "run"), "--out", str(tmp)], "is a folder"),
        "eval-out-unwritable": (["eval", "--model", str(tmp / "run"), "--out", "/proc/p.jsonl"],
                                "cannot write in /proc"),  # refused even to root
        "eval-endpoint-out": (["eval", "--endpoint", "http://127.0.0.1:9/v1", "--task", "svamp", "--data-dir",
                               str(data_dir), "--out", str(tmp / "no" / "p.jsonl")], "does not exist"),
        "eval-endpoint-choices": (["eval", "--endpoint", "http://127.0.0.1:9/v1", "--task", "cqa", "--answer",
                                   "choices"], "use --model RUN, not --endpoint"),
        "predict-no-input": (["predict", "--model", str(tmp / "run"), "--input", str(tmp / "none.jsonl")],
                             "none.jsonl: file not found"),
        "nothing-to-train": (["train", *svamp, "--max-steps", "0", "--epochs", "0", "--out", str(tmp / "o4")],
                             "nothing to train"),
        "grad-accum": (["train", *svamp, "--grad-accum", "0", "--out", str(tmp / "o5")], "--grad-accum must be"),
        "extract-budget": (["extract", "--task", "svamp", "--max-tokens-budget", "-1", "--out", str(tmp / "x")],
                           "--max-tokens-budget must be"),
        "no-test-jsonl": (["train", "--task", f"jsonl:{no_test}", "--student", "tiny-llama", "--out", str(tmp / "o6")],
                          "pass --no-test"),
        "other-rationales": (["train", "--task", f"jsonl:{mixed}", "--rationales", str(tmp / "other-r"),
                              "--student", "tiny-llama", "--out", str(tmp / "o7")], "18 of 18 rows"),  # 2 held out
    }


def test_cli_errors_are_one_line_exit_2_without_traceback(tmp_path, data_dir, capsys):
    for name, (argv, expected) in _cli_cases(tmp_path, data_dir).items():
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, (name, err)
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, (name, err)
        assert expected in err, (name, err)


def test_ctrl_c_in_train_says_resume(tmp_path, monkeypatch, capsys):
    import stepdistill.student.train as train_module

    def interrupted(settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "run_train", interrupted)
    assert main(["train", "--out", str(tmp_path)]) == 130
    assert "--resume" in capsys.readouterr().err


# -- provenance: the code a run came from -----------------------------------------------------------------------
def test_runs_record_the_source_commit_of_a_checkout(tmp_path):
    from stepdistill.provenance import library_versions, source_commit

    found = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"], capture_output=True,
                           text=True)
    if found.returncode:
        pytest.skip("the tests are not in a git checkout")
    head = found.stdout.strip()
    assert source_commit().removesuffix("+dirty") == head
    assert library_versions()["stepdistill_commit"] == source_commit()
    assert source_commit(tmp_path) is None  # not a git checkout: nothing recorded, no error


def test_source_commit_only_for_code_the_repository_tracks(tmp_path):
    from stepdistill.provenance import source_commit

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              capture_output=True, text=True, check=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "README").write_text("a project\n")
    git("add", "README")
    git("commit", "-qm", "project")
    package = tmp_path / ".venv" / "site-packages" / "stepdistill"  # an installed copy inside another repository
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    assert source_commit(package) is None  # the project's commit is not this code's
    git("add", "-f", ".venv")
    git("commit", "-qm", "code")
    assert source_commit(package) == git("rev-parse", "HEAD")
    (tmp_path / "README").write_text("changed elsewhere\n")
    assert source_commit(package) == git("rev-parse", "HEAD")  # only the code's own changes make it dirty
    (package / "__init__.py").write_text("x = 1\n")
    assert source_commit(package) == git("rev-parse", "HEAD") + "+dirty"
