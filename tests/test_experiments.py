"""Sweep -> results -> report on tiny students (the smoke config), and the demo's generated task."""

import json
import shutil
from pathlib import Path

import pytest

from stepdistill.cli import main
from stepdistill.errors import DataError
from stepdistill.experiments.sample_task import write_sample_task
from stepdistill.experiments.sweep import SweepConfig, planned_runs
from stepdistill.student.infer import label_from_single
from stepdistill.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_sweep_report_and_resume(tmp_path, data_dir, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "--config", str(ROOT / "configs" / "smoke.yaml"), "--out", str(out), "--data-dir", str(data_dir)]
    assert main(args) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    config = SweepConfig.load(ROOT / "configs" / "smoke.yaml")
    n = len(config.methods) * len(config.fractions) * len(config.students) * len(config.seeds)
    assert len(rows) == n and all(r["test_accuracy"] is not None for r in rows)
    assert {r["method"] for r in rows} == {"standard", "dss", "single"}
    for row in rows:
        if row["method"] == "single":
            _check_single_run(out / "runs" / row["run"], row, get_task("svamp", data_dir))

    # a finished sweep is skipped, an interrupted cell is redone
    victim = sorted((out / "runs").iterdir())[0]
    (victim / "run.json").unlink()
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("skipped") == n - 1 and victim.name in printed

    assert main(["report", str(out)]) == 0
    for name in ("report.md", "report.html", "summary.json"):
        assert (out / name).is_file()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert any(p.startswith("fraction_") for p in pngs) and any(p.startswith("size_") for p in pngs)
    md = (out / "report.md").read_text()
    assert "distilling step-by-step" in md and "90% of the release train split" in md and "±" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(pngs)  # self-contained
    assert "Data protocol" in html and "Paired comparisons" in html

    # every pair of the 3 methods within each (student, fraction), over both seeds, on the same test items
    summary = json.loads((out / "summary.json").read_text())
    groups = len(config.fractions) * len(config.students)
    assert len(summary["paired"]) == groups * 3 and "## Paired comparisons" in md
    assert {(pair["a"], pair["b"]) for pair in summary["paired"]} == {
        ("distilling step-by-step", "single-task (rationale then label)"),
        ("distilling step-by-step", "standard finetuning"),
        ("single-task (rationale then label)", "standard finetuning")}
    for pair in summary["paired"]:
        assert pair["seeds"] == 2 and pair["items"] == 200 and pair["low"] <= pair["difference"] <= pair["high"]
        assert 0 <= pair["p_value"] <= 1 and pair["verdict"] in ("better", "worse", "no detectable difference")
    assert any(p.startswith("paired_") for p in pngs) and any(p.startswith("losses_") for p in pngs)


def _check_single_run(folder: Path, row: dict, task) -> None:
    """A `single` student is trained on `<rationale> So the answer is <label>.` with no rationale task, and its
    label is read after the answer phrase of a rationale-length generation, then scored."""
    run = json.loads((folder / "run.json").read_text())
    assert run["sizes"]["rationale_rows"] == 0 and run["settings"]["max_target_len"] == 32
    predictions = [json.loads(line) for line in (folder / "predictions_test.jsonl").read_text().splitlines()]
    assert len(predictions) == run["sizes"]["test"]
    assert all(p["prediction"] == label_from_single(p["raw"]) for p in predictions)
    if not run["is_seq2seq"]:  # (the tiny T5 stops at once) generated past the 4 tokens of a label
        assert max(len(p["raw"]) for p in predictions) > run["settings"]["label_max_new_tokens"]
    right = [task.score(p["prediction"], p["gold"]) for p in predictions]
    assert row["test_accuracy"] == pytest.approx(100 * sum(right) / len(right))


def test_sweep_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("methods: dss\n")
    with pytest.raises(DataError, match="'methods' should be a list"):
        SweepConfig.load(bad)
    bad.write_text("train: {learning_rate: 1}\n")
    with pytest.raises(DataError, match="unknown train setting"):
        SweepConfig.load(bad)
    with pytest.raises(DataError, match="not found"):
        SweepConfig.load(tmp_path / "missing.yaml")


def test_sweep_set_overrides_change_the_grid_and_train_settings():
    config = SweepConfig.load(ROOT / "configs" / "smoke.yaml",
                              ["seeds=[3, 4]", "methods=dss", "train.lr=3e-4", "train.max_steps=5"])
    assert config.seeds == [3, 4] and config.methods == ["dss"]  # a single value is a one-item axis
    assert config.train["lr"] == 3e-4 and config.train["max_steps"] == 5  # 3e-4: a number, not YAML 1.1's word
    assert config.train["batch_size"] == 4 and config.students == ["tiny-llama", "tiny-t5"]  # the rest as the file
    runs = planned_runs(config, Path("/tmp/x"))
    assert {(run.method, run.seed, run.lr, run.max_steps) for run in runs} == {("dss", 3, 3e-4, 5), ("dss", 4, 3e-4, 5)}


@pytest.mark.parametrize("override, message", [
    ("seeds", "expected KEY=VALUE"),
    ("=3", "expected KEY=VALUE"),
    ("train.=3", "expected KEY=VALUE"),
    ("seed=[3]", r"smoke.yaml with --set seed=\[3\]: unknown key\(s\) seed"),
    ("train.learning_rate=1", "unknown train setting.*learning_rate"),
    ("seeds=[a]", "with --set seeds=\\[a\\]: seeds should be whole numbers, got 'a'"),
    ("methods=[dss", "the value is not valid YAML"),
])
def test_sweep_set_errors_name_the_override(override, message):
    with pytest.raises(DataError, match=message):
        SweepConfig.load(ROOT / "configs" / "smoke.yaml", [override])


def test_sweep_with_set_saves_the_config_it_ran(tmp_path, data_dir, capsys):
    import yaml

    out = tmp_path / "sweep"
    base = ["sweep", "--config", str(ROOT / "configs" / "smoke.yaml"), "--out", str(out), "--data-dir", str(data_dir)]
    narrowed = ["--set", "methods=[standard]", "--set", "students=[tiny-llama]", "--set", "fractions=[0.5]",
                "--set", "seeds=[7]", "--set", "train.max_steps=1"]
    assert main(base + narrowed) == 0
    assert [path.name for path in (out / "runs").iterdir()] == ["svamp__standard-gold__tiny-llama__f0.5__s7"]
    saved = (out / "config.yaml").read_text()
    assert saved.startswith(f"# {ROOT / 'configs' / 'smoke.yaml'} with --set methods=[standard] --set ")
    assert yaml.safe_load(saved)["seeds"] == [7] and yaml.safe_load(saved)["train"]["max_steps"] == 1
    assert SweepConfig.load(out / "config.yaml").seeds == [7]  # what was run can be run again as it is
    assert main(base + narrowed[:-2] + ["--set", "train.max_steps=2"]) == 2  # the finished cell's settings differ
    assert "--max-steps was 1, now 2" in capsys.readouterr().err
    other_seed = base + narrowed[:-4] + ["--set", "seeds=[8]"]
    assert main(other_seed + ["--set", "train.max_steps=2"]) == 2  # a new cell, but another recipe than the folder's
    error = capsys.readouterr().err
    assert "its cell svamp__standard-gold__tiny-llama__f0.5__s7 ran with other train settings" in error
    assert "--max-steps was 1, now 2" in error and not (out / "runs" / "svamp__standard-gold__tiny-llama__f0.5__s8").exists()
    assert main(other_seed + ["--set", "train.max_steps=1"]) == 0  # more seeds of the same recipe: fine
    assert sorted(path.name[-2:] for path in (out / "runs").iterdir()) == ["s7", "s8"]
    invocations = (out / "invocations.log").read_text().splitlines()  # the two that ran, not the refused ones
    assert len(invocations) == 2 and invocations[0].endswith("--set seeds=[7] --set train.max_steps=1")
    assert invocations[1].endswith("--set seeds=[8] --set train.max_steps=1")
    assert main(base[:-4] + ["--out", str(tmp_path / "never"), "--set", "seed=1"]) == 2
    assert not (tmp_path / "never").exists()  # a bad override stops the sweep before it makes anything


def test_shipped_configs_load():
    for path in [ROOT / "configs" / "smoke.yaml", ROOT / "configs" / "cpu" / "svamp.yaml",
                 *sorted((ROOT / "configs" / "paper").glob("*.yaml")),
                 *sorted((ROOT / "configs" / "cpu" / "evidence").glob("*.yaml"))]:
        config = SweepConfig.load(path)
        assert planned_runs(config, Path("/tmp/x")), path
    assert len(list((ROOT / "configs" / "paper").glob("*.yaml"))) == 4


def test_sample_task_is_seeded_and_disjoint(tmp_path):
    a, b = write_sample_task(tmp_path / "a", 50, 10, 20), write_sample_task(tmp_path / "b", 50, 10, 20)
    assert (a / "train.jsonl").read_text() == (b / "train.jsonl").read_text()
    task = get_task(f"jsonl:{a}:numeric")
    splits = {s: task.protocol_split(s) for s in ("train", "valid", "test")}
    assert [len(v) for v in splits.values()] == [50, 10, 20]
    inputs = [e.input for v in splits.values() for e in v]
    assert len(inputs) == len(set(inputs))
    from stepdistill.teacher.prompts import load_template
    from stepdistill.parsing import parse_generic
    spec = load_template(a / "prompt.yaml")
    assert len(spec.exemplars) == 6
    for e in spec.exemplars:  # each exemplar, written out, parses back to its own label
        parsed = parse_generic(f"{e['rationale']} So the answer is {e['label']}.")
        assert parsed.ok and parsed.label == e["label"]


def workers_config(tmp_path: Path, **train) -> Path:
    """Two methods, one seed, of a tiny Llama student, a few steps each."""
    config = tmp_path / "workers.yaml"
    settings = {"max_steps": 2, "batch_size": 4, "eval_limit": 4, "label_max_new_tokens": 4, "max_source_len": 96,
                "max_target_len": 32, "eval_batch_size": 50, "logging_steps": 1, "progress": False, **train}
    config.write_text(json.dumps({"name": "workers", "tasks": ["svamp"], "methods": ["standard", "dss"],
                                  "fractions": [0.5], "students": ["tiny-llama"], "seeds": [1], "train": settings}))
    return config


def test_sweep_workers_train_cells_at_once_with_the_same_results(tmp_path, data_dir, capsys):
    """--workers 2: each cell in its own process, its output in its train.log; the results are those of the
    one-by-one sweep (same seeds, same data)."""
    config = workers_config(tmp_path)
    results = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        assert main(["sweep", "--config", str(config), "--out", str(out), "--data-dir", str(data_dir),
                     "--workers", str(workers)]) == 0
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        results[workers] = {row["run"]: (row["valid_accuracy"], row["test_accuracy"]) for row in rows}
    assert len(results[2]) == 2 and results[2] == results[1]
    for run in (tmp_path / "w2" / "runs").iterdir():
        assert "label_loss" in (run / "train.log").read_text()  # the cell's own output, not the terminal's
    assert not list((tmp_path / "w1" / "runs").glob("*/train.log"))
    capsys.readouterr()
    assert main(["sweep", "--config", str(config), "--out", str(tmp_path / "w2"), "--data-dir", str(data_dir),
                 "--workers", "2"]) == 0
    assert capsys.readouterr().out.count("done, skipped") == 2


def test_failed_cells_are_named_and_the_others_finish(tmp_path, data_dir, capsys):
    config = workers_config(tmp_path, max_source_len=4)  # no room for any input: every cell fails as it starts
    out = tmp_path / "failing"
    assert main(["sweep", "--config", str(config), "--out", str(out), "--data-dir", str(data_dir),
                 "--workers", "2"]) == 2
    error = capsys.readouterr().err
    assert "2 of 2 sweep cell(s) failed" in error and "svamp__dss-gold__tiny-llama__f0.5__s1" in error
    assert "--max-source-len 4" in (out / "runs" / "svamp__dss-gold__tiny-llama__f0.5__s1" / "train.log").read_text()
    with pytest.raises(DataError, match="--workers must be at least 1"):
        from stepdistill.experiments.sweep import run_sweep
        run_sweep(config, out, str(data_dir), workers=0)


def test_cells_do_not_outlive_a_sweep_killed_outright(tmp_path, data_dir):
    """kill -9 of `sweep --workers` (nothing can clean up): its cell processes exit too, so a rerun never trains
    a cell beside an orphan still writing into the same run folder."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = workers_config(tmp_path, max_steps=2000)  # far longer than the test waits
    out = tmp_path / "killed"
    sweep = subprocess.Popen([sys.executable, "-m", "stepdistill.cli", "sweep", "--config", str(config), "--out",
                              str(out), "--data-dir", str(data_dir), "--workers", "2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cells() -> list[int]:
        children = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == sweep.pid \
                    and "spawn_main" in (entry / "cmdline").read_text():
                children.append(int(entry.name))
        return children

    try:
        deadline = time.monotonic() + 120
        while len(cells()) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        started = cells()
        assert len(started) == 2, "the two cell processes never started"
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait()
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in started) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [pid for pid in started if Path(f"/proc/{pid}").exists()], "orphaned cells still running"
    finally:
        if sweep.poll() is None:
            sweep.kill()
