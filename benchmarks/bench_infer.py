"""Serving cost: label-only decoding (what a dss student serves) against rationale-then-label decoding
(what a single-task student must do before its answer), same student, same inputs.

    .venv/bin/python benchmarks/bench_infer.py --model RUN_DIR [--n 20] [--repeats 3]

The rationale-then-label figure generates the student's rationale (`[rationale] x`, until EOS) and then its
label, the tokens a single-task student has to produce. Batch size 1 (one request at a time, greedy),
median latency per example over n inputs x repeats; the two kinds alternate per input.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    import torch

    from stepdistill.student.infer import generate
    from stepdistill.student.models import load_trained
    from stepdistill.student.runfile import load_run, run_prompt_format
    from stepdistill.tasks import get_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a dss run folder")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rationale-tokens", type=int, default=192)
    args = ap.parse_args()

    run = load_run(args.model)
    settings = run["settings"]
    student = load_trained(args.model)
    task = get_task(settings["task"], settings.get("data_dir"))
    examples = task.protocol_split("test", with_teacher=False)[: args.n]
    label_tokens = settings["label_max_new_tokens"]
    times = {"label-only": [], "rationale-then-label": []}
    generated = {"label-only": [], "rationale-then-label": []}
    tok = student.tokenizer

    def timed(sources, max_new):
        t = time.perf_counter()
        out = generate(student, sources, max_new, batch_size=1, progress=False)
        return time.perf_counter() - t, out

    prompts = run_prompt_format(args.model)  # the run's own input format (prefix or chat)
    timed([prompts.label(examples[0].input)], label_tokens)  # warm-up
    for _ in range(args.repeats):
        for ex in examples:
            dt, out = timed([prompts.label(ex.input)], label_tokens)
            times["label-only"].append(dt)
            generated["label-only"].append(len(tok(out[0]).input_ids))
            dt_r, rationale = timed([prompts.rationale(ex.input)], args.rationale_tokens)
            dt_l, out = timed([prompts.label(ex.input)], label_tokens)
            times["rationale-then-label"].append(dt_r + dt_l)
            generated["rationale-then-label"].append(len(tok(rationale[0]).input_ids) + len(tok(out[0]).input_ids))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"model {args.model} ({run['student_parameters'] / 1e6:.0f}M parameters, {run['method']}), task {task.name}, "
          f"{len(examples)} test inputs x {args.repeats}, batch 1, greedy, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, fp32")
    print("| decoding | median latency per example | median generated tokens | ratio |")
    print("|---|---|---|---|")
    for k in times:
        print(f"| {k} | {med[k] * 1000:.0f} ms | {statistics.median(generated[k]):.0f} | "
              f"{med[k] / med['label-only']:.2f}x |")


if __name__ == "__main__":
    main()
