"""The extract stage end to end with a fake teacher: files, manifest, cache, keep rules, budget, failures."""

import asyncio
import json

import pytest

from stepdistill.cli import main
from stepdistill.errors import DataError
from stepdistill.teacher.backends import FakeBackend, FatalError, RequestFailed, TransientError
from stepdistill.teacher.extract import ExtractSettings, run_extract
from stepdistill.teacher.output import NOT_SENT, read_rationales

ROW_FIELDS = {"id", "input", "label", "rationale", "teacher_label", "completion", "reasoning", "parse_error",
              "correct", "kept", "sample", "request_error"}
MANIFEST_FIELDS = {"teacher", "model", "prompt_hash", "inputs", "requests_sent", "cache_hits", "failed", "parsed",
                   "kept", "teacher_accuracy", "tokens", "seconds"}


def settings(tmp_path, **kw):
    base = dict(task="svamp", split="test", limit=6, out=str(tmp_path / "out"), progress=False, backoff=0.001)
    return ExtractSettings(**{**base, **kw})


def rows(out):
    return [json.loads(line) for line in (out / "rationales.jsonl").read_text().splitlines()]


@pytest.fixture
def own_task(tmp_path):
    """Ten additions of our own, with gold labels, and a YAML prompt for them."""
    folder = tmp_path / "own"
    folder.mkdir()
    lines = [{"id": f"q{i}", "input": f"What is {i} plus {i}?", "label": str(2 * i)} for i in range(10)]
    (folder / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    prompt = tmp_path / "prompt.yaml"
    prompt.write_text("input: \"Q: {{ question }}\\nA:\"\nstop: \"\\n\\nQ:\"\n"
                      "exemplars:\n  - question: What is 1 plus 1?\n    rationale: One and one make two.\n    label: '2'\n")
    return f"jsonl:{folder}", str(prompt)


def adder(right=lambda i: True, parsable=lambda i: True):
    """A fake teacher for own_task: the right sum when right(i), else one more; no answer cue unless parsable(i)."""
    def answer(prompt):
        i = int(prompt.rsplit("What is ", 1)[1].split(" ")[0])
        total = 2 * i if right(i) else 2 * i + 1
        return f" {i} and {i} make {total}." + (f" So the answer is {total}." if parsable(i) else "")
    return answer


def test_writes_one_row_per_input_and_a_complete_manifest(tmp_path, data_dir):
    fake = FakeBackend(answer=" Add them. The answer is (10 * 45).")
    manifest = run_extract(settings(tmp_path, data_dir=str(data_dir)), backend=fake)
    out = tmp_path / "out"
    got = rows(out)
    assert len(got) == 6 and all(set(r) == ROW_FIELDS for r in got)
    assert [r["id"] for r in got] == [f"svamp-test-{i}" for i in range(6)]
    first = got[0]
    assert first["rationale"] == "Add them." and first["teacher_label"] == "(10 * 45)"
    assert first["correct"] is True and first["kept"] is True and first["parse_error"] is None
    assert sum(r["correct"] for r in got) == 1  # only input 0 is 10 * 45
    assert MANIFEST_FIELDS <= set(manifest)
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(manifest, default=str))
    assert manifest["inputs"] == 6 and manifest["requests_sent"] == 6 and manifest["cache_hits"] == 0
    assert manifest["teacher_accuracy"] == pytest.approx(100 / 6, abs=0.01)
    assert manifest["tokens"]["total"] > 0 and len(manifest["prompt_hash"]) == 16
    assert (out / "manifest.json").stat().st_mtime_ns >= (out / "rationales.jsonl").stat().st_mtime_ns
    assert "Q: Paige was helping" in fake.calls[0] and fake.calls[0].endswith("How many seeds did they plant?\nA:")


def test_identical_rerun_sends_nothing_and_writes_the_same(tmp_path, data_dir):
    run_extract(settings(tmp_path, data_dir=str(data_dir)), backend=FakeBackend())
    before = (tmp_path / "out" / "rationales.jsonl").read_text()
    again = FakeBackend()
    manifest = run_extract(settings(tmp_path, data_dir=str(data_dir)), backend=again)
    assert again.calls == [] and manifest["requests_sent"] == 0 and manifest["cache_hits"] == 6
    assert manifest["tokens"]["total"] == 0 and manifest["tokens_all_runs"]["answers"] == 6
    assert (tmp_path / "out" / "rationales.jsonl").read_text() == before
    changed = FakeBackend()  # a different sampling parameter is a different request
    run_extract(settings(tmp_path, data_dir=str(data_dir), max_tokens=99), backend=changed)
    assert len(changed.calls) == 6


def test_failed_requests_are_recorded_and_only_they_are_retried_later(tmp_path, data_dir):
    flaky = FakeBackend(answer=" The answer is (1 + 1).",
                        script=[RequestFailed("HTTP 400: too long"), TransientError("HTTP 503")])
    manifest = run_extract(settings(tmp_path, data_dir=str(data_dir), retries=0, concurrency=1), backend=flaky)
    assert manifest["failed"] == 2 and manifest["dropped"] == {"request failed": 2}
    failed = [r for r in rows(tmp_path / "out") if r["request_error"]]
    assert [r["id"] for r in failed] == ["svamp-test-0", "svamp-test-1"]
    assert "too long" in failed[0]["request_error"] and failed[0]["kept"] is False and failed[0]["completion"] is None
    second = FakeBackend()
    manifest = run_extract(settings(tmp_path, data_dir=str(data_dir)), backend=second)
    assert len(second.calls) == 2 and manifest["failed"] == 0 and manifest["cache_hits"] == 4


def test_transient_errors_are_retried_until_answered(tmp_path, data_dir):
    fake = FakeBackend(script=[TransientError("HTTP 429", retry_after=0.01), TransientError("HTTP 500"),
                               asyncio.TimeoutError()])
    manifest = run_extract(settings(tmp_path, data_dir=str(data_dir), concurrency=1), backend=fake)
    assert manifest["retries"] == 3 and manifest["requests_sent"] == 9 and manifest["failed"] == 0
    assert all(r["completion"] for r in rows(tmp_path / "out"))


def test_a_fatal_error_stops_the_run_without_a_manifest(tmp_path, data_dir):
    fake = FakeBackend(script=[None, FatalError("HTTP 401: bad key")])
    with pytest.raises(DataError, match="401"):
        run_extract(settings(tmp_path, data_dir=str(data_dir), concurrency=1), backend=fake)
    assert not (tmp_path / "out" / "manifest.json").exists()
    with pytest.raises(DataError, match="did not finish"):
        read_rationales(tmp_path / "out")


def test_concurrency_is_bounded(tmp_path, data_dir):
    class Counting(FakeBackend):
        in_flight = peak = 0

        async def complete(self, prompt, params, example_id=""):
            Counting.in_flight += 1
            Counting.peak = max(Counting.peak, Counting.in_flight)
            try:
                return await super().complete(prompt, params, example_id)
            finally:
                Counting.in_flight -= 1

    run_extract(settings(tmp_path, data_dir=str(data_dir), limit=40, concurrency=5), backend=Counting(delay=0.01))
    assert Counting.peak == 5


@pytest.mark.parametrize("keep, kept, dropped", [
    ("all", 10, {}),
    ("parsed", 8, {"unparsable": 2}),
    ("correct", 4, {"unparsable": 2, "teacher label differs from gold": 4}),
])
def test_keep_rules(tmp_path, own_task, keep, kept, dropped):
    task, prompt = own_task
    fake = FakeBackend(answer=adder(right=lambda i: i < 5, parsable=lambda i: i not in (3, 7)))
    manifest = run_extract(settings(tmp_path, task=task, split="train", limit=None, prompt=prompt, keep=keep), backend=fake)
    assert manifest["kept"] == kept and manifest["dropped"] == dropped
    assert manifest["parsed"] == 8 and manifest["teacher_accuracy"] == 40.0  # q0,1,2,4 right of 10
    assert len(read_rationales(tmp_path / "out")) == kept


def test_several_samples_keep_the_majority_answer(tmp_path, own_task):
    task, prompt = own_task
    answers = iter([True, False, True] * 10)  # per input: samples 0 and 2 right, sample 1 wrong
    fake = FakeBackend(answer=lambda p: adder(right=lambda i: next(answers))(p))
    manifest = run_extract(settings(tmp_path, task=task, split="train", limit=None, prompt=prompt, samples=3,
                                    temperature=0.7, concurrency=1), backend=fake)
    assert len(fake.calls) == 30 and manifest["rows"] == 30
    assert manifest["kept"] == 20 and manifest["dropped"] == {"not the majority answer": 10}
    all_samples = read_rationales(tmp_path / "out", all_samples=True)
    assert [r["sample"] for r in all_samples["q4"]] == [0, 2]
    assert read_rationales(tmp_path / "out")["q4"]["teacher_label"] == "8"


def test_token_budget_stops_cleanly_and_a_later_run_finishes(tmp_path, own_task):
    task, prompt = own_task
    s = settings(tmp_path, task=task, split="train", limit=None, prompt=prompt, max_tokens=20,
                 max_tokens_budget=150, concurrency=2)
    manifest = run_extract(s, backend=FakeBackend(answer=adder()))
    assert manifest["stopped_by_budget"] and 0 < manifest["answered"] < 10
    assert manifest["tokens"]["total"] <= 150
    assert manifest["not_sent"] == 10 - manifest["answered"] and manifest["dropped"] == {NOT_SENT: manifest["not_sent"]}
    unsent = [r for r in rows(tmp_path / "out") if r["request_error"] == NOT_SENT]
    assert len(unsent) == manifest["not_sent"] and not any(r["kept"] for r in unsent)
    rest = FakeBackend(answer=adder())
    final = run_extract(settings(tmp_path, task=task, split="train", limit=None, prompt=prompt, max_tokens=20), backend=rest)
    assert len(rest.calls) == manifest["not_sent"] and final["kept"] == 10


def test_settings_refuse_nonsense(tmp_path, own_task, data_dir):
    with pytest.raises(DataError, match="temperature"):
        settings(tmp_path, samples=3)
    with pytest.raises(DataError, match="keep"):
        settings(tmp_path, keep="best")
    folder = tmp_path / "nolabels"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"input": "What is 1 plus 1?"}\n')
    with pytest.raises(DataError, match="gold labels"):
        run_extract(settings(tmp_path, task=f"jsonl:{folder}", split="train", prompt=own_task[1], keep="correct"),
                    backend=FakeBackend())
    (folder / "train.jsonl").write_text('{"id": "a", "input": "x"}\n{"id": "a", "input": "y"}\n')
    with pytest.raises(DataError, match="'a' appears more than once"):
        run_extract(settings(tmp_path, task=f"jsonl:{folder}", split="train", prompt=own_task[1]), backend=FakeBackend())
    with pytest.raises(DataError, match="unknown teacher"):
        run_extract(settings(tmp_path, data_dir=str(data_dir), teacher="gpt4"))
    with pytest.raises(DataError, match="no split 'train'"):
        run_extract(settings(tmp_path, task="anli1", split="train", data_dir=str(data_dir)), backend=FakeBackend())


def test_replay_runs_the_released_completions_through_the_same_pipeline(tmp_path, data_dir):
    manifest = run_extract(settings(tmp_path, data_dir=str(data_dir), limit=None, teacher="replay"))
    assert manifest["inputs"] == 200 and manifest["teacher_accuracy"] == 74.0  # datasets/README.md
    assert manifest["unparsable"] == 2 and manifest["kept"] == 198 and manifest["prompt_hash"] is None
    assert not (tmp_path / "out" / "cache.sqlite").exists()
    rationales = read_rationales(tmp_path / "out")
    assert len(rationales) == 198 and rationales["svamp-test-0"]["teacher_label"] == "(10 * 45)"


def test_cli(tmp_path, data_dir, capsys):
    out = tmp_path / "cli"
    rc = main(["extract", "--task", "anli1", "--split", "test", "--teacher", "replay", "--limit", "20",
               "--data-dir", str(data_dir), "--out", str(out), "--keep", "correct", "--no-progress"])
    assert rc == 0 and (out / "rationales.jsonl").is_file()
    printed = capsys.readouterr().out
    assert "20 inputs" in printed and "teacher accuracy" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["keep"] == "correct" and manifest["kept"] == sum(r["correct"] is True for r in rows(out))
    assert main(["extract", "--task", "svamp", "--teacher", "nope", "--data-dir", str(data_dir), "--out", str(out)]) == 2
