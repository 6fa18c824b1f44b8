"""Training on several rationales per input and on hinted ones: the rows built, and run.json's counts."""

import itertools
import json
import re

import pytest

from stepdistill.experiments.sample_task import write_sample_task
from stepdistill.scoring import evaluate_arithmetic
from stepdistill.student.data import training_examples
from stepdistill.student.dataset import write_rationale_sample
from stepdistill.student.train import TrainSettings, run_train
from stepdistill.tasks import get_task
from stepdistill.teacher.backends import FakeBackend
from stepdistill.teacher.extract import ExtractSettings, run_extract

TINY = dict(max_steps=2, batch_size=4, eval_limit=4, label_max_new_tokens=6, max_target_len=48,
            max_source_len=128, logging_steps=1, progress=False, eval_batch_size=8, test=False)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """40 generated problems, 3 samples each from a fake teacher that is always wrong on every fifth input
    and else on every fourth request; hinted requests are answered right except on every tenth input."""
    tmp = tmp_path_factory.mktemp("rationales")
    folder = write_sample_task(tmp / "task", n_train=40, n_valid=8, n_test=8)
    task = f"jsonl:{folder}:numeric"
    gold = {e.input: e.label for e in get_task(task).load("train")}
    counter = itertools.count()

    def answer(prompt):
        query = prompt.rsplit("\n\n", 1)[-1]
        question = query.rsplit("Q: ", 1)[1].split("\n")[0]
        right = int(gold[question])
        index = sorted(gold).index(question)
        if "\nHint:" in query:
            label = right + (1 if index % 10 == 0 else 0)
            a, b = map(int, re.findall(r"\d+", question)[:2])  # --hint-check: a right sum from the question's
            step = next(f"{a} {op} {b} = {right}" for op in "+-*/"   # numbers to the answer stays
                        if evaluate_arithmetic(f"{a} {op} {b}") == right)
            return f" Hinted reasoning: {step}. So the answer is {label}."
        i = next(counter)
        label = right + (1 if index % 5 == 0 or i % 4 == 0 else 0)
        return f" Sample reasoning {i}. So the answer is {label}."

    run_extract(ExtractSettings(task=task, split="train", out=str(tmp / "r"), progress=False, samples=3,
                                temperature=0.7, keep="correct", rationalize=True, prompt=str(folder / "prompt.yaml")),
                backend=FakeBackend(answer=answer))
    rows = [json.loads(line) for line in (tmp / "r" / "rationales.jsonl").read_text().splitlines()]
    return task, tmp / "r", rows


def expected(rows, ids, hinted, per_input):
    """The dss counts, from the extraction file: one label row per input, one rationale row per rationale used."""
    kept = {}
    for row in rows:
        if row["kept"] and row["id"] in ids and (hinted == "include" or not row.get("hinted")):
            kept.setdefault(row["id"], []).append(row)
    n = {i: len(r) if per_input == "all" else 1 for i, r in kept.items()}
    return {"rationale_rows": sum(n.values()), "label_rows": len(ids),
            "hinted_rows": sum(bool(r[0].get("hinted")) for r in kept.values()),  # hinted rows come alone
            "rows": len(ids) + sum(count - 1 for count in n.values())}


@pytest.mark.parametrize("hinted", ["include", "exclude"])
@pytest.mark.parametrize("per_input", ["1", "all"])
def test_rows_follow_the_extraction(extracted, hinted, per_input):
    task, folder, rows = extracted
    built, report = training_examples(get_task(task), "gold", 1.0, 0, str(folder), hinted, per_input)
    ids = {ex.id for ex in get_task(task).protocol_split("train")}
    want = expected(rows, ids, hinted, per_input)
    assert report.rows == len(built) == want["rows"]
    assert report.rationale_rows == sum(t.rationale is not None for t in built) == want["rationale_rows"]
    assert report.hinted_rows == sum(t.hinted for t in built) == want["hinted_rows"]
    assert (report.hinted_rows > 0) == (hinted == "include")
    assert report.used == len(ids) and report.no_rationale == len(ids) - len({t.example.id for t in built if t.rationale})
    label_inputs = [t.example.id for t in built if t.label_row]
    assert report.label_rows == len(label_inputs) == len(set(label_inputs)) == len(ids)  # each input once
    if per_input == "all":
        by_input = [t.example.id for t in built if t.rationale]
        assert max(by_input.count(i) for i in ids) == 3 and report.rows > len(ids)


@pytest.mark.parametrize("method", ["standard", "single"])
def test_all_rationales_follow_the_method(extracted, method):
    """single: every kept rationale is a full target of its own; standard trains no rationale, so no extra rows."""
    task, folder, rows = extracted
    built, report = training_examples(get_task(task), "gold", 1.0, 0, str(folder), "include", "all", method)
    ids = {ex.id for ex in get_task(task).protocol_split("train")}
    want = expected(rows, ids, "include", "all")
    assert report.rows == len(built) == (want["rows"] if method == "single" else len(ids))
    assert report.label_rows == report.rows and all(t.label_row for t in built)


@pytest.mark.parametrize("per_input", ["1", "all"])
def test_run_json_counts_match_the_data(extracted, tmp_path, per_input):
    task, folder, rows = extracted
    record = run_train(TrainSettings(task=task, rationales=str(folder), student="tiny-llama", out=str(tmp_path / "run"),
                                     rationales_per_input=per_input, hinted="exclude", **TINY))
    ids = {ex.id for ex in get_task(task).protocol_split("train")}
    want = expected(rows, ids, "exclude", per_input)
    assert record["settings"]["rationales_per_input"] == record["data"]["rationales_per_input"] == per_input
    assert record["settings"]["hinted"] == record["data"]["hinted"] == "exclude"
    assert record["sizes"]["train"] == record["data"]["rows"] == want["rows"]
    assert record["sizes"]["label_rows"] == record["data"]["label_rows"] == want["label_rows"] == len(ids)
    assert record["sizes"]["rationale_rows"] == record["data"]["rationale_rows"] == want["rationale_rows"]
    assert record["data"]["hinted_rows"] == 0 and record["data"]["hinted_excluded"] > 0
    assert (want["rows"] > len(ids)) == (per_input == "all")  # the extra rows are really there with `all`


def test_the_rationale_sample_tags_hinted_rows(extracted, tmp_path):
    task, folder, _ = extracted
    built, report = training_examples(get_task(task), "gold", 1.0, 0, str(folder), "include", "all")
    write_rationale_sample(tmp_path, built, size=2)
    sample = [json.loads(line) for line in (tmp_path / "rationales_sample.jsonl").read_text().splitlines()]
    hinted_ids = {t.example.id for t in built if t.hinted}
    assert [row["hinted"] for row in sample] == [False, False, True, True] and report.hinted_rows >= 2
    assert all((row["id"] in hinted_ids) == row["hinted"] and row["rationale"].startswith(
        "Hinted" if row["hinted"] else "Sample") for row in sample)
