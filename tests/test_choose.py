"""eval --answer choices: each choice's log-probability, batched with a shared source, against one row at a time."""

import json

import pytest
import torch

from stepdistill.cli import main
from stepdistill.student.choose import choice_logprobs, pick
from stepdistill.student.features import IGNORE, Encoder
from stepdistill.student.models import load_trained, tiny_student
from stepdistill.student.prompts import PREFIX, PromptFormat
from support.tiny_runs import save_run, tiny_llama_run

SOURCES = ["Where do you keep milk?\nAnswer Choices:\n(a) fridge\n(b) farm yard",
           "2 + 2?",
           "A much longer question, so that the batch is padded: which of these is a colour, if any at all?"]
CHOICES = [["fridge", "farm yard", "farm"], ["4", "four", "44", "x"], ["red", "a colour of the sky at noon"]]
CHAT = PromptFormat("chat", ("<|system|>\nAnswer.</s>\n<|user|>\n", "</s>\n<|assistant|>\n"),
                    ("<|system|>\nExplain.</s>\n<|user|>\n", "</s>\n<|assistant|>\n"), "", "\n")


def flat(rows: list[list[float]]) -> list[float]:
    return [score for row in rows for score in row]


def one_at_a_time(student, source: str, choice: str, prompts: PromptFormat) -> float:
    """The reference: the training row for (source, choice), unpadded, in one forward; sum of log p(target)."""
    encoder = Encoder(student.tokenizer, student.is_seq2seq, 512, 64, prompts)
    ids, labels = encoder.encode(prompts.label(source), choice)
    with torch.no_grad():
        if student.is_seq2seq:
            logits = student.model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).logits[0]
            targets = torch.tensor(labels)
        else:
            logits = student.model(input_ids=torch.tensor([ids])).logits[0, :-1]  # position t predicts t + 1
            targets = torch.tensor(labels[1:])
    logprobs = logits.log_softmax(-1)
    keep = targets != IGNORE
    return float(logprobs[keep].gather(-1, targets[keep][:, None]).sum())


@pytest.mark.parametrize("kind,prompts", [("tiny-llama", PREFIX), ("tiny-llama", CHAT), ("tiny-t5", PREFIX)])
def test_choice_logprobs_match_one_row_at_a_time(kind, prompts):
    student = tiny_student(kind, seed=3)
    if kind == "tiny-llama":
        with torch.no_grad():  # peaked logits, so a position or mask error shows as a large difference
            for parameter in student.model.parameters():
                if parameter.ndim == 2:
                    parameter.normal_(0.0, 0.15)
    got = choice_logprobs(student, SOURCES, CHOICES, batch_size=2, prompts=prompts, progress=False)
    expected = [[one_at_a_time(student, source, choice, prompts) for choice in row]
                for source, row in zip(SOURCES, CHOICES)]
    assert [len(row) for row in got] == [len(row) for row in CHOICES]
    assert flat(got) == pytest.approx(flat(expected), abs=2e-3)
    assert len({round(score, 3) for row in got for score in row}) > 5  # not all alike


def test_bos_adding_tokenizer_matches_too(tmp_path):
    student = load_trained(str(tiny_llama_run(tmp_path / "run", adds_bos=True) / "model"))
    got = choice_logprobs(student, SOURCES, CHOICES, batch_size=3, progress=False)
    expected = [[one_at_a_time(student, source, choice, PREFIX) for choice in row]
                for source, row in zip(SOURCES, CHOICES)]
    assert flat(got) == pytest.approx(flat(expected), abs=2e-3)


def test_pick_takes_the_likeliest_and_the_first_of_equals():
    assert pick(["a", "b", "c"], [-3.0, -1.0, -2.0]) == "b"
    assert pick(["a", "b"], [-1.0, -1.0]) == "a"
    assert pick([], []) is None


def test_eval_answer_choices_on_cqa(tmp_path, data_dir, capsys):
    run = tiny_llama_run(tmp_path / "run")
    out = tmp_path / "p.jsonl"
    assert main(["eval", "--model", str(run), "--task", "cqa", "--data-dir", str(data_dir), "--split", "test",
                 "--limit", "6", "--answer", "choices", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["answer"] == "choices" and result["n"] == 6
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for row in rows:
        assert len(row["choices"]) == 5 and len(row["choice_logprobs"]) == 5
        best = max(range(5), key=lambda i: row["choice_logprobs"][i])
        assert row["prediction"] == row["choices"][best]
        assert row["correct"] == (row["prediction"] == row["gold"])
    assert result["accuracy"] == pytest.approx(100 * sum(row["correct"] for row in rows) / 6, abs=0.01)


def test_eval_answer_choices_refuses_open_answers_and_single_runs(tmp_path, data_dir, capsys):
    run = tiny_llama_run(tmp_path / "run")
    assert main(["eval", "--model", str(run), "--task", "svamp", "--data-dir", str(data_dir), "--limit", "2",
                 "--answer", "choices"]) == 2
    assert "task svamp lists no answer choices" in capsys.readouterr().err
    student = tiny_student("tiny-llama")
    single = save_run(tmp_path / "single", student.model, student.tokenizer, method="single")
    record = json.loads((single / "run.json").read_text())
    record["settings"]["method"] = "single"
    (single / "run.json").write_text(json.dumps(record))
    assert main(["eval", "--model", str(single), "--task", "cqa", "--data-dir", str(data_dir), "--limit", "2",
                 "--answer", "choices"]) == 2
    assert "a single-task run" in capsys.readouterr().err


def test_answer_choices_per_task(data_dir):
    from stepdistill.tasks import get_task

    cqa = get_task("cqa", data_dir)
    example = cqa.protocol_split("test", with_teacher=False)[0]
    assert cqa.answer_choices(example) == example.fields["choices"] and len(example.fields["choices"]) == 5
    assert example.label in cqa.answer_choices(example)
    anli = get_task("anli1", data_dir)
    assert anli.answer_choices(anli.protocol_split("test", with_teacher=False)[0]) == [
        "entailment", "neutral", "contradiction"]
    svamp = get_task("svamp", data_dir)
    assert svamp.answer_choices(svamp.protocol_split("test", with_teacher=False)[0]) is None


def test_predict_answers_by_choosing(tmp_path, capsys):
    run = tiny_llama_run(tmp_path / "run")
    student = load_trained(str(run / "model"))
    expected = choice_logprobs(student, SOURCES[:2], CHOICES[:2], progress=False)
    assert main(["predict", "--model", str(run), SOURCES[0], *[f"--choice={c}" for c in CHOICES[0]]]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["prediction"] == pick(CHOICES[0], expected[0])
    assert line["choice_logprobs"] == pytest.approx(expected[0], abs=1e-3)
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"input": s, "choices": c}) + "\n" for s, c in zip(SOURCES[:2], CHOICES[:2])))
    assert main(["predict", "--model", str(run), "--input", str(inputs), "--answer", "choices"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [row["prediction"] for row in lines] == [pick(c, e) for c, e in zip(CHOICES[:2], expected)]
    inputs.write_text(json.dumps({"input": "a", "choices": ["x"]}) + "\n" + json.dumps({"input": "b"}) + "\n")
    assert main(["predict", "--model", str(run), "--input", str(inputs), "--answer", "choices"]) == 2
    assert f"{inputs}:2: --answer choices needs a field 'choices'" in capsys.readouterr().err
    assert main(["predict", "--model", str(run), "--answer", "choices", "2 + 2?"]) == 2
    assert "needs its choices: --choice A" in capsys.readouterr().err
