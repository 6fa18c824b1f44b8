"""CLI for the student stage: `train`, `eval` and `predict`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cliargs import add_settings_arguments, settings_from_args
from ..errors import DataError
from ..jsonio import iter_jsonl, write_jsonl
from .runfile import run_settings
from .settings import TrainSettings


def cmd_train(args: argparse.Namespace) -> int:
    from .train import run_train

    record = run_train(settings_from_args(TrainSettings, args))
    if record:  # rank 0
        test = "-" if record["test_accuracy"] is None else f"{record['test_accuracy']:.2f}%"
        print(f"{record['task']} {record['method']}-{record['labels']}: best step {record['best_step']}, "
              f"valid {record['valid_accuracy']:.2f}%, test {test} ({record['protocol']}); run folder {args.out}")
    return 0


def _generation(args: argparse.Namespace) -> tuple[TrainSettings | None, dict]:
    """The run's settings, and predict()'s arguments as the run was evaluated while training: its method, the
    tokens to generate (unless --max-new-tokens) and its input length limit (a model folder without run.json
    gets the defaults of `train`)."""
    settings = run_settings(args.model)
    effective = settings or TrainSettings(out=args.model)
    return settings, {"method": effective.method, "max_new_tokens": args.max_new_tokens or effective.label_tokens,
                      "max_source": effective.max_source_len}


def cmd_eval(args: argparse.Namespace) -> int:
    from ..tasks import get_task
    from .infer import predict, score_predictions
    from .models import load_trained

    settings, generation = _generation(args)
    task_spec = args.task or (settings.task if settings else None)
    if not task_spec:
        raise DataError("--task is needed (the model folder has no run.json naming it)")
    task = get_task(task_spec, args.data_dir or (settings.data_dir if settings else None))
    examples = task.protocol_split(args.split, with_teacher=False)
    if args.limit:
        examples = examples[: args.limit]
    student = load_trained(args.model)
    rows = predict(student, examples, batch_size=args.batch_size, with_rationale=args.with_rationale, **generation)
    accuracy = score_predictions(task, examples, rows)
    out = Path(args.out) if args.out else Path(args.model) / "predictions.jsonl"
    write_jsonl(out, rows)
    result = {"task": task.name, "split": args.split, "n": len(rows), "accuracy": round(accuracy, 2),
              "method": generation["method"], "protocol": task.protocol, "predictions": str(out)}
    print(json.dumps(result) if args.json else
          f"{task.name} {args.split}: {accuracy:.2f}% of {len(rows)} ({task.protocol}); predictions in {out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..tasks.base import Example
    from .infer import predict
    from .models import load_trained

    if bool(args.text) == bool(args.input):
        raise DataError("give either an input text or --input FILE.jsonl")
    if args.input:
        examples = []
        for lineno, row in iter_jsonl(args.input):
            if not isinstance(row.get("input"), str):
                raise DataError(f"{args.input}:{lineno}: missing field 'input' (a string)")
            examples.append(Example(id=str(row.get("id", lineno)), input=row["input"], label=None))
    else:
        examples = [Example(id="0", input=args.text, label=None)]
    _, generation = _generation(args)
    rows = predict(load_trained(args.model), examples, batch_size=args.batch_size,
                   with_rationale=args.with_rationale, progress=len(examples) > 1, **generation)
    for row in rows:
        keep = {key: row[key] for key in ("id", "prediction", "rationale") if key in row}
        sys.stdout.write(json.dumps(keep, ensure_ascii=False) + "\n")
    return 0


def register(sub) -> None:
    train = sub.add_parser("train", help="train a student (dss, standard or single) and test the chosen checkpoint")
    add_settings_arguments(train, TrainSettings)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="label-only accuracy of a trained student on a split")
    evaluate.add_argument("--model", required=True, help="a run folder of `stepdistill train`")
    evaluate.add_argument("--task", help="task (default: the run's)")
    evaluate.add_argument("--split", default="test", choices=("train", "valid", "test"), help="protocol split")
    evaluate.add_argument("--data-dir", help="the release's datasets/ folder (default: the run's, $STEPDISTILL_DATA)")
    evaluate.add_argument("--limit", type=int, default=0, help="first N examples only (0: all)")
    evaluate.add_argument("--batch-size", type=int, default=32, help="examples per generation batch")
    evaluate.add_argument("--max-new-tokens", type=int, default=0, help="tokens to generate (0: the run's setting)")
    evaluate.add_argument("--with-rationale", action="store_true", help="also generate each rationale (slower)")
    evaluate.add_argument("--out", help="predictions file (default: RUN/predictions.jsonl)")
    evaluate.add_argument("--json", action="store_true", help="print a JSON object")
    evaluate.set_defaults(func=cmd_eval)

    predict = sub.add_parser("predict", help="answer inputs with a trained student (one JSON line each)")
    predict.add_argument("--model", required=True, help="a run folder of `stepdistill train`")
    predict.add_argument("text", nargs="?", help="one input text")
    predict.add_argument("--input", help="a JSON Lines file with an 'input' field per line")
    predict.add_argument("--batch-size", type=int, default=32, help="examples per generation batch")
    predict.add_argument("--max-new-tokens", type=int, default=0, help="tokens to generate (0: the run's setting)")
    predict.add_argument("--with-rationale", action="store_true", help="also generate a rationale")
    predict.set_defaults(func=cmd_predict)
