"""The report's optional served-student table: each finished decoder-only dss run of a sweep, exported,
served by llama.cpp and scored on test through the OpenAI API, with its latency. A sweep config asks for it:

    serve: {quant: q8_0, limit: 40}

Measurements are cached in SWEEP/served/RUN-QUANT.json, so writing the report again serves nothing."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..jsonio import read_json, write_json
from ..student.train import RUN_FILE


def measure_served(run: Path, record: dict, quant: str, limit: int) -> dict:
    from ..student.infer import score_predictions
    from ..tasks import get_task
    from .endpoint_eval import endpoint_predict, make_client
    from .serve import cached_export, local_server

    settings = record["settings"]
    task = get_task(settings["task"], settings.get("data_dir"))
    examples = task.protocol_split("test", with_teacher=False)[: limit or None]
    with local_server(cached_export(str(run), quant)) as base_url:
        rows = endpoint_predict(make_client(base_url), "student", examples,
                                settings.get("label_max_new_tokens", 48), record.get("method", "dss"), progress=False)
    accuracy = score_predictions(task, examples, rows)
    latencies = sorted(row["latency_ms"] for row in rows)
    return {"run": run.name, "quant": quant, "n": len(rows), "accuracy": round(accuracy, 2),
            "latency_ms_p50": latencies[len(latencies) // 2],
            "latency_ms_p95": latencies[int(0.95 * (len(latencies) - 1))],
            "hf_test_accuracy": record.get("test_accuracy")}


def served_table(sweep_dir: Path, serve: dict) -> str:
    if not isinstance(serve, dict):
        raise DataError(f"{sweep_dir}: the config's 'serve' should be a mapping like {{quant: q8_0, limit: 40}}")
    quant, limit = str(serve.get("quant", "q8_0")), int(serve.get("limit", 0))
    lines = ["| run | served as | test inputs | served test accuracy % | p50 / p95 latency per label | "
             "HF test accuracy % (all of test) |", "|---|---|---|---|---|---|"]
    for run in sorted((sweep_dir / "runs").glob("*")):
        record = read_json(run / RUN_FILE) if (run / RUN_FILE).is_file() else {}
        if record.get("method") != "dss" or record.get("is_seq2seq", True):
            continue
        cache = sweep_dir / "served" / f"{run.name}-{quant}.json"
        if not cache.is_file():
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_json(cache, measure_served(run, record, quant, limit))
        row = read_json(cache)
        lines.append(f"| {row['run']} | llama.cpp {row['quant']} | {row['n']} | {row['accuracy']:.2f} | "
                     f"{row['latency_ms_p50']:.0f} / {row['latency_ms_p95']:.0f} ms | {row['hf_test_accuracy']} |")
    return "\n".join(lines)
