"""`stepdistill train`: Distilling step-by-step and its baselines, on the Hugging Face Trainer.

Read top to bottom: settings, data, student, features, trainer (the two-task loss lives in loss.py and
is called from `compute_loss`), train with validation-based checkpoint selection, test once, save.
The Trainer brings multi-GPU (torchrun / accelerate launch: DDP, FSDP, DeepSpeed), gradient
accumulation, mixed precision, TensorBoard logs and resumable checkpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..cliargs import option
from ..errors import DataError
from ..jsonio import read_json, write_json, write_jsonl
from ..tasks import get_task
from .features import METHODS

RUN_FILE = "run.json"


@dataclass
class TrainSettings:
    task: str = option("svamp", "task: cqa, svamp, anli1, esnli or jsonl:PATH[:SCORER]")
    method: str = option("dss", "standard (x->y), dss (two tasks), single (x -> rationale then label)", choices=METHODS)
    labels: str = option("gold", "train on gold labels or the teacher's labels (the unlabeled setting)",
                         choices=("gold", "teacher"))
    student: str = option("smollm2", "hub id, local folder, gguf:PATH, smollm2 (embedded), tiny-t5 or tiny-llama")
    out: str = option("", "run folder (created); holds model/, run.json, predictions and logs", required=True)
    data_dir: str | None = option(None, "the release's datasets/ folder (default $STEPDISTILL_DATA, ./datasets)")
    rationales: str | None = option(None, "a `stepdistill extract` output folder: its rationales and teacher labels "
                                           "(default: the released completions)")
    fraction: float = option(1.0, "fraction of the training split to use, a seeded subset (nested across sizes)")
    seed: int = option(0, "seed for the data subset, shuffling and initialisation")
    alpha: float = option(0.5, "dss: loss = alpha * L_label + (1 - alpha) * L_rationale")
    alpha_schedule: str = option("constant", "dss: constant alpha, or linear (the rationale weight 1 - alpha "
                                             "decays to 0 over training)", choices=("constant", "linear"))
    epochs: float = option(5.0, "training epochs (ignored when --max-steps > 0)")
    max_steps: int = option(-1, "optimizer steps; overrides --epochs when > 0")
    batch_size: int = option(8, "examples per device per step (dss: each brings a label and a rationale row)")
    grad_accum: int = option(1, "gradient accumulation steps")
    lr: float = option(1e-4, "peak learning rate (AdamW, linear decay)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup: float = option(0.0, "warm-up: a fraction of the steps (< 1) or a number of steps")
    max_source_len: int = option(512, "longest input in tokens (longer inputs keep their end)")
    max_target_len: int = option(256, "longest target in tokens (rationales are cut there)")
    label_max_new_tokens: int = option(48, "tokens generated for a label at evaluation (single: --max-target-len)")
    eval_steps: int = option(0, "evaluate validation accuracy every N steps (0: once an epoch); the best is kept")
    eval_limit: int = option(0, "evaluate on at most N validation examples (0: all)")
    eval_batch_size: int = option(32, "examples per generation batch")
    test: bool = option(True, "evaluate the chosen checkpoint on the test split once, at the end")
    test_each_eval: bool = option(False, "analysis only: also score test at every evaluation, written to "
                                         "checkpoint_scores.jsonl to measure selection noise (never used to choose)")
    attn: str = option("auto", "attention kernel: auto (eager on CPU, the model's default on GPU), eager, sdpa",
                       choices=("auto", "eager", "sdpa", "flash_attention_2"))
    lora: bool = option(False, "train LoRA adapters (peft) instead of all weights; merged into the saved model")
    lora_r: int = option(16, "LoRA rank")
    bf16: bool = option(False, "bf16 autocast (on a modern CPU about 1.7x faster than fp32)")
    resume: bool = option(False, "continue a run killed mid-way from its last checkpoint")
    logging_steps: int = option(10, "log both loss parts every N steps")
    save_total_limit: int = option(2, "checkpoints kept on disk (the best one always stays)")
    progress: bool = option(True, "show progress bars")

    def __post_init__(self):
        if not self.out:
            raise DataError("train needs --out (the run folder)")
        if not 0.0 <= self.alpha <= 1.0:
            raise DataError(f"--alpha must be in [0, 1], got {self.alpha}")
        if not 0.0 < self.fraction <= 1.0:
            raise DataError(f"--fraction must be in (0, 1], got {self.fraction}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_hashes(task, settings: TrainSettings) -> dict[str, str]:
    """sha256 of every file the run read: inputs, and the released completions or the extracted rationales."""
    files = [task.input_path(s) for s in task.release_splits]
    if settings.rationales:
        files.append(Path(settings.rationales) / "rationales.jsonl")
    else:
        files += [f for split in task.release_splits for f in task.teacher_files(split)]
    return {str(p): file_sha256(p) for p in files if p.is_file()}


def library_versions() -> dict[str, str]:
    import accelerate, datasets, peft, torch, transformers  # noqa: E401
    from .. import __version__
    return {"stepdistill": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "accelerate": accelerate.__version__, "peft": peft.__version__, "datasets": datasets.__version__}


def build_dataset(train_examples, settings: TrainSettings, encoder):
    """One row per example with both tasks' ids; `length` lets the sampler group similar lengths."""
    import datasets

    from .features import task_texts
    columns = {k: [] for k in ("label_input_ids", "label_labels", "rationale_input_ids", "rationale_labels", "length")}
    for t in train_examples:
        texts = task_texts(t.example, settings.method, t.label, t.rationale)
        label_ids, label_labels = encoder.encode(*texts.label)
        rat_ids, rat_labels = encoder.encode(*texts.rationale) if texts.rationale else ([], [])
        columns["label_input_ids"].append(label_ids)
        columns["label_labels"].append(label_labels)
        columns["rationale_input_ids"].append(rat_ids)
        columns["rationale_labels"].append(rat_labels)
        targets = len(label_labels) + len(rat_labels) if encoder.is_seq2seq else 0  # decoder tokens
        columns["length"].append(len(label_ids) + len(rat_ids) + targets)
    return datasets.Dataset.from_dict(columns)


def count_tokens(dataset, is_seq2seq: bool) -> int:
    """Input + target tokens of one pass over the data (padding excluded): the unit of throughput."""
    total = 0
    for key in ("label", "rationale"):
        ids, labels = dataset[f"{key}_input_ids"], dataset[f"{key}_labels"]
        total += sum(len(x) for x in ids) + (sum(len(y) for y in labels) if is_seq2seq else 0)
    return total


def make_trainer_class():
    """Defined lazily so that importing this module does not import transformers."""
    from transformers import Trainer, TrainerCallback

    from .loss import two_task_loss

    class TwoTaskTrainer(Trainer):
        """Trainer whose loss is the two-task objective, with both parts logged, and whose evaluation is
        label-only generation accuracy on validation (what checkpoint selection uses)."""

        def __init__(self, *args, alpha: float, alpha_schedule: str, is_seq2seq: bool, evaluate_fn, **kwargs):
            super().__init__(*args, **kwargs)
            self.alpha, self.is_seq2seq, self.evaluate_fn = alpha, is_seq2seq, evaluate_fn
            self.alpha_schedule = alpha_schedule
            self.model_accepts_loss_kwargs = False  # our loss is already a mean; let Trainer scale for accumulation
            self._parts: dict[str, list[float]] = {"label_loss": [], "rationale_loss": []}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, label_loss, rationale_loss = two_task_loss(model, inputs, self.is_seq2seq, self.current_alpha())
            self._parts["label_loss"].append(label_loss.item())
            if rationale_loss is not None:
                self._parts["rationale_loss"].append(rationale_loss.item())
            return (loss, None) if return_outputs else loss

        def current_alpha(self) -> float:
            """linear: the rationale weight (1 - alpha) falls to 0 at the last step."""
            if self.alpha_schedule == "constant" or self.alpha >= 1.0:
                return self.alpha
            progress = self.state.global_step / max(self.state.max_steps, 1)
            return 1.0 - (1.0 - self.alpha) * (1.0 - progress)

        def log(self, logs, start_time=None):
            if "loss" in logs:
                logs["alpha"] = round(self.current_alpha(), 4)
                for name, values in self._parts.items():
                    if values:
                        logs[name] = round(sum(values) / len(values), 4)
                    values.clear()
            super().log(logs, start_time)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            model = self.accelerator.unwrap_model(self.model)
            metrics = {f"{metric_key_prefix}_accuracy": self.evaluate_fn(model)}  # eval_dataset: ignored, see evaluate_fn
            model.train()
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    class EvaluateAtLastStep(TrainerCallback):
        """The last step is always evaluated and saved, so it can be chosen too."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_evaluate = True
                control.should_save = True
            return control

    return TwoTaskTrainer, EvaluateAtLastStep


def run_train(settings: TrainSettings) -> dict:
    import torch
    from transformers import TrainingArguments

    from .features import Encoder, TwoTaskCollator
    from .infer import predict, score_predictions
    from .models import Student, load_student, set_attention

    out = Path(settings.out)
    checkpoints = out / "checkpoints"
    if checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*")) and not settings.resume:
        raise DataError(f"{out}: holds checkpoints of an earlier run; pass --resume to continue it, "
                        "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    # -- data -------------------------------------------------------------------------------------
    from .data import training_examples
    task = get_task(settings.task, settings.data_dir)
    train_examples, data_report = training_examples(task, settings.labels, settings.fraction, settings.seed,
                                                    settings.rationales)
    if not train_examples:
        raise DataError(f"no training examples left for {settings.task} (see the data report: {data_report})")
    valid = task.protocol_split("valid", with_teacher=False)
    if settings.eval_limit:
        valid = valid[: settings.eval_limit]

    # -- student and features ---------------------------------------------------------------------
    student = load_student(settings.student, seed=settings.seed)
    attention = set_attention(student.model, settings.attn)
    if settings.lora:
        student.model = _with_lora(student, settings.lora_r)
    encoder = Encoder(student.tokenizer, student.is_seq2seq, settings.max_source_len, settings.max_target_len)
    dataset = build_dataset(train_examples, settings, encoder)
    label_tokens = settings.max_target_len if settings.method == "single" else settings.label_max_new_tokens

    valid_rows_by_step: dict[int, list[dict]] = {}  # so the chosen checkpoint's predictions need no re-run

    def evaluate_fn(model) -> float:
        rows = predict(Student(model, student.tokenizer, student.is_seq2seq, student.source), valid,
                       settings.method, label_tokens, settings.eval_batch_size, bf16=settings.bf16,
                       progress=settings.progress)
        accuracy = score_predictions(task, valid, rows)
        valid_rows_by_step[trainer.state.global_step] = rows
        if settings.test_each_eval:
            record_checkpoint_score(out, task, trainer.state, accuracy, model, student, settings, label_tokens)
        return accuracy

    # -- trainer ------------------------------------------------------------------------------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = math.ceil(len(dataset) / (settings.batch_size * settings.grad_accum * world))
    total_steps = settings.max_steps if settings.max_steps > 0 else math.ceil(steps_per_epoch * settings.epochs)
    eval_steps = max(1, min(settings.eval_steps or steps_per_epoch, total_steps))
    args = TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum, learning_rate=settings.lr,
        weight_decay=settings.weight_decay, warmup_steps=settings.warmup, lr_scheduler_type="linear",
        num_train_epochs=settings.epochs, max_steps=total_steps, bf16=settings.bf16,
        use_cpu=not torch.cuda.is_available(), logging_steps=settings.logging_steps, logging_first_step=True,
        eval_strategy="steps", eval_steps=eval_steps, save_strategy="steps", save_steps=eval_steps,
        save_total_limit=settings.save_total_limit, load_best_model_at_end=True,
        metric_for_best_model="accuracy", greater_is_better=True, seed=settings.seed, data_seed=settings.seed,
        remove_unused_columns=False, train_sampling_strategy="group_by_length", length_column_name="length",
        report_to=["tensorboard"], disable_tqdm=not settings.progress, dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )
    TwoTaskTrainer, EvaluateAtLastStep = make_trainer_class()
    trainer = TwoTaskTrainer(model=student.model, args=args, train_dataset=dataset, eval_dataset=valid,
                             data_collator=TwoTaskCollator(student.tokenizer.pad_token_id, student.is_seq2seq),
                             alpha=settings.alpha if settings.method == "dss" else 1.0,
                             alpha_schedule=settings.alpha_schedule,
                             is_seq2seq=student.is_seq2seq, evaluate_fn=evaluate_fn,
                             callbacks=[EvaluateAtLastStep()])

    # -- train, choosing the checkpoint on validation ------------------------------------------------
    train_start = time.time()
    last = max((_step_of(str(p)) for p in checkpoints.glob("checkpoint-*")), default=None) if settings.resume else None
    result = trainer.train(resume_from_checkpoint=True if last is not None else None)
    train_seconds = time.time() - train_start
    state = trainer.state
    best_step = _step_of(state.best_model_checkpoint)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if settings.lora:
        model = model.merge_and_unload()
    final = Student(model, student.tokenizer, student.is_seq2seq, student.source)
    record_rank(out, trainer, state)
    if not trainer.is_world_process_zero():
        return {}

    # -- the chosen checkpoint: validation predictions, then test once --------------------------------
    valid_rows = valid_rows_by_step.get(best_step)  # absent when that evaluation ran before a resume
    if valid_rows is None:
        valid_rows = predict(final, valid, settings.method, label_tokens, settings.eval_batch_size,
                             bf16=settings.bf16, progress=settings.progress)
    valid_accuracy = score_predictions(task, valid, valid_rows)
    write_jsonl(out / "predictions_valid.jsonl", valid_rows)
    test_accuracy = None
    if settings.test:
        test = task.protocol_split("test", with_teacher=False)
        test_rows = predict(final, test, settings.method, label_tokens, settings.eval_batch_size,
                            bf16=settings.bf16, progress=settings.progress)
        test_accuracy = score_predictions(task, test, test_rows)
        write_jsonl(out / "predictions_test.jsonl", test_rows)

    model.save_pretrained(out / "model")
    if not student.is_seq2seq:  # chat requests become the label prompt (vLLM, apply_chat_template; deploy/template.py)
        from ..deploy.template import training_chat_template
        student.tokenizer.chat_template = training_chat_template(student.tokenizer)
    student.tokenizer.save_pretrained(out / "model")
    tokens_per_epoch = count_tokens(dataset, student.is_seq2seq)
    record = {
        "status": "done",
        "settings": dataclasses.asdict(settings),
        "task": task.name, "method": settings.method, "labels": settings.labels, "student": student.source,
        "student_parameters": sum(p.numel() for p in model.parameters()),
        "is_seq2seq": student.is_seq2seq, "attention": attention, "protocol": task.protocol,
        "fraction": settings.fraction, "seed": settings.seed, "alpha": settings.alpha,
        "data": dataclasses.asdict(data_report),
        "sizes": {"train": len(dataset), "valid": len(valid), "test": len(test) if settings.test else None,
                  "rationale_rows": sum(1 for ids in dataset["rationale_input_ids"] if ids)},
        "rationale_skipped": data_report.no_rationale,
        "data_hashes": data_hashes(task, settings),
        "versions": library_versions(),
        "resumed_from_step": last,
        "steps": state.global_step, "epochs": round(state.epoch or 0, 3),
        "train_seconds": round(train_seconds, 1), "total_seconds": round(time.time() - started, 1),
        "train_tokens_per_second": round(tokens_per_epoch * (state.epoch or 0) / max(train_seconds, 1e-9), 1),
        "train_loss": round(result.training_loss, 4),
        "best_step": best_step, "best_valid_accuracy": state.best_metric,
        "valid_accuracy": valid_accuracy, "test_accuracy": test_accuracy,
        "log_history": state.log_history,
    }
    write_json(out / RUN_FILE, record)
    return record


def record_checkpoint_score(out: Path, task, state, valid_accuracy: float, model, student, settings,
                            label_tokens: int) -> None:
    """Analysis only: the test accuracy of every evaluated checkpoint, to measure what selection on a small
    validation split costs. Checkpoints are still chosen on validation alone."""
    from .infer import predict, score_predictions
    from .models import Student
    test = task.protocol_split("test", with_teacher=False)
    rows = predict(Student(model, student.tokenizer, student.is_seq2seq, student.source), test, settings.method,
                   label_tokens, settings.eval_batch_size, bf16=settings.bf16, progress=settings.progress)
    score = {"step": state.global_step, "epoch": round(state.epoch or 0, 3), "valid_accuracy": valid_accuracy,
             "test_accuracy": score_predictions(task, test, rows)}
    with (out / "checkpoint_scores.jsonl").open("a") as f:
        f.write(json.dumps(score) + "\n")


def _with_lora(student, rank: int):
    from peft import LoraConfig, TaskType, get_peft_model
    task_type = TaskType.SEQ_2_SEQ_LM if student.is_seq2seq else TaskType.CAUSAL_LM
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type=task_type)
    return get_peft_model(student.model, config)


def _step_of(checkpoint: str | None) -> int | None:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None


def record_rank(out: Path, trainer, state) -> None:
    """Under several processes, each rank says where it ended and a checksum of its weights."""
    if trainer.args.world_size <= 1:
        return
    import torch
    model = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():
        checksum = float(sum(p.double().sum() for p in model.parameters()))
    write_json(out / f"rank{trainer.args.process_index}.json",
               {"rank": trainer.args.process_index, "world_size": trainer.args.world_size,
                "steps": state.global_step, "best_metric": state.best_metric, "param_checksum": checksum})


def load_run(folder: str | Path) -> dict:
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found (not a finished `stepdistill train` run)")
    return read_json(path)
