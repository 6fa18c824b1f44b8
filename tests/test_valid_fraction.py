"""--valid-fraction: a larger validation share of the training pool, as an option of the task spec.

The default protocol stays exactly as it was (same ids, same protocol line); another share holds out more of
the same pool with the same seed, and the spec that says so travels in run.json, sweeps and compare's arms."""

import hashlib
import json
from pathlib import Path

import pytest

from stepdistill.cli import build_parser, main
from stepdistill.errors import DataError
from stepdistill.experiments.compare import arms_of
from stepdistill.experiments.runs import RunScores
from stepdistill.experiments.sweep import SweepConfig, planned_runs, run_name, task_label
from stepdistill.student.train import TrainSettings, run_train
from stepdistill.tasks import TaskSpec, get_task, with_options
from stepdistill.tasks.spec import task_from_args
from stepdistill.teacher.extract import ExtractSettings, run_extract

ROOT = Path(__file__).resolve().parents[1]
SVAMP_20 = str(TaskSpec("svamp", valid_fraction=0.2))
DEFAULT_VALID_SHA = "5b333480329602f9"  # sha256 of today's 80 SVAMP validation ids, space-joined (before the option)


def ids(examples):
    return [example.id for example in examples]


def test_default_protocol_is_unchanged(data_dir):
    svamp = get_task("svamp", data_dir)
    valid = ids(svamp.protocol_split("valid", with_teacher=False))
    assert len(valid) == 80 and valid[:3] == ["svamp-train-30", "svamp-train-34", "svamp-train-35"]
    assert hashlib.sha256(" ".join(valid).encode()).hexdigest()[:16] == DEFAULT_VALID_SHA
    assert svamp.protocol == ("SVAMP: train = 90% of the release train split, valid = the other 10% (seed 0), "
                              "test = release test")
    assert get_task(with_options("svamp", valid_fraction=0.1), data_dir).protocol == svamp.protocol


def test_a_fifth_held_out_of_svamp(data_dir):
    task = get_task(SVAMP_20, data_dir)
    train, valid = (ids(task.protocol_split(split, with_teacher=False)) for split in ("train", "valid"))
    pool = ids(task.load("train", with_teacher=False))
    assert (len(train), len(valid), len(task.protocol_split("test"))) == (640, 160, 200)
    assert not set(train) & set(valid) and sorted(train + valid) == sorted(pool)
    assert train == [example_id for example_id in pool if example_id in set(train)]  # the pool's order
    default = get_task("svamp", data_dir)
    # one seeded permutation: the default's 80 are among the 160, so the new train split is a subset of the old
    assert set(ids(default.protocol_split("valid", with_teacher=False))) < set(valid)
    assert set(train) < set(ids(default.protocol_split("train", with_teacher=False)))
    assert task.protocol == ("SVAMP: train = 80% of the release train split, valid = the other 20% (seed 0), "
                             "test = release test")
    assert "train = 75% of the release validation split, valid = the other 25%" in get_task(
        with_options("anli1", valid_fraction=0.25), data_dir).protocol


def test_the_spec_round_trips_and_refuses_bad_values():
    spec = TaskSpec("svamp", valid_fraction=0.2)
    assert str(spec) == '{"source": "svamp", "valid_fraction": 0.2}' and TaskSpec.parse(str(spec)) == spec
    assert TaskSpec.parse({"source": "svamp", "valid_fraction": 0.2}) == spec
    assert str(TaskSpec("svamp", valid_fraction=0.1)) == "svamp"  # the default written out is the default
    both = with_options("nli.csv", label_column="gold", valid_fraction=0.3)
    assert TaskSpec.parse(both) == TaskSpec("nli.csv", label_column="gold", valid_fraction=0.3)
    assert TaskSpec.parse(with_options(both, id_column="key")).valid_fraction == 0.3  # kept when adding options
    for bad in (0, 1, 1.5, -0.2, float("nan"), "0.2", True):
        with pytest.raises(DataError, match=r"valid_fraction \(--valid-fraction\) must be a number between 0 and 1"):
            TaskSpec("svamp", valid_fraction=bad)
    with pytest.raises(DataError, match="valid_fraction"):
        TaskSpec.parse('{"source": "svamp", "valid_fraction": 0}')


def test_benchmarks_take_valid_fraction_but_not_the_row_options(data_dir):
    assert get_task(SVAMP_20, data_dir).valid_fraction == 0.2
    with pytest.raises(DataError, match="for your own data, not svamp"):
        get_task(with_options("svamp", label_column="y", valid_fraction=0.2), data_dir)


def test_every_command_with_task_takes_valid_fraction(data_dir, capsys):
    for command in (["extract", "--out", "o"], ["train", "--out", "o"], ["eval", "--model", "m"], ["data", "stats"]):
        args = build_parser().parse_args(command + ["--task", "svamp", "--valid-fraction", "0.2"])
        assert task_from_args(args) == SVAMP_20, command
    args = build_parser().parse_args(["train", "--out", "o", "--task", SVAMP_20])
    assert task_from_args(args) == SVAMP_20  # the JSON form, as run.json and a manifest hold it
    with pytest.raises(DataError, match="need --task"):
        task_from_args(build_parser().parse_args(["eval", "--model", "m", "--valid-fraction", "0.2"]))
    assert main(["data", "stats", "--data-dir", str(data_dir), "--task", "svamp", "--valid-fraction", "1.5"]) == 2
    assert "error: valid_fraction (--valid-fraction) must be a number between 0 and 1" in capsys.readouterr().err


def write_rows(path: Path, count: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"{path.stem}{i}", "input": f"q{i}", "label": str(i)}) + "\n"
                            for i in range(count)))


def test_own_data_holds_out_the_share_or_refuses_when_it_has_a_valid_split(tmp_path):
    write_rows(tmp_path / "no_valid" / "train.jsonl", 40)
    task = get_task(with_options(str(tmp_path / "no_valid"), valid_fraction=0.25))
    assert len(task.protocol_split("valid")) == 10 and len(task.protocol_split("train")) == 30
    assert task.protocol.endswith("own data; valid = 25% of train held out (seed 0)")
    assert get_task(str(tmp_path / "no_valid")).protocol.endswith("valid = 10% of train held out (seed 0)")
    write_rows(tmp_path / "with_valid" / "train.jsonl", 40)
    write_rows(tmp_path / "with_valid" / "dev.jsonl", 5)
    assert len(get_task(str(tmp_path / "with_valid")).protocol_split("valid")) == 5
    with pytest.raises(DataError, match="has a valid split of its own"):
        get_task(with_options(str(tmp_path / "with_valid"), valid_fraction=0.25))


def test_sweep_config_mapping_and_the_shipped_evidence_config():
    config = SweepConfig.load(ROOT / "configs" / "cpu" / "evidence" / "svamp-f25-valid20.yaml")
    assert config.tasks == [SVAMP_20] and config.seeds == [0, 1, 2]
    runs = planned_runs(config, Path("/tmp/x"))
    assert len(runs) == 6 and {run.task for run in runs} == {SVAMP_20} and {run.method for run in runs} == {"standard", "dss"}
    budget = SweepConfig.load(ROOT / "configs" / "cpu" / "evidence" / "svamp-f25-budget.yaml")
    same = {key: value for key, value in budget.train.items() if key != "eval_steps"}
    assert {key: config.train[key] for key in same} == same and config.train["eval_steps"] == 40  # 2 epochs of 160
    # beside the default protocol in one sweep, each protocol has its own run folders
    assert run_name(SVAMP_20, "dss", "gold", "smollm2", 0.25, 0) != run_name("svamp", "dss", "gold", "smollm2", 0.25, 0)


def test_runs_of_two_protocols_are_two_arms_and_two_report_groups():
    def run(seed, task):
        record = {"seed": seed, "method": "dss", "labels": "gold", "task": "svamp",
                  "settings": {"seed": seed, "method": "dss", "alpha": 0.5, "task": task}}
        return RunScores(Path(f"run-{seed}-{len(task)}"), record, {"item": True})

    runs = [run(seed, task) for task in ("svamp", SVAMP_20) for seed in (0, 1)]
    arms = arms_of(runs)
    assert len(arms) == 2 and sorted(len(members) for members in arms.values()) == [2, 2]
    assert any("valid_fraction" in name for name in arms)
    assert [task_label(r.record) for r in runs] == ["svamp", "svamp", "svamp (valid 20%)", "svamp (valid 20%)"]


@pytest.mark.filterwarnings("ignore:every evaluated checkpoint")  # 1 step of a random model
def test_training_records_the_spec_and_uses_default_protocol_rationales(tmp_path, data_dir, capsys):
    """Rationales extracted under the default protocol cover the new train split (a subset of the same pool)."""
    extraction = tmp_path / "extraction"
    run_extract(ExtractSettings(task="svamp", teacher="replay", out=str(extraction), data_dir=str(data_dir),
                                progress=False))
    out = tmp_path / "run"
    record = run_train(TrainSettings(task=SVAMP_20, method="dss", student="tiny-llama", out=str(out),
                                     data_dir=str(data_dir), rationales=str(extraction), max_steps=1, batch_size=4,
                                     label_max_new_tokens=2, max_target_len=32, max_source_len=96, progress=False,
                                     eval_batch_size=40, test=False))
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["task"] == SVAMP_20 and run["protocol"].startswith("SVAMP: train = 80%")
    assert run["sizes"]["valid"] == 160 and run["data"]["pool"] == 640 == record["sizes"]["train"]
    unparsed_in_train = sum(example.rationale is None
                            for example in get_task(SVAMP_20, data_dir).protocol_split("train"))
    assert run["rationale_skipped"] == unparsed_in_train > 0  # the released parse failures, as without an extraction
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--split", "valid", "--limit", "0", "--batch-size", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 160 and "other 20%" in result["protocol"]
