"""Training-step throughput of the two-task (dss) step against a plain single-task step, and the FLOP/s
achieved against a bf16 matrix-multiply peak measured in the same process.

    .venv/bin/python benchmarks/bench_train.py [--student smollm2] [--batch 8] [--repeats 5]

Both steps see exactly the same sequences of SVAMP: B label rows `[label] x -> y` and B rationale rows
`[rationale] x -> r`. The plain step is what a stock finetuning loop does: one right-padded batch of all
2B rows through `model(input_ids, labels=...)` (full-vocabulary logits at every position, one mean over
all tokens). The dss step is ours: each task padded on its own, logits only where targets are, a mean per
task. Tokens counted = input + target tokens without padding. Steps alternate (dss, plain, dss, ...) so
that any drift of the machine hits both; the median of --repeats is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def matmul_peak(repeats: int, size: int = 2048) -> float:
    """bf16 GEMM FLOP/s, best of several sizes' medians: the ceiling a training step could reach."""
    best = 0.0
    for n in (size // 2, size, size * 2):
        a, b = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
        torch.matmul(a, b)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            torch.matmul(a, b)
            times.append(time.perf_counter() - t)
        best = max(best, 2 * n ** 3 / statistics.median(times))
    return best


def main() -> None:
    from stepdistill.student.features import IGNORE, Encoder, TwoTaskCollator, task_texts
    from stepdistill.student.loss import two_task_loss
    from stepdistill.student.models import load_student, set_attention
    from stepdistill.tasks import get_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default="smollm2")
    ap.add_argument("--batch", type=int, default=8, help="examples per step (2x rows for both steps)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--attn", default="auto", help="attention kernel, as `train --attn`")
    args = ap.parse_args()

    student = load_student(args.student)
    model, tok = student.model, student.tokenizer
    attention = set_attention(model, args.attn)
    model.train()
    task = get_task("svamp", args.data_dir)
    examples = [e for e in task.protocol_split("train") if e.rationale][: args.batch]
    enc = Encoder(tok, student.is_seq2seq, 256, 192)
    features = []
    for ex in examples:
        t = task_texts(ex, "dss", ex.label, ex.rationale)
        li, ll = enc.encode(*t.label)
        ri, rl = enc.encode(*t.rationale)
        features.append({"label_input_ids": li, "label_labels": ll, "rationale_input_ids": ri, "rationale_labels": rl})
    dss_batch = TwoTaskCollator(tok.pad_token_id, student.is_seq2seq)(features)

    # the plain step: all 2B rows right-padded together, the model's own loss
    rows = [(f["label_input_ids"], f["label_labels"]) for f in features] + \
           [(f["rationale_input_ids"], f["rationale_labels"]) for f in features]
    width = max(len(i) for i, _ in rows)
    plain = {"input_ids": torch.tensor([i + [tok.pad_token_id] * (width - len(i)) for i, _ in rows]),
             "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in rows]),
             "labels": torch.tensor([lab + [IGNORE] * (width - len(lab)) for _, lab in rows])}
    tokens = sum(len(i) for i, _ in rows) + (sum(len(lab) for _, lab in rows) if student.is_seq2seq else 0)
    target_tokens = sum(sum(1 for x in lab if x != IGNORE) for _, lab in rows)
    padded = plain["input_ids"].numel()

    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)  # the Trainer's default with torch >= 2.8

    def step(kind: str) -> float:
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if kind == "dss":
                loss, _, _ = two_task_loss(model, dss_batch, student.is_seq2seq, 0.5)
            else:
                loss = model(**plain).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t

    for kind in ("dss", "plain"):  # warm-up
        step(kind)
    times = {"dss": [], "plain": []}
    for _ in range(args.repeats):
        for kind in ("dss", "plain"):
            times[kind].append(step(kind))
    peak = matmul_peak(args.repeats)

    cfg = model.config
    d, layers, vocab = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.get_input_embeddings().weight.numel()
    body = n_params - n_embed  # tied head: its FLOPs are counted below, where logits are needed
    mean_len = tokens / len(rows)
    # 6 FLOPs per weight per token (forward 2, backward 4); attention scores and values: 6 * 2 * L * T * d per
    # token (causal average T/2 keys, forward + backward); vocabulary projection only at target positions.
    flops = 6 * body * tokens + 6 * 2 * layers * (mean_len / 2) * d * tokens + 6 * d * vocab * target_tokens
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: tokens / med[k] for k in med}
    print(f"student {args.student}: {n_params / 1e6:.1f}M parameters, batch {args.batch} examples = {len(rows)} rows, "
          f"{tokens} tokens ({target_tokens} target), plain batch padded to {padded} positions")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, bf16 autocast, {attention} attention, "
          f"fused AdamW, {args.repeats} repeats")
    print("| step | median s | tokens/s | ratio to plain | achieved FLOP/s | % of bf16 matmul peak |")
    print("|---|---|---|---|---|---|")
    for k in ("dss", "plain"):
        print(f"| {k} | {med[k]:.3f} | {rate[k]:.0f} | {rate[k] / rate['plain']:.2f}x | {flops / med[k] / 1e9:.1f} G "
              f"| {100 * flops / med[k] / peak:.1f}% |")
    print(f"bf16 matmul peak measured in this run: {peak / 1e9:.1f} GFLOP/s")
    print(f"all times (s): dss {[round(x, 3) for x in times['dss']]}, plain {[round(x, 3) for x in times['plain']]}")


if __name__ == "__main__":
    main()
