"""`stepdistill eval --endpoint URL`: score any OpenAI-compatible model with the task's own scorer.

The served student and a teacher are measured through one path: each input is sent as one user message
(the student's chat template turns it into the label prompt), the reply is the prediction, and the rows
have the same fields as `stepdistill eval` writes, plus each request's latency.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from tqdm.auto import tqdm

from ..errors import DataError
from ..jsonio import check_writable_file, write_jsonl
from ..tasks.base import Example


def add_endpoint_arguments(parser) -> None:
    """Options of `stepdistill eval` for an endpoint (`--model` then names the served model)."""
    parser.add_argument("--endpoint", help="an OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1): score "
                                           "the model served there; --model is then the model name (default: the "
                                           "first one listed); the API key comes from $OPENAI_API_KEY")
    parser.add_argument("--concurrency", type=int, default=1, help="--endpoint: requests in flight at once")


def make_client(endpoint: str):
    from openai import OpenAI
    return OpenAI(base_url=endpoint, api_key=os.environ.get("OPENAI_API_KEY", "not-needed"), max_retries=0)


def ask(client, model: str, text: str, max_tokens: int) -> tuple[str, float, int]:
    """(reply text, latency in ms, completion tokens) for one input sent as a user message."""
    started = time.perf_counter()
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}],
                                           max_tokens=max_tokens, temperature=0)
    latency = (time.perf_counter() - started) * 1000
    tokens = reply.usage.completion_tokens if reply.usage else 0
    return (reply.choices[0].message.content or "").strip(), latency, tokens


def endpoint_predict(client, model: str, examples: list[Example], max_tokens: int, method: str = "dss",
                     concurrency: int = 1, progress: bool = True) -> list[dict]:
    """One row per example: prediction (the label; `single` students' label after the answer phrase), raw
    reply, latency_ms, completion_tokens. Requests run `concurrency` at a time."""
    from ..student.infer import label_from_single

    def one(example: Example) -> dict:
        text, latency, tokens = ask(client, model, example.input, max_tokens)
        label = label_from_single(text) if method == "single" else text
        return {"id": example.id, "input": example.input, "prediction": label, "raw": text,
                "latency_ms": round(latency, 1), "completion_tokens": tokens}

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(tqdm(pool.map(one, examples), total=len(examples), desc="endpoint", unit="ex",
                         disable=not progress, leave=False))


def first_model(client, endpoint: str) -> str:
    models = client.models.list().data
    if not models:
        raise DataError(f"{endpoint}: the endpoint lists no model; pass --model NAME")
    return models[0].id


def cmd_eval_endpoint(args) -> int:
    import openai

    from ..student.infer import score_predictions
    from ..tasks import get_task
    from ..tasks.spec import task_from_args
    if not args.task:
        raise DataError("--endpoint needs --task (there is no run folder to read it from)")
    task = get_task(task_from_args(args), args.data_dir)  # with its options, as `eval --model RUN` reads them
    out = check_writable_file(args.out or f"predictions_endpoint_{task.name}_{args.split}.jsonl")
    examples = task.protocol_split(args.split, with_teacher=False)[: args.limit or None]
    client = make_client(args.endpoint)
    try:
        model = args.model or first_model(client, args.endpoint)
        rows = endpoint_predict(client, model, examples, args.max_new_tokens or 48, concurrency=args.concurrency)
    except openai.APIError as error:
        raise DataError(f"{args.endpoint}: {error}") from error
    accuracy = score_predictions(task, examples, rows)
    write_jsonl(out, rows)
    latencies = sorted(row["latency_ms"] for row in rows)
    result = {"task": task.name, "split": args.split, "n": len(rows), "accuracy": round(accuracy, 2),
              "endpoint": args.endpoint, "model": model, "protocol": task.protocol, "predictions": str(out),
              "latency_ms_p50": latencies[len(latencies) // 2] if latencies else None}
    print(json.dumps(result) if args.json else
          f"{task.name} {args.split} via {args.endpoint} ({model}): {accuracy:.2f}% of {len(rows)} "
          f"({task.protocol}); p50 latency {result['latency_ms_p50']} ms; predictions in {out}")
    return 0
