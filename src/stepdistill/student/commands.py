"""CLI for the student stage: `train`, `eval` and `predict`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cliargs import add_settings_arguments, settings_from_args
from ..deploy.endpoint_eval import add_endpoint_arguments
from ..errors import DataError
from ..jsonio import check_writable_file, iter_jsonl, write_jsonl
from .runfile import run_prompt_format, run_settings
from .settings import TrainSettings
from ..tasks.spec import add_task_options, task_from_args


def cmd_train(args: argparse.Namespace) -> int:
    from .train import run_train

    record = run_train(settings_from_args(TrainSettings, args, task=task_from_args(args)))
    if record:  # rank 0
        test = "-" if record["test_accuracy"] is None else f"{record['test_accuracy']:.2f}%"
        print(f"{record['task']} {record['method']}-{record['labels']}: best step {record['best_step']}, "
              f"valid {record['valid_accuracy']:.2f}%, test {test} ({record['protocol']}); run folder {args.out}")
    return 0


def check_generation_args(args: argparse.Namespace) -> None:
    """eval / predict: a run folder that exists and numbers in range, before any model is loaded."""
    if not Path(args.model).exists():
        raise DataError(f"no run at {args.model}")
    if args.batch_size < 1:
        raise DataError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.max_new_tokens < 0:
        raise DataError(f"--max-new-tokens must be at least 1 (or 0: the run's setting), got {args.max_new_tokens}")
    if getattr(args, "limit", 0) < 0:
        raise DataError(f"--limit must be at least 1 (or 0: all), got {args.limit}")


def _generation(args: argparse.Namespace) -> tuple[TrainSettings | None, dict]:
    """The run's settings, and predict()'s arguments as the run was evaluated while training: its method, the
    tokens to generate (unless --max-new-tokens) and its input length limit (a model folder without run.json
    gets the defaults of `train`)."""
    settings = run_settings(args.model)
    effective = settings or TrainSettings(out=args.model)
    return settings, {"method": effective.method, "max_new_tokens": args.max_new_tokens or effective.label_tokens,
                      "max_source": effective.max_source_len}


def cmd_eval(args: argparse.Namespace) -> int:
    if args.endpoint and args.answer == "choices":
        raise DataError("--answer choices reads the student's own probabilities: use --model RUN, not --endpoint")
    if args.endpoint:  # any OpenAI-compatible model, scored the same way (deploy/endpoint_eval.py)
        from ..deploy.endpoint_eval import cmd_eval_endpoint
        return cmd_eval_endpoint(args)
    if not args.model:
        raise DataError("eval needs --model RUN (a run folder) or --endpoint URL")
    from ..tasks import get_task
    from .infer import predict, predict_by_choosing, score_predictions
    from .models import load_trained

    check_generation_args(args)
    out = check_writable_file(args.out or Path(args.model) / "predictions.jsonl")
    settings, generation = _generation(args)
    task_spec = task_from_args(args) or (settings.task if settings else None)  # a run's spec holds its column options
    if not task_spec:
        raise DataError("--task is needed (the model folder has no run.json naming it)")
    task = get_task(task_spec, args.data_dir or (settings.data_dir if settings else None))
    examples = task.protocol_split(args.split, with_teacher=False)
    if args.limit:
        examples = examples[: args.limit]
    if not examples:
        raise DataError(f"task {task.name} split {args.split}: no examples to evaluate")
    choices = check_choices(args, task, examples, generation["method"]) if args.answer == "choices" else None
    student, prompts = load_trained(args.model), run_prompt_format(args.model)
    if choices is None:
        rows = predict(student, examples, batch_size=args.batch_size, with_rationale=args.with_rationale,
                       prompts=prompts, **generation)
    else:
        rows = predict_by_choosing(student, examples, choices, batch_size=args.batch_size,
                                   max_source=generation["max_source"], prompts=prompts)
    accuracy = score_predictions(task, examples, rows)
    write_jsonl(out, rows)
    result = {"task": task.name, "split": args.split, "n": len(rows), "accuracy": round(accuracy, 2),
              "method": generation["method"], "answer": args.answer, "protocol": task.protocol,
              "predictions": str(out)}
    answered = " (answers chosen among the listed choices)" if choices is not None else ""
    print(json.dumps(result) if args.json else f"{task.name} {args.split}: {accuracy:.2f}% of {len(rows)}{answered} "
                                               f"({task.protocol}); predictions in {out}")
    return 0


def check_choosing(method: str, with_rationale: bool) -> None:
    """eval / predict --answer choices: a run whose label task answers with the label, and no rationale asked."""
    if method == "single":
        raise DataError("--answer choices: a single-task run writes its rationale before the label, so its label "
                        "task cannot be scored choice by choice (use a dss or standard run, or --answer generate)")
    if with_rationale:
        raise DataError("--answer choices scores the listed choices only; drop --with-rationale")


def check_choices(args: argparse.Namespace, task, examples: list, method: str) -> list[list[str]]:
    """eval --answer choices: every example's choices, checked before the model loads."""
    check_choosing(method, args.with_rationale)
    choices = []
    for example in examples:
        listed = task.answer_choices(example)
        if not listed:
            raise DataError(f"--answer choices: task {task.name} lists no answer choices for example {example.id} "
                            "(it needs a multiple-choice task: cqa, anli1, esnli, or JSON Lines rows with a "
                            "'choices' list)")
        choices.append(listed)
    return choices


def cmd_predict(args: argparse.Namespace) -> int:
    from .infer import predict, predict_by_choosing
    from .models import load_trained

    if bool(args.text) == bool(args.input):
        raise DataError("give either an input text or --input FILE.jsonl")
    if args.choice and not args.text:
        raise DataError("--choice goes with one input text; with --input FILE.jsonl give each row a 'choices' list")
    check_generation_args(args)
    choosing = bool(args.choice) or args.answer == "choices"
    examples, choices = predict_inputs(args, choosing)
    _, generation = _generation(args)
    if choosing:
        check_choosing(generation["method"], args.with_rationale)
    student, prompts = load_trained(args.model), run_prompt_format(args.model)
    if choosing:
        rows = predict_by_choosing(student, examples, choices, batch_size=args.batch_size,
                                   max_source=generation["max_source"], prompts=prompts, progress=len(examples) > 1)
    else:
        rows = predict(student, examples, batch_size=args.batch_size, with_rationale=args.with_rationale,
                       progress=len(examples) > 1, prompts=prompts, **generation)
    for row in rows:
        keep = {key: row[key] for key in ("id", "prediction", "rationale", "choice_logprobs") if key in row}
        sys.stdout.write(json.dumps(keep, ensure_ascii=False) + "\n")
    return 0


def predict_inputs(args: argparse.Namespace, choosing: bool) -> tuple[list, list]:
    """predict's examples (the one text, or --input's rows) and, when choosing, each one's choices."""
    from ..tasks.base import Example, choice_list

    if not args.input:
        if choosing and not args.choice:
            raise DataError("--answer choices with one input text needs its choices: --choice A --choice B ...")
        return [Example(id="0", input=args.text, label=None)], [args.choice]
    examples, choices = [], []
    for lineno, row in iter_jsonl(args.input):
        if not isinstance(row.get("input"), str):
            raise DataError(f"{args.input}:{lineno}: missing field 'input' (a string)")
        listed = choice_list(row.get("choices"))
        if choosing and listed is None:
            raise DataError(f"{args.input}:{lineno}: --answer choices needs a field 'choices' (a list of strings)")
        examples.append(Example(id=str(row.get("id", lineno)), input=row["input"], label=None))
        choices.append(listed)
    return examples, choices


def register(sub) -> None:
    train = sub.add_parser("train", help="train a student (dss, standard or single) and test the chosen checkpoint")
    add_settings_arguments(train, TrainSettings)
    add_task_options(train)
    train.set_defaults(func=cmd_train, interrupted="interrupted: checkpoints are kept; run the same command "
                                                   "with --resume to continue from the last one")

    evaluate = sub.add_parser("eval", help="label-only accuracy of a trained student on a split")
    evaluate.add_argument("--model", help="a run folder of `stepdistill train` (with --endpoint: the served model's name)")
    evaluate.add_argument("--task", help="task (default: the run's)")
    add_task_options(evaluate)
    evaluate.add_argument("--split", default="test", choices=("train", "valid", "test"), help="protocol split")
    evaluate.add_argument("--data-dir", help="the release's datasets/ folder (default: the run's, $STEPDISTILL_DATA)")
    evaluate.add_argument("--limit", type=int, default=0, help="first N examples only (0: all)")
    evaluate.add_argument("--batch-size", type=int, default=32, help="examples per generation batch")
    evaluate.add_argument("--max-new-tokens", type=int, default=0, help="tokens to generate (0: the run's setting)")
    evaluate.add_argument("--with-rationale", action="store_true", help="also generate each rationale (slower)")
    evaluate.add_argument("--answer", default="generate", choices=("generate", "choices"),
                          help="generate: the label as the student writes it, scored by exact match (the paper's "
                               "protocol); choices: the listed choice the student finds likeliest (multiple-choice "
                               "tasks only)")
    evaluate.add_argument("--out", help="predictions file, in an existing folder (default: RUN/predictions.jsonl; "
                                        "with --endpoint: predictions_endpoint_TASK_SPLIT.jsonl)")
    evaluate.add_argument("--json", action="store_true", help="print a JSON object")
    add_endpoint_arguments(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    predict = sub.add_parser("predict", help="answer inputs with a trained student (one JSON line each)")
    predict.add_argument("--model", required=True, help="a run folder of `stepdistill train`")
    predict.add_argument("text", nargs="?", help="one input text")
    predict.add_argument("--input", help="a JSON Lines file with an 'input' field per line")
    predict.add_argument("--batch-size", type=int, default=32, help="examples per generation batch")
    predict.add_argument("--max-new-tokens", type=int, default=0, help="tokens to generate (0: the run's setting)")
    predict.add_argument("--with-rationale", action="store_true", help="also generate a rationale")
    predict.add_argument("--answer", default="generate", choices=("generate", "choices"),
                         help="choices: answer with the likeliest listed choice (each --input row's 'choices' list)")
    predict.add_argument("--choice", action="append", default=[],
                         help="a listed choice for the one input text (repeat; implies --answer choices)")
    predict.set_defaults(func=cmd_predict)
