"""Users' data from anywhere: JSON Lines, CSV, TSV, Parquet and hf: (local files), read the same way;
--input-template, --label-column, --id-column; errors that name the file, the column and the row."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stepdistill.cli import main
from stepdistill.errors import DataError
from stepdistill.tasks import TaskSpec, get_task, with_options

ROWS = [{"id": f"r{i}", "premise": f"A dog runs in field {i}.", "hypothesis": "An animal moves.",
         "gold": "entailment" if i % 2 else "neutral", "input": f"Question {i},\nwith a comma and a newline",
         "label": str(i * 3)} for i in range(12)]
TEMPLATE = "Premise: {{ premise }}\nHypothesis: {{ hypothesis }}"


def write(folder, fmt, rows, split="train"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt in ("csv", "tsv"):
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t" if fmt == "tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def as_tuples(examples):
    return [(ex.id, ex.input, ex.label) for ex in examples]


@pytest.mark.parametrize("options", [{}, {"input_template": TEMPLATE, "label_column": "gold"}])
def test_the_same_task_from_jsonl_csv_tsv_and_parquet_gives_identical_examples(tmp_path, options):
    got = {}
    for fmt in ("jsonl", "csv", "tsv", "parquet"):
        write(tmp_path / fmt, fmt, ROWS)
        write(tmp_path / fmt, fmt, ROWS[:3], split="test")
        task = get_task(with_options(str(tmp_path / fmt), **options))
        got[fmt] = {split: as_tuples(task.protocol_split(split)) for split in ("train", "valid", "test")}
    assert got["jsonl"] == got["csv"] == got["tsv"] == got["parquet"]
    train = got["jsonl"]["train"] + got["jsonl"]["valid"]
    assert len(got["jsonl"]["valid"]) == 1 and len(train) == 12  # 10% of train held out: no valid file
    first = dict((i, (x, y)) for i, x, y in train)["r1"]
    assert first == (("Premise: A dog runs in field 1.\nHypothesis: An animal moves.", "entailment") if options
                     else ("Question 1,\nwith a comma and a newline", "3"))


def test_jsonl_prefix_scorer_and_own_valid_split(tmp_path):
    write(tmp_path, "csv", ROWS)
    write(tmp_path, "parquet", ROWS[:4], split="validation")
    task = get_task(f"jsonl:{tmp_path}:numeric")
    assert task.scorer == "numeric" and task.name == f"jsonl:{tmp_path}"
    assert len(task.protocol_split("train")) == 12 and len(task.protocol_split("valid")) == 4
    single = get_task(f"{tmp_path / 'train.csv'}:numeric")
    assert single.release_splits == ("train",) and single.score("3.0", "3")


def test_id_column_and_generated_ids(tmp_path):
    rows = [{"key": f"k{i}", "input": "x", "label": "y"} for i in range(3)]
    write(tmp_path, "csv", rows)
    assert [ex.id for ex in get_task(with_options(str(tmp_path), id_column="key")).load("train")] == ["k0", "k1", "k2"]
    assert [ex.id for ex in get_task(str(tmp_path)).load("train")] == ["train-0", "train-1", "train-2"]


def test_hf_spec_on_a_local_folder_and_a_local_file(tmp_path):
    pytest.importorskip("datasets")
    write(tmp_path / "data", "csv", ROWS)
    write(tmp_path / "data", "csv", ROWS[:3], split="test")
    spec = with_options(f"hf:{tmp_path / 'data'}", input_template=TEMPLATE, label_column="gold")
    task = get_task(spec)
    assert set(task.release_splits) == {"train", "test"}
    from_files = get_task(with_options(str(tmp_path / "data"), input_template=TEMPLATE, label_column="gold"))
    for split in ("train", "valid", "test"):
        assert as_tuples(task.protocol_split(split)) == as_tuples(from_files.protocol_split(split))
    one = get_task(f"hf:{write(tmp_path / 'one', 'parquet', ROWS)}:numeric")
    assert one.scorer == "numeric" and as_tuples(one.load("train"))[0] == ("r0", ROWS[0]["input"], "0")


def test_a_missing_column_names_the_column_and_the_file(tmp_path):
    path = write(tmp_path, "csv", [{"premise": "p", "label": "x"}])
    with pytest.raises(DataError, match=r"train\.csv: no column 'hypothesis' \(columns: premise, label\)"):
        get_task(with_options(str(tmp_path), input_template=TEMPLATE)).load("train")
    with pytest.raises(DataError, match=r"train\.csv: no column 'input'"):
        get_task(str(path)).load("train")
    with pytest.raises(DataError, match=r"train\.csv: no column 'gold'"):
        get_task(with_options(str(path), input_template="{{ premise }}", label_column="gold")).load("train")
    pq_path = write(tmp_path / "pq", "parquet", [{"premise": "p"}])
    with pytest.raises(DataError, match=r"train\.parquet: no column 'hypothesis'"):
        get_task(with_options(str(pq_path), input_template=TEMPLATE)).load("train")


def test_an_empty_file_says_so(tmp_path):
    for name in ("train.csv", "train.jsonl"):
        folder = tmp_path / name.split(".")[1]
        folder.mkdir()
        (folder / name).write_text("")
        with pytest.raises(DataError, match=rf"{name}: empty file"):
            get_task(str(folder)).load("train")
    header_only = tmp_path / "h.csv"
    header_only.write_text("input,label\n")
    with pytest.raises(DataError, match=r"h\.csv: empty file \(no rows\)"):
        get_task(str(header_only)).load("train")


def test_a_template_error_names_the_template_and_the_row(tmp_path):
    write(tmp_path, "jsonl", [{"premise": "p", "hypothesis": "h"}, {"premise": "p2"}])
    with pytest.raises(DataError, match=r"--input-template '.*hypothesis.*': .*train\.jsonl:2: 'hypothesis' is undefined"):
        get_task(with_options(str(tmp_path), input_template=TEMPLATE)).load("train")
    with pytest.raises(DataError, match=r"--input-template '\{\{ premise': Jinja syntax error"):
        get_task(with_options(str(tmp_path), input_template="{{ premise"))


def test_the_template_is_sandboxed(tmp_path):
    write(tmp_path, "jsonl", [{"x": "a"}])
    with pytest.raises(DataError, match="--input-template"):
        get_task(with_options(str(tmp_path), input_template="{{ x.__class__.__mro__[1].__subclasses__() }}")).load("train")


def test_spec_strings_round_trip_and_options_reach_every_command(tmp_path, capsys):
    spec = with_options("nli.csv:exact", input_template=TEMPLATE, label_column="gold")
    assert TaskSpec.parse(spec) == TaskSpec("nli.csv:exact", TEMPLATE, "gold") and str(TaskSpec("svamp")) == "svamp"
    with pytest.raises(DataError, match="not svamp"):
        get_task(with_options("svamp", label_column="y"))
    with pytest.raises(DataError, match="unknown task 'nope.csv'"):
        get_task("nope.csv")
    write(tmp_path, "csv", ROWS)
    assert main(["data", "stats", "--task", str(tmp_path), "--input-template", TEMPLATE, "--label-column", "gold",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["examples"] == 12
    from stepdistill.cli import build_parser
    from stepdistill.tasks.spec import task_from_args
    typed = build_parser().parse_args(["train", "--out", "o", "--task", "x.csv", "--input-template", "{{ a }}\\n{{ b }}"])
    assert TaskSpec.parse(task_from_args(typed)).input_template == "{{ a }}\n{{ b }}"  # as a shell passes "\n"
    for command in (["extract", "--out", "o"], ["train", "--out", "o"], ["eval", "--model", "m"]):
        args = build_parser().parse_args(command + ["--task", "x.csv", "--label-column", "gold"])
        assert args.label_column == "gold", command


def test_train_then_eval_read_a_templated_csv_the_same_way(tmp_path, capsys):
    """The options travel in run.json's task spec: eval on the run folder needs no --task."""
    write(tmp_path / "data", "csv", ROWS)
    write(tmp_path / "data", "csv", ROWS[:4], split="test")
    out = tmp_path / "run"
    assert main(["train", "--task", str(tmp_path / "data"), "--input-template", TEMPLATE, "--label-column", "gold",
                 "--method", "standard", "--student", "tiny-t5", "--out", str(out), "--max-steps", "1",
                 "--batch-size", "4", "--label-max-new-tokens", "4", "--no-progress"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert TaskSpec.parse(run["settings"]["task"]).label_column == "gold"
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    predictions = [json.loads(line) for line in open(result["predictions"])]
    assert result["n"] == 4 and predictions[0]["id"] == "r0"


def test_a_sweep_config_names_a_task_with_options_as_a_mapping(tmp_path):
    from stepdistill.experiments.sweep import SweepConfig, planned_runs

    config = tmp_path / "sweep.yaml"
    config.write_text("tasks:\n  - {source: nli.csv, input_template: '{{ premise }}', label_column: gold}\n"
                      "methods: [standard]\n")
    runs = planned_runs(SweepConfig.load(config), tmp_path / "out")
    assert TaskSpec.parse(runs[0].task) == TaskSpec("nli.csv", "{{ premise }}", "gold")
    assert "nli.csv__standard" in runs[0].out
