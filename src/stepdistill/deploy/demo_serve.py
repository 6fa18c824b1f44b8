"""The demo's last step: export the dss student, start the server, and answer three test questions through
it, each beside the HF `predict` path's answer and latency."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import DataError
from ..jsonio import read_json
from ..student.train import RUN_FILE


def dss_run(sweep_dir: Path) -> Path:
    for run in sorted((sweep_dir / "runs").glob("*")):
        if (run / RUN_FILE).is_file() and read_json(run / RUN_FILE).get("method") == "dss":
            return run
    raise DataError(f"{sweep_dir}: no finished dss run to export")


def hf_answers(run: Path, examples, method: str, max_tokens: int) -> list[tuple[str, float]]:
    """(label, ms) per example through `stepdistill predict`'s path: HF generate, fp32, batch 1."""
    from ..student.infer import predict
    from ..student.models import load_trained
    from ..student.runfile import run_prompt_format

    student, answers, prompts = load_trained(run), [], run_prompt_format(run)
    for example in examples:
        started = time.perf_counter()
        row = predict(student, [example], method, max_tokens, batch_size=1, progress=False, prompts=prompts)[0]
        answers.append((row["prediction"], (time.perf_counter() - started) * 1000))
    return answers


def served_answers(gguf: Path, examples, method: str, max_tokens: int) -> list[dict]:
    from .endpoint_eval import endpoint_predict, make_client
    from .serve import local_server, usage_text

    with local_server(gguf) as base_url:
        print(usage_text(base_url, "student", gguf).rsplit("\n", 1)[0], flush=True)
        client = make_client(base_url)
        endpoint_predict(client, "student", examples[:1], max_tokens, method, progress=False)  # warm-up
        return endpoint_predict(client, "student", examples, max_tokens, method, progress=False)


def answer_through_server(sweep_dir: Path, n_questions: int = 3, quant: str = "q8_0") -> list[dict]:
    from ..tasks import get_task
    from .serve import cached_export

    run = dss_run(sweep_dir)
    record = read_json(run / RUN_FILE)
    settings = record["settings"]
    examples = get_task(settings["task"], settings.get("data_dir")).protocol_split("test")[:n_questions]
    max_tokens = settings.get("label_max_new_tokens", 48)
    served = served_answers(cached_export(str(run), quant), examples, record["method"], max_tokens)
    hf = hf_answers(run, examples, record["method"], max_tokens)
    for example, row, (hf_label, hf_ms) in zip(examples, served, hf):
        question = " ".join(example.input.split())
        print(f"Q: {question}\n   gold {example.label!r} | served ({quant}) {row['prediction']!r} in "
              f"{row['latency_ms']:.0f} ms | HF predict {hf_label!r} in {hf_ms:.0f} ms", flush=True)
    return served
