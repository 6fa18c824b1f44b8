"""Served labels against HF's, for trained students: what the slow test checks, on any run folders.

    PYTHONPATH=src .venv/bin/python benchmarks/served_agreement.py --n 40 RUN [RUN ...]

For each run: HF fp32 label-only predictions at batch 1 (today's `predict`), then the run exported to f16 and
q8_0 and served by `stepdistill serve`'s server (1 thread), queried through the `openai` client on the same
SVAMP test inputs. Prints one JSON line per run and weights: identical texts, texts equal or equal in value
(SVAMP's scorer), and how many each side got right. Exports go to RUN/export/ (cached there).
"""

from __future__ import annotations

import argparse
import json
import time


def served_labels(gguf: str, examples, max_tokens: int) -> list[str]:
    from stepdistill.deploy.endpoint_eval import endpoint_predict, make_client
    from stepdistill.deploy.serve import local_server

    with local_server(gguf, threads=1, n_ctx=1024) as base_url:
        rows = endpoint_predict(make_client(base_url), "student", examples, max_tokens, progress=False)
    return [row["prediction"] for row in rows]


def main() -> None:
    from stepdistill.deploy.export import ExportSettings, export
    from stepdistill.student.infer import predict
    from stepdistill.student.models import load_trained
    from stepdistill.student.runfile import run_settings
    from stepdistill.tasks import get_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    task = get_task("svamp")
    examples = task.protocol_split("test", with_teacher=False)[: args.n]
    for run in args.runs:
        started = time.perf_counter()
        hf = [row["prediction"] for row in predict(load_trained(run), examples, run_settings(run).method,
                                                   args.max_tokens, batch_size=1, progress=False)]
        for quant in ("f16", "q8_0"):
            served = served_labels(export(ExportSettings(run=run, quant=quant), progress=False)["gguf"], examples,
                                   args.max_tokens)
            print(json.dumps({
                "run": run, "quant": quant, "n": len(examples), "same_text": sum(a == b for a, b in zip(served, hf)),
                "same_or_value": sum(a == b or task.score(a, b) for a, b in zip(served, hf)),
                "hf_right": sum(task.score(label, ex.label) for label, ex in zip(hf, examples)),
                "served_right": sum(task.score(label, ex.label) for label, ex in zip(served, examples)),
                "seconds": round(time.perf_counter() - started)}), flush=True)


if __name__ == "__main__":
    main()
