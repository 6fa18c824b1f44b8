import json

import pytest

from stepdistill.cli import main
from stepdistill.errors import DataError
from stepdistill.tasks import get_task, hold_out, take_fraction
from stepdistill.tasks.base import EOS_MARKER
from stepdistill.tasks.cqa import choices_in, format_input

EXPECTED = {  # datasets/README.md: teacher accuracy and unparsable count per split
    ("cqa", "train"): (9741, 74.26, 3), ("cqa", "test"): (1221, 77.23, 0),
    ("svamp", "train"): (800, 73.50, 13), ("svamp", "test"): (200, 74.00, 2),
    ("anli1", "valid"): (1000, 66.80, 9), ("anli1", "test"): (1000, 65.60, 10),
    ("esnli", "valid"): (9842, 73.17, 4), ("esnli", "test"): (9824, 72.99, 0),
}


def test_data_stats_json_matches_the_release_table(data_dir, capsys):
    assert main(["data", "stats", "--data-dir", str(data_dir), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = {(r["task"], r["split"]): (r["examples"], r["teacher_accuracy"], r["unparsed"]) for r in rows}
    assert got == EXPECTED
    assert all(r["teacher_outputs"] == r["examples"] for r in rows)
    assert set(rows[0]) >= {"task", "split", "examples", "teacher_outputs", "unparsed", "teacher_accuracy"}


def test_input_formats(data_dir):
    cqa = get_task("cqa", data_dir).load("test")[0]
    assert cqa.input == ("A beaver is know for building prowess, their supplies come from where?\nAnswer Choices:\n"
                         "(a) british columbia\n(b) body of water\n(c) wooded area\n(d) pay debts\n(e) zoo")
    assert cqa.label == "wooded area"
    svamp = get_task("svamp", data_dir).load("train")[0]
    assert svamp.input.endswith("\nHow many points did he score per round?") and svamp.label == "( 84.0 / 2.0 )"
    anli = get_task("anli1", data_dir).load("test")[0]
    assert f" {EOS_MARKER} The first Ernest Jones store" in anli.input and anli.label == "entailment"
    esnli = get_task("esnli", data_dir).load("test")[0]
    assert esnli.label == "neutral" and esnli.rationale and esnli.teacher_label == "neutral"



def test_cqa_choices_are_read_back_from_the_input_they_were_written_into(data_dir):
    for example in get_task("cqa", data_dir).load("test")[:50]:
        assert choices_in(example.input) == example.fields["choices"]
    assert choices_in(format_input("Where?\nAnswer Choices:\n(a) x", ["attic", "(b) odd"])) == ["attic", "(b) odd"]
    assert choices_in("Tom has 3 apples.\nHow many?") == []  # not a CQA input
    assert choices_in("Q?\nAnswer Choices:\n(a) one\n(c) skipped") == ["one"]  # stops where the letters do

def test_protocol_splits(data_dir):
    svamp = get_task("svamp", data_dir)
    train, valid, test = (svamp.protocol_split(s) for s in ("train", "valid", "test"))
    assert (len(train), len(valid), len(test)) == (720, 80, 200)
    assert not {e.id for e in train} & {e.id for e in valid}
    assert [e.id for e in valid] == [e.id for e in svamp.protocol_split("valid")]  # fixed seed
    anli = get_task("anli1", data_dir)
    assert len(anli.protocol_split("train")) == 900 and len(anli.protocol_split("valid")) == 100
    assert "validation split" in anli.protocol


def test_fractions_nest_and_are_seeded():
    items = list(range(1000))
    small, large = take_fraction(items, 0.125, seed=3), take_fraction(items, 0.25, seed=3)
    assert len(small) == 125 and len(large) == 250 and set(small) <= set(large)
    assert take_fraction(items, 0.25, seed=3) == large
    assert take_fraction(items, 0.25, seed=4) != large
    assert take_fraction(items, 1.0, seed=1) == items
    with pytest.raises(DataError):
        take_fraction(items, 0.0, seed=1)
    rest, out = hold_out(items, 0.1, seed=0)
    assert len(out) == 100 and len(rest) == 900


def _release(tmp_path, inputs: list[str], completions: list | str | None):
    folder = tmp_path / "svamp"
    (folder / "llm").mkdir(parents=True)
    (folder / "svamp_train.json").write_text("\n".join(inputs) + "\n")
    if completions is not None:
        text = completions if isinstance(completions, str) else json.dumps(completions)
        (folder / "llm" / "train_CoT_0.json").write_text(text)
    return get_task("svamp", tmp_path)


GOOD = '{"input": "a\\nb?", "label": "( 1.0 + 1.0 )"}'


def test_malformed_json_line_names_file_and_line(tmp_path):
    task = _release(tmp_path, [GOOD, '{"input": "x", "label": '], None)
    with pytest.raises(DataError, match=r"svamp_train\.json:2: malformed JSON"):
        task.load("train")


def test_missing_field_names_file_line_and_field(tmp_path):
    task = _release(tmp_path, [GOOD, '{"input": "x"}'], None)
    with pytest.raises(DataError, match=r"svamp_train\.json:2: missing field 'label'"):
        task.load("train")


def test_missing_file(tmp_path):
    (tmp_path / "svamp").mkdir()
    with pytest.raises(DataError, match=r"svamp_train\.json: file not found"):
        get_task("svamp", tmp_path).load("train")


def test_count_mismatch_between_inputs_and_completions(tmp_path):
    task = _release(tmp_path, [GOOD, GOOD], ["x. The answer is (1 + 1)."])
    with pytest.raises(DataError, match=r"1 teacher completions .* but 2 inputs"):
        task.load("train")


def test_malformed_teacher_file(tmp_path):
    task = _release(tmp_path, [GOOD], '["x", ')
    with pytest.raises(DataError, match=r"train_CoT_0\.json:1: malformed JSON"):
        task.load("train")
    task = _release(tmp_path / "b", [GOOD], [3])
    with pytest.raises(DataError, match=r"item 0 should be a string"):
        task.load("train")


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    _release(tmp_path, [GOOD, "{oops"], None)
    assert main(["data", "stats", "--data-dir", str(tmp_path), "--task", "svamp"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "svamp_train.json:2" in err and "Traceback" not in err


def test_jsonl_task(tmp_path):
    rows = [{"id": f"q{i}", "input": f"What is {i}+{i}?", "label": str(2 * i),
             "completion": f"{i} plus {i} is {2 * i}. So the answer is {2 * i}."} for i in range(20)]
    rows[3]["completion"] = "I do not know."
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "test.jsonl").write_text(json.dumps({"input": "What is 5+5?", "label": "10"}))
    task = get_task(f"jsonl:{tmp_path}:numeric")
    assert task.scorer == "numeric" and task.score("It is 10.0", "10")
    train, valid = task.protocol_split("train"), task.protocol_split("valid")
    assert len(train) == 18 and len(valid) == 2
    loaded = {e.id: e for e in task.load("train")}
    assert loaded["q3"].parse_error and loaded["q3"].rationale is None
    assert loaded["q4"].rationale == "4 plus 4 is 8." and loaded["q4"].teacher_label == "8"
    assert task.protocol_split("test")[0].label == "10"
    with pytest.raises(DataError, match="unknown scorer"):
        get_task(f"jsonl:{tmp_path}:bogus")
