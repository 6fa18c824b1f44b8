"""`stepdistill train`: Distilling step-by-step and its baselines, on the Hugging Face Trainer.

`run_train` reads top to bottom: run folder, data, student, features, trainer (trainer.py: its
`compute_loss` calls the two-task loss of loss.py), train with validation-based checkpoint selection
(selection.py), test the chosen checkpoint once, save the model and run.json.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import torch
from transformers import TrainingArguments

from ..deploy.template import training_chat_template
from ..errors import DataError
from ..jsonio import write_json, write_jsonl
from ..provenance import hardware, library_versions
from ..tasks import get_task
from ..tasks.base import Example, Task
from .data import DataReport, TrainingExample, training_examples
from .dataset import build_dataset, count_tokens, data_hashes, truncation_record, write_rationale_sample
from .features import Encoder, TwoTaskCollator
from .guards import (check_input_format, check_rationales, check_student, check_test_split, warn_slow_bf16,
                     warn_small_validation, with_input_format)
from .infer import score_predictions
from .memory import limit_allocator_growth, release_free_memory
from .models import Student, load_student, set_attention
from .resume import prepare_run_folder, resume_checkpoint
from .runfile import RUN_FILE
from .selection import CheckpointEvaluator, selection_protocol, validation_examples, warn_if_no_checkpoint_scored
from .settings import TrainSettings
from .trainer import EvaluateAtLastStep, TwoTaskTrainer

TRAINING_LIBRARIES = ("torch", "transformers", "accelerate", "peft", "datasets")


def run_train(settings: TrainSettings) -> dict:
    """Train, choose the checkpoint on validation, test it once; returns run.json's record ({} off rank 0)."""
    started = time.time()
    check_student(settings.student)
    prompts = check_input_format(settings.input_format, settings.student)
    settings = with_input_format(settings, prompts)  # auto resolved: what settings.json and run.json keep
    warn_slow_bf16(settings.bf16)
    limit_allocator_growth()  # memory.py: without it a SmolLM2 run's RSS grew far past its tensors
    out = prepare_run_folder(settings)
    task, train_examples, data_report, valid = load_data(settings)
    student = load_student(settings.student, seed=settings.seed)
    attention = set_attention(student.model, settings.attn)
    if settings.lora:
        student.model = with_lora(student, settings.lora_r)
    encoder = Encoder(student.tokenizer, student.is_seq2seq, settings.max_source_len, settings.max_target_len, prompts)
    dataset = build_dataset(train_examples, settings.method, encoder)
    evaluator = CheckpointEvaluator(task, valid, student, settings, out, prompts)
    trainer = make_trainer(settings, student, dataset, evaluator, out / "checkpoints")

    checkpoint = resume_checkpoint(out / "checkpoints") if settings.resume else None
    resumed_from = step_of(str(checkpoint)) if checkpoint else None
    train_start = time.time()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_seconds = time.time() - train_start
    free_training_state(trainer)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if settings.lora:
        model = model.merge_and_unload()
    record_rank(out, trainer)
    if not trainer.is_world_process_zero():
        return {}

    best_step = step_of(trainer.state.best_model_checkpoint)
    warning = warn_if_no_checkpoint_scored(trainer.state.log_history)
    scores = score_chosen_checkpoint(out, task, valid, model, evaluator, best_step)
    model.save_pretrained(out / "model")
    if not student.is_seq2seq:  # chat requests become the label prompt (vLLM, apply_chat_template; deploy/template.py)
        student.tokenizer.chat_template = training_chat_template(student.tokenizer, prompts)
    student.tokenizer.save_pretrained(out / "model")
    write_rationale_sample(out, train_examples)
    record = {
        "status": "done", "settings": dataclasses.asdict(settings), "prompt_format": prompts.record(),
        "task": task.name, "method": settings.method, "labels": settings.labels, "student": student.source,
        "student_parameters": sum(param.numel() for param in model.parameters()),
        "is_seq2seq": student.is_seq2seq, "attention": attention,
        "protocol": f"{task.protocol}; {selection_protocol(settings)}", "select_on": settings.selection_labels,
        "fraction": settings.fraction, "seed": settings.seed, "alpha": settings.effective_alpha,
        **data_record(task, settings, data_report, dataset, len(valid)),
        "versions": library_versions(*TRAINING_LIBRARIES), "hardware": hardware(),
        "resumed_from_step": resumed_from,
        **progress_record(trainer, result, dataset, student.is_seq2seq, train_seconds, started),
        "best_step": best_step, "best_valid_accuracy": trainer.state.best_metric, **scores,
        "log_history": trainer.state.log_history, "warnings": [warning] if warning else [],
    }
    write_json(out / RUN_FILE, record)
    return record


def load_data(settings: TrainSettings) -> tuple[Task, list[TrainingExample], DataReport, list[Example]]:
    """The task, the training examples (with the label and rationale each trains on), and validation (with the
    labels checkpoint selection scores against)."""
    task = get_task(settings.task, settings.data_dir)
    if settings.rationales:
        check_rationales(settings.rationales, task.protocol_split("train", with_teacher=False))
    if settings.test:
        check_test_split(task)
    train_examples, data_report = training_examples(task, settings.labels, settings.fraction, settings.seed,
                                                    settings.rationales, settings.hinted, settings.rationales_per_input,
                                                    settings.method)
    if not train_examples:
        raise DataError(f"no training examples left for {settings.task} (see the data report: {data_report})")
    valid = validation_examples(task, settings)
    warn_small_validation(task, valid)
    return task, train_examples, data_report, valid


def evaluation_interval(settings: TrainSettings, steps_per_epoch: int, total_steps: int) -> int:
    """Steps between validations (and checkpoints): --eval-steps, else --eval-epochs' worth of steps, else one
    epoch; never more than the whole run, so the last step is always evaluated."""
    if settings.eval_steps:
        every = settings.eval_steps
    elif settings.eval_epochs:
        every = math.ceil(round(settings.eval_epochs * steps_per_epoch, 6))  # 1.1 x 50 = 55.00000000000001
    else:
        every = steps_per_epoch
    return max(1, min(every, total_steps))


def make_trainer(settings: TrainSettings, student: Student, dataset, evaluator: CheckpointEvaluator,
                 checkpoints: Path) -> TwoTaskTrainer:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = math.ceil(len(dataset) / (settings.batch_size * settings.grad_accum * world_size))
    total_steps = settings.max_steps if settings.max_steps > 0 else math.ceil(steps_per_epoch * settings.epochs)
    eval_steps = evaluation_interval(settings, steps_per_epoch, total_steps)
    args = TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum, learning_rate=settings.lr,
        weight_decay=settings.weight_decay, warmup_steps=settings.warmup, lr_scheduler_type="linear",
        num_train_epochs=settings.epochs, max_steps=total_steps, bf16=settings.bf16,
        activation_checkpointing=settings.activation_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if settings.activation_checkpointing else None,
        use_cpu=not torch.cuda.is_available(), logging_steps=settings.logging_steps, logging_first_step=True,
        eval_strategy="steps", eval_steps=eval_steps, save_strategy="steps", save_steps=eval_steps,
        save_total_limit=settings.save_total_limit, load_best_model_at_end=True,
        metric_for_best_model="accuracy", greater_is_better=True, seed=settings.seed, data_seed=settings.seed,
        remove_unused_columns=False, train_sampling_strategy="group_by_length", length_column_name="length",
        report_to=["tensorboard"], disable_tqdm=not settings.progress, dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )
    return TwoTaskTrainer(model=student.model, args=args, train_dataset=dataset, eval_dataset=evaluator.valid,
                          data_collator=TwoTaskCollator(student.tokenizer.pad_token_id, student.is_seq2seq),
                          alpha=settings.effective_alpha,
                          alpha_schedule=settings.alpha_schedule, is_seq2seq=student.is_seq2seq,
                          evaluator=evaluator, callbacks=[EvaluateAtLastStep()])


def score_chosen_checkpoint(out: Path, task: Task, valid: list[Example], model, evaluator: CheckpointEvaluator,
                           best_step: int | None) -> dict:
    """Validation predictions of the chosen checkpoint (kept from its evaluation, or made again when that ran
    before a resume), then the test split once; both written to the run folder."""
    valid_rows = evaluator.valid_rows_by_step.get(best_step) or evaluator.predict(model, valid)
    scores = {"valid_accuracy": score_predictions(task, valid, valid_rows), "test_accuracy": None}
    write_jsonl(out / "predictions_valid.jsonl", valid_rows)
    if evaluator.settings.test:
        test = task.protocol_split("test", with_teacher=False)
        test_rows = evaluator.predict(model, test)
        scores["test_accuracy"] = score_predictions(task, test, test_rows)
        write_jsonl(out / "predictions_test.jsonl", test_rows)
    return scores


def data_record(task: Task, settings: TrainSettings, data_report: DataReport, dataset, n_valid: int) -> dict:
    n_test = len(task.protocol_split("test", with_teacher=False)) if settings.test else None
    return {
        "data": dataclasses.asdict(data_report),
        "sizes": {"train": len(dataset), "valid": n_valid, "test": n_test,  # train: rows, as the tasks see them
                  "label_rows": sum(1 for ids in dataset["label_input_ids"] if ids),
                  "rationale_rows": sum(1 for ids in dataset["rationale_input_ids"] if ids)},
        "rationale_skipped": data_report.no_rationale,
        "truncated": truncation_record(dataset, settings),
        "data_hashes": data_hashes(task, settings),
    }


def progress_record(trainer: TwoTaskTrainer, result, dataset, is_seq2seq: bool, train_seconds: float,
                    started: float) -> dict:
    state = trainer.state
    tokens_per_epoch = count_tokens(dataset, is_seq2seq)
    return {
        "steps": state.global_step, "epochs": round(state.epoch or 0, 3),
        "train_seconds": round(train_seconds, 1), "total_seconds": round(time.time() - started, 1),
        "train_tokens_per_second": round(tokens_per_epoch * (state.epoch or 0) / max(train_seconds, 1e-9), 1),
        "train_loss": round(result.training_loss, 4),
    }


def free_training_state(trainer: TwoTaskTrainer) -> None:
    """Training is over (checkpoints hold what a resume needs): drop the Adam states (twice the weights) and
    the gradients before the test pass, and give the memory back."""
    if trainer.optimizer is not None:
        trainer.optimizer.state.clear()
    trainer.model.zero_grad(set_to_none=True)
    release_free_memory()


def with_lora(student: Student, rank: int):
    from peft import LoraConfig, TaskType, get_peft_model
    task_type = TaskType.SEQ_2_SEQ_LM if student.is_seq2seq else TaskType.CAUSAL_LM
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type=task_type)
    return get_peft_model(student.model, config)


def step_of(checkpoint: str | None) -> int | None:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None


def record_rank(out: Path, trainer: TwoTaskTrainer) -> None:
    """Under several processes, each rank says where it ended and a checksum of its weights."""
    if trainer.args.world_size <= 1:
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():
        checksum = float(sum(param.double().sum() for param in model.parameters()))
    write_json(out / f"rank{trainer.args.process_index}.json",
               {"rank": trainer.args.process_index, "world_size": trainer.args.world_size,
                "steps": trainer.state.global_step, "best_metric": trainer.state.best_metric,
                "param_checksum": checksum})
