"""What a training step costs per method, on one optimised path, with a stock Hugging Face step as reference.

    .venv/bin/python benchmarks/bench_train.py [--student smollm2] [--batch 8] [--repeats 7] [--attn auto] [--chat]
        [--fp32] [--only standard dss]

All steps run the same B SVAMP examples (those with a rationale) through the project's own path: the
Encoder and collator of student/features.py, the per-task loss of student/loss.py, bf16 autocast, fused
AdamW (the Trainer's default with torch >= 2.8):
- standard: the B label rows `[label] x -> y` only (what standard finetuning costs here);
- dss: the B label rows and the B rationale rows `[rationale] x -> r`, each task left-padded on its own,
  a mean per task (Distilling step-by-step as trained);
- pooled: the same 2B rows in one left-padded batch with one mean over all target tokens (what keeping the
  tasks apart costs or saves);
- hf: the same 2B rows right-padded, `model(..., labels=...).loss` (a stock finetuning step: full-vocabulary
  logits at every position), as a reference;
- with --chat, also standard (chat) and dss (chat): the same rows in the student's chat template
  (`train --input-format chat`), to show what the format costs per step;
- with --fp32, also standard (fp32) and dss (fp32): the same steps without bf16 autocast, to show what bf16
  buys on this CPU (on one without bf16 instructions, emulated bf16 costs many times fp32's time);
- --only METHOD ...: time just these steps (the bf16 ones can take minutes each where bf16 is emulated).
Steps alternate (standard, dss, pooled, hf, standard, ...) so drift of the machine hits all; medians of
--repeats after a warm-up. Tokens = input + target tokens without padding. Useful FLOPs count the same
work for every step that trains the same rows (6 x non-embedding parameters x tokens, attention, the
vocabulary projection at target positions only), against a bf16 matrix-multiply peak measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

METHODS = ("standard", "dss", "pooled", "hf")
CHAT = ("standard (chat)", "dss (chat)")
FP32 = ("standard (fp32)", "dss (fp32)")


def matmul_peak(repeats: int, size: int = 2048) -> float:
    """bf16 GEMM FLOP/s, best of several sizes' medians: the ceiling a training step could reach."""
    best = 0.0
    for n in (size // 2, size, size * 2):
        left, right = torch.randn(n, n, dtype=torch.bfloat16), torch.randn(n, n, dtype=torch.bfloat16)
        torch.matmul(left, right)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(left, right)
            times.append(time.perf_counter() - start)
        best = max(best, 2 * n ** 3 / statistics.median(times))
    return best


@dataclass
class Workload:
    batches: dict  # what the step's loss function receives
    rows: list  # (input ids, labels) of every row trained
    padded: int  # positions in the padded batches, padding included


def workloads(student, examples, max_source: int, max_target: int, prompts=None) -> dict[str, Workload]:
    from stepdistill.student.features import IGNORE, Encoder, TwoTaskCollator, pad_ids, pad_rows, padding_mask, task_texts
    from stepdistill.student.prompts import PREFIX

    prompts = prompts or PREFIX
    encoder = Encoder(student.tokenizer, student.is_seq2seq, max_source, max_target, prompts)
    label_rows, rationale_rows = [], []
    for example in examples:
        texts = task_texts(example, "dss", example.label, example.rationale, prompts=prompts)
        label_rows.append(encoder.encode(*texts.label))
        rationale_rows.append(encoder.encode(*texts.rationale))
    pad = student.tokenizer.pad_token_id
    collate = TwoTaskCollator(pad, student.is_seq2seq)
    features = [{"label_input_ids": li, "label_labels": ll, "rationale_input_ids": ri, "rationale_labels": rl}
                for (li, ll), (ri, rl) in zip(label_rows, rationale_rows)]
    dss = collate(features)
    standard = {"label": dss["label"]}
    both = label_rows + rationale_rows
    pooled = {"label": pad_rows(both, pad, student.is_seq2seq)}
    ids = [row for row, _ in both]
    hf = {"input_ids": torch.tensor(pad_ids(ids, pad, left=False)),
          "attention_mask": torch.tensor(padding_mask(ids, left=False)),
          "labels": torch.tensor(pad_ids([labels for _, labels in both], IGNORE, left=False))}

    def positions(batch):
        return sum(rows["input_ids"].numel() + (rows["labels"].numel() if student.is_seq2seq else 0)
                   for rows in batch.values())

    return {"standard": Workload(standard, label_rows, positions(standard)),
            "dss": Workload(dss, both, positions(dss)),
            "pooled": Workload(pooled, both, positions(pooled)),
            "hf": Workload(hf, both, hf["input_ids"].numel() * (2 if student.is_seq2seq else 1))}


def useful_flops(model, rows, is_seq2seq: bool) -> tuple[int, float]:
    """(tokens, FLOPs) of one training step over these rows, padding excluded."""
    from stepdistill.student.features import IGNORE

    config = model.config
    width, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    body = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    tokens = sum(len(ids) + (len(labels) if is_seq2seq else 0) for ids, labels in rows)
    targets = sum(sum(1 for token in labels if token != IGNORE) for _, labels in rows)
    mean_len = tokens / len(rows)
    # 6 FLOPs per weight per token (forward 2, backward 4); attention scores and values: 6 * 2 * L * (T/2) * d
    # per token (causal: T/2 keys on average); the vocabulary projection only where targets are.
    return tokens, 6 * body * tokens + 6 * 2 * layers * (mean_len / 2) * width * tokens + 6 * width * vocab * targets


def main() -> None:
    from stepdistill.student.loss import task_loss, two_task_loss
    from stepdistill.student.models import load_student, set_attention
    from stepdistill.student.prompts import prompt_format
    from stepdistill.tasks import get_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--batch", type=int, default=8, help="examples per step")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--attn", default="auto", help="attention kernel, as `train --attn`")
    parser.add_argument("--max-source-len", type=int, default=256)
    parser.add_argument("--max-target-len", type=int, default=192)
    parser.add_argument("--chat", action="store_true", help="also time standard and dss in the chat input format")
    parser.add_argument("--fp32", action="store_true", help="also time standard and dss without bf16 autocast")
    parser.add_argument("--only", nargs="+", choices=METHODS, help="time only these steps (and their fp32/chat twins)")
    args = parser.parse_args()

    student = load_student(args.student)
    model = student.model
    attention = set_attention(model, args.attn)
    model.train()
    examples = [ex for ex in get_task("svamp", args.data_dir).protocol_split("train") if ex.rationale][: args.batch]
    work = workloads(student, examples, args.max_source_len, args.max_target_len)
    names = METHODS
    if args.chat:
        chat = prompt_format("chat", student.tokenizer, student.is_seq2seq, args.student)
        in_chat = workloads(student, examples, args.max_source_len, args.max_target_len, chat)
        work |= {name: in_chat[name.removesuffix(" (chat)")] for name in CHAT}
        names = METHODS + CHAT
    if args.fp32:
        work |= {name: work[name.removesuffix(" (fp32)")] for name in FP32}
        names = names + FP32
    if args.only:
        names = tuple(name for name in names if name.split(" (")[0] in args.only)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)

    def loss_of(method: str) -> torch.Tensor:
        batch = work[method].batches
        if method == "hf":
            return model(**batch).loss
        method = method.removesuffix(" (fp32)")
        if method == "pooled":
            return task_loss(model, batch["label"], student.is_seq2seq)
        return two_task_loss(model, batch, student.is_seq2seq, 0.5 if method.startswith("dss") else 1.0)[0]

    def step(method: str) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not method.endswith("(fp32)")):
            loss = loss_of(method)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    for method in names:  # warm-up
        step(method)
    times = {method: [] for method in names}
    for _ in range(args.repeats):
        for method in names:
            times[method].append(step(method))
    # the peak's 4096-wide bf16 products take minutes each where bf16 is emulated: --only skips it
    peak = None if args.only else matmul_peak(args.repeats)
    report(args, student, attention, work, times, peak)


def report(args, student, attention: str, work: dict[str, Workload], times: dict, peak: float | None) -> None:
    names = tuple(times)
    median = {method: statistics.median(values) for method, values in times.items()}
    counted = {method: useful_flops(student.model, work[method].rows, student.is_seq2seq) for method in names}
    tokens_per_s = {method: counted[method][0] / median[method] for method in names}
    params = sum(p.numel() for p in student.model.parameters())
    print(f"student {args.student} ({params / 1e6:.1f}M parameters), batch {args.batch} SVAMP examples, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 autocast, {attention} attention, "
          f"fused AdamW, medians of {args.repeats}; load average {open('/proc/loadavg').read().split()[0]}")
    print("| step | rows | tokens | padded positions | s/step | examples/s | tokens/s | useful FLOP/s "
          "| % of bf16 matmul peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for method in names:
        tokens, flops = counted[method]
        print(f"| {method} | {len(work[method].rows)} | {tokens} | {work[method].padded} | {median[method]:.3f} "
              f"| {args.batch / median[method]:.2f} | {tokens_per_s[method]:.0f} | {flops / median[method] / 1e9:.1f} G "
              f"| {f'{100 * flops / median[method] / peak:.1f}%' if peak else 'not measured'} |")
    twins = [name for name in ("standard", "dss") if name in median and f"{name} (fp32)" in median]
    if twins:
        print("\nbf16 autocast / fp32 time per step: "
              + ", ".join(f"{name} {median[name] / median[f'{name} (fp32)']:.2f}x" for name in twins))
    if set(METHODS) <= set(names):  # --only may have left some out
        cost_ratio = median["dss"] / median["standard"]  # same examples per step: cost per example
        token_ratio = counted["dss"][0] / counted["standard"][0]
        print(f"\nheadline: dss cost per example / standard cost per example = {cost_ratio:.2f}x, "
              f"for {token_ratio:.2f}x the tokens; dss tokens/s = "
              f"{tokens_per_s['dss'] / tokens_per_s['standard']:.2f}x standard tokens/s (target >= 0.9x); "
              f"dss vs pooled: {median['pooled'] / median['dss']:.2f}x; "
              f"dss vs stock HF step: {median['hf'] / median['dss']:.2f}x")
    if set(CHAT) | {"standard", "dss"} <= set(names):
        print(f"chat format: standard {median['standard (chat)'] / median['standard']:.2f}x and dss "
              f"{median['dss (chat)'] / median['dss']:.2f}x the prefix format's time per step, for "
              f"{counted['standard (chat)'][0] / counted['standard'][0]:.2f}x and "
              f"{counted['dss (chat)'][0] / counted['dss'][0]:.2f}x its tokens")
    if peak:
        print(f"bf16 matmul peak measured in this run: {peak / 1e9:.1f} GFLOP/s")
    print("all times (s): " + "; ".join(f"{m} {[round(x, 3) for x in times[m]]}" for m in names))


if __name__ == "__main__":
    main()
