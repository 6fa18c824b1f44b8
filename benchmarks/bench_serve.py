"""Serving the student: HF generate (fp32, batch 1, today's `predict` path) against llama.cpp on the exported
GGUF (f16 / q8_0 / q4_k_m) in process, and through the OpenAI-compatible server at several concurrencies.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_serve.py --run RUN_DIR [--n 40] [--threads 2] [--out bench.json]
        [--replicas 1 2] [--concurrency 1 4 8] [--quants f16 q8_0 q4_k_m] [--no-hf] [--batched 1 8]
        [--engines llama-cpp batched] [--slots 8]

Same student, same n SVAMP test inputs, label-only, greedy, each answer capped at --max-tokens. Reports per path
p50/p95 latency per label, labels/s and ms per generated token; and, measured in the same run, the physical
bound per label: prompt FLOPs / matmul rate + generated tokens x weight bytes / memory bandwidth. Server rows
also give their throughput over the batch-1 rate (the first server row: fewest replicas, concurrency 1); with
--replicas N the server is `serve --replicas N` (N llama.cpp workers, --threads split between them).
--engines measures the server rows for each `serve --engine` in the same run (batched: one process, --slots
requests decoded together; it takes no replicas, so it gets one row set whatever --replicas says).
--batched WIDTH... adds in-process rows that decode WIDTH sequences at once through llama.cpp's batch API
(batched_decode.py: what true batching could give), with the share of their time spent on the prompts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from batched_decode import bench_batched


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, latencies_ms: list[float], tokens: list[int], wall_s: float) -> dict:
    row = {"path": name, "p50_ms": round(statistics.median(latencies_ms), 1),
            "p95_ms": round(percentile(latencies_ms, 0.95), 1), "labels_per_s": round(len(latencies_ms) / wall_s, 2),
            "ms_per_token": round(sum(latencies_ms) / max(sum(tokens), 1), 1),
            "mean_tokens": round(sum(tokens) / len(tokens), 1)}
    print(json.dumps(row), flush=True)  # partial results survive a run cut short
    return row


def bench_hf(run: str, texts: list[str], max_tokens: int) -> dict:
    from stepdistill.student.infer import generate
    from stepdistill.student.models import load_trained
    from stepdistill.student.runfile import run_prompt_format

    student = load_trained(run)
    label_source = run_prompt_format(run).label  # the run's own input format (prefix or chat)
    generate(student, [label_source(texts[0])], max_tokens, batch_size=1, progress=False)  # warm-up
    latencies, tokens, started = [], [], time.perf_counter()
    for text in texts:
        t = time.perf_counter()
        out = generate(student, [label_source(text)], max_tokens, batch_size=1, progress=False)[0]
        latencies.append((time.perf_counter() - t) * 1000)
        tokens.append(min(len(student.tokenizer(out, add_special_tokens=False).input_ids) + 1, max_tokens))  # + EOS
    return summary("HF generate fp32, batch 1", latencies, tokens, time.perf_counter() - started)


def bench_in_process(gguf: str, quant: str, texts: list[str], max_tokens: int, threads: int) -> dict:
    import llama_cpp

    llm = llama_cpp.Llama(gguf, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    ask = lambda text: llm.create_chat_completion([{"role": "user", "content": text}],  # noqa: E731
                                                  max_tokens=max_tokens, temperature=0)
    ask(texts[0])  # warm-up
    latencies, tokens, prompt_tokens, started = [], [], [], time.perf_counter()
    for text in texts:
        t = time.perf_counter()
        reply = ask(text)
        latencies.append((time.perf_counter() - t) * 1000)
        tokens.append(reply["usage"]["completion_tokens"])
        prompt_tokens.append(reply["usage"]["prompt_tokens"])
    row = summary(f"llama.cpp {quant}, in process", latencies, tokens, time.perf_counter() - started)
    row["mean_prompt_tokens"] = round(sum(prompt_tokens) / len(prompt_tokens), 1)
    return row


def bench_server(gguf: str, quant: str, texts: list[str], max_tokens: int, threads: int,
                 concurrencies: list[int], replicas: int, engine: str = "llama-cpp", slots: int = 8) -> list[dict]:
    from stepdistill.deploy.endpoint_eval import endpoint_predict, make_client
    from stepdistill.deploy.serve import local_server
    from stepdistill.tasks.base import Example

    rows = []
    with local_server(gguf, threads, n_ctx=512, replicas=replicas, engine=engine, slots=slots) as base_url:
        client = make_client(base_url)
        examples = [Example(id=str(i), input=text, label=None) for i, text in enumerate(texts)]
        endpoint_predict(client, "student", examples[:replicas], max_tokens, concurrency=replicas,
                         progress=False)  # warm-up, each worker once
        for concurrency in concurrencies:
            started = time.perf_counter()
            out = endpoint_predict(client, "student", examples, max_tokens, concurrency=concurrency, progress=False)
            rows.append(summary(f"server {quant}, {engine}, replicas {replicas}, concurrency {concurrency}",
                                [r["latency_ms"] for r in out], [r["completion_tokens"] for r in out],
                                time.perf_counter() - started))
    return rows


def machine_rates(threads: int) -> dict:
    """fp32 matmul FLOP/s (torch, `threads` threads) and memory read bandwidth (summing a 512 MB array)."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    t, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ b
    flops = 2 * 1024 ** 3 * reps / (time.perf_counter() - t)
    big = np.ones(64 * 1024 * 1024)  # 512 MB, far past the caches
    big.sum()
    t = time.perf_counter()
    for _ in range(3):
        big.sum()
    bandwidth = 3 * big.nbytes / (time.perf_counter() - t)
    return {"matmul_flops": flops, "bandwidth_bytes": bandwidth}


def physical_bound_ms(params_nonembed: int, weight_bytes: int, prompt_tokens: float, gen_tokens: float,
                      rates: dict) -> float:
    return 1000 * (2 * params_nonembed * prompt_tokens / rates["matmul_flops"]
                   + gen_tokens * weight_bytes / rates["bandwidth_bytes"])


def main() -> None:
    from stepdistill.deploy.export import ExportSettings, default_output, export, model_folder
    from stepdistill.tasks import get_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a decoder-only run folder")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=13)
    ap.add_argument("--quants", nargs="*", default=["f16", "q8_0", "q4_k_m"], help="in-process rows (none: skip)")
    ap.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 8])
    ap.add_argument("--replicas", nargs="+", type=int, default=[1], help="server rows for each worker count")
    ap.add_argument("--server-quant", default="q8_0")
    ap.add_argument("--no-hf", action="store_true", help="skip the HF generate row")
    ap.add_argument("--batched", nargs="*", type=int, default=[], help="in-process rows decoding WIDTH sequences at once")
    ap.add_argument("--engines", nargs="+", default=["llama-cpp"], choices=["llama-cpp", "batched"],
                    help="server rows for each serving engine")
    ap.add_argument("--slots", type=int, default=8, help="--engine batched: requests decoded together")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()

    load_before = os.getloadavg()
    model_dir, record = model_folder(args.run)
    texts = [ex.input for ex in get_task("svamp").protocol_split("test", with_teacher=False)[: args.n]]
    ggufs = {}
    for quant in dict.fromkeys(args.quants + [args.server_quant]):
        path = default_output(model_dir, quant)
        ggufs[quant] = str(path if path.is_file() else export(ExportSettings(run=args.run, quant=quant))["gguf"])
    rates = machine_rates(args.threads)
    rows = [] if args.no_hf else [bench_hf(args.run, texts, args.max_tokens)]
    rows += [bench_in_process(ggufs[q], q, texts, args.max_tokens, args.threads) for q in args.quants]
    rows += [bench_batched(ggufs[args.server_quant], args.server_quant, texts, args.max_tokens, args.threads, width)
             for width in args.batched]
    for engine in args.engines:
        for replicas in (args.replicas if engine == "llama-cpp" else [1]):
            rows += bench_server(ggufs[args.server_quant], args.server_quant, texts, args.max_tokens, args.threads,
                                 args.concurrency, replicas, engine, args.slots)
    report(rows, rates, ggufs, model_dir, args, load_before)


def add_ratios(rows: list[dict], rates: dict, ggufs: dict, model_dir: Path) -> float | None:
    """Per row: HF p50 / p50, the physical bound at batch 1 and p50 / bound, throughput over the batch-1 server
    rate. Returns the mean prompt length (None without an in-process row to read it from)."""
    from safetensors import safe_open

    config = json.loads((model_dir / "config.json").read_text())
    embed = config["vocab_size"] * config["hidden_size"]
    with safe_open(str(next(model_dir.glob("*.safetensors"))), "np") as f:
        params = sum(f.get_slice(k).get_shape()[0] * (f.get_slice(k).get_shape() + [1])[1] for k in f.keys())
    prompt = next((r["mean_prompt_tokens"] for r in rows if "mean_prompt_tokens" in r), None)
    hf_p50 = next((r["p50_ms"] for r in rows if r["path"].startswith("HF")), None)
    server_rows = [r for r in rows if r["path"].startswith("server")]
    for row in (row for row in rows if "prompt_share" not in row):  # batched rows have no per-label latency
        quant = next((q for q in ggufs if f" {q}," in row["path"]), None)
        if quant and prompt and not row["path"].endswith(("concurrency 4", "concurrency 8")):
            bound = physical_bound_ms(params - embed, os.path.getsize(ggufs[quant]), prompt, row["mean_tokens"], rates)
            row["bound_ms"], row["p50_over_bound"] = round(bound, 1), round(row["p50_ms"] / bound, 2)
        if hf_p50:
            row["hf_over_p50"] = round(hf_p50 / row["p50_ms"], 2)
        if row in server_rows:
            row["throughput_over_batch1"] = round(row["labels_per_s"] / server_rows[0]["labels_per_s"], 2)
    return prompt


def report(rows: list[dict], rates: dict, ggufs: dict, model_dir: Path, args, load_before) -> None:
    prompt = add_ratios(rows, rates, ggufs, model_dir)
    print(f"load average before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f}; threads {args.threads}; "
          f"matmul {rates['matmul_flops'] / 1e9:.1f} GFLOP/s; bandwidth {rates['bandwidth_bytes'] / 1e9:.1f} GB/s; "
          f"{args.n} inputs, mean prompt {prompt} tokens")
    print("| path | p50 ms | p95 ms | labels/s | labels/s / batch-1 server | ms/token | tokens | HF p50 / p50 | "
          "bound ms | p50 / bound |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    batched = [r for r in rows if "prompt_share" in r]
    for r in (r for r in rows if "prompt_share" not in r):
        ratios = [r.get("throughput_over_batch1"), r.get("hf_over_p50")]
        ratios = [f"{value}x" if value is not None else "" for value in ratios]
        print(f"| {r['path']} | {r['p50_ms']} | {r['p95_ms']} | {r['labels_per_s']} | {ratios[0]} | "
              f"{r['ms_per_token']} | {r['mean_tokens']} | {ratios[1]} | {r.get('bound_ms', '')} | "
              f"{r.get('p50_over_bound', '')} |")
    if batched:
        print("| batched in process | labels/s | over width 1 | prompt ms per label | steps ms per label | "
              "share of time in prompts | tokens |")
        print("|---|---|---|---|---|---|---|")
        for r in batched:
            print(f"| {r['path']} | {r['labels_per_s']} | {r['labels_per_s'] / batched[0]['labels_per_s']:.2f}x | "
                  f"{r['prompt_ms_per_label']} | {r['steps_ms_per_label']} | {r['prompt_share']:.1%} | {r['mean_tokens']} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "rates": rates, "load": [load_before, os.getloadavg()],
                                              "n": args.n, "threads": args.threads}, indent=2))


if __name__ == "__main__":
    main()
