"""Peak resident memory (RSS) of a short `stepdistill train` per method, split by phase.

    .venv/bin/python benchmarks/bench_memory.py [--student smollm2] [--methods standard dss single]
        [--max-steps 20] [--batch-size 8] [--eval-limit 0]

Each method trains in its own process (a fresh allocator), through `run_train` exactly as `stepdistill train
--config configs/cpu/svamp.yaml` would (bf16, batch 8, max source/target lengths of that config), for
--max-steps steps with one validation pass at the end and no test pass. The child resets the kernel's peak
counter (VmHWM, via /proc/self/clear_refs) at each phase boundary, so each phase's own peak is reported:
load (imports, student, data), train (the steps), validate (label generation on validation), finish
(loading the chosen checkpoint, saving the model). torch's allocations are invisible to tracemalloc;
VmHWM counts everything the process holds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = ("load", "train", "validate", "finish")


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class PhasePeaks:
    """Peak RSS of each phase: the high-water mark is read, then reset, whenever a phase ends."""

    def __init__(self):
        self.peaks_gib: dict[str, float] = {}
        self.phase = "load"
        self.reset()

    @staticmethod
    def reset() -> None:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak resident set size (VmHWM)

    def end(self, next_phase: str) -> None:
        peak = max(status_kib("VmHWM") / 2**20, self.peaks_gib.get(self.phase, 0.0))
        self.peaks_gib[self.phase] = round(peak, 2)
        self.phase = next_phase
        self.reset()


def child(args: argparse.Namespace) -> None:
    """Runs in the measured process: one training run with phase markers around the evaluator."""
    peaks = PhasePeaks()
    from stepdistill.student import selection, train
    from stepdistill.student.settings import TrainSettings

    evaluate, finish = selection.CheckpointEvaluator.__call__, train.score_chosen_checkpoint

    def measured_evaluate(self, model, state):
        peaks.end("validate")
        accuracy = evaluate(self, model, state)
        peaks.end("train")
        return accuracy

    def measured_finish(*call_args, **kwargs):
        peaks.end("finish")
        return finish(*call_args, **kwargs)

    if args.default_allocator:  # the "before" figures: glibc's defaults, as before memory.py
        train.limit_allocator_growth = lambda: False
    selection.CheckpointEvaluator.__call__ = measured_evaluate
    train.score_chosen_checkpoint = measured_finish
    settings = TrainSettings(task="svamp", method=args.method, student=args.student, out=args.out, bf16=True,
                             batch_size=args.batch_size, max_steps=args.max_steps, eval_steps=args.max_steps,
                             eval_limit=args.eval_limit, max_source_len=256, max_target_len=192, label_max_new_tokens=32,
                             eval_batch_size=40,
                             test=False, progress=False, save_total_limit=1, logging_steps=5,
                             activation_checkpointing=args.activation_checkpointing)
    started = time.time()
    record = train.run_train(settings)
    peaks.end("done")
    peaks.peaks_gib.pop("done", None)
    print(json.dumps({"method": args.method, "peak_gib": peaks.peaks_gib, "overall_gib": max(peaks.peaks_gib.values()),
                      "seconds": round(time.time() - started, 1), "steps": record["steps"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--methods", nargs="+", default=["standard", "dss", "single"])
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-limit", type=int, default=0, help="validation examples (0: all 80 of SVAMP)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc malloc's defaults (what runs did before student/memory.py)")
    parser.add_argument("--activation-checkpointing", action="store_true", help="as `train --activation-checkpointing`")
    parser.add_argument("--method", help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        return child(args)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"student {args.student}, batch {args.batch_size}, {args.max_steps} steps + one validation pass, "
          f"bf16, {'default' if args.default_allocator else 'tuned'} allocator, activation checkpointing "
          f"{'on' if args.activation_checkpointing else 'off'}; load average at start {' '.join(load)}")
    print("| method | load GiB | train GiB | validate GiB | finish GiB | peak GiB | wall s |")
    print("|---|---|---|---|---|---|---|")
    for method in args.methods:
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, __file__, "--method", method, "--out", out, "--student", args.student,
                       "--max-steps", str(args.max_steps), "--batch-size", str(args.batch_size),
                       "--eval-limit", str(args.eval_limit)] + \
                [flag for flag, on in (("--default-allocator", args.default_allocator),
                                       ("--activation-checkpointing", args.activation_checkpointing)) if on]
            done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{method}: training failed\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        peaks = result["peak_gib"]
        print(f"| {method} | " + " | ".join(f"{peaks.get(phase, float('nan')):.2f}" for phase in PHASES)
              + f" | **{result['overall_gib']:.2f}** | {result['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
