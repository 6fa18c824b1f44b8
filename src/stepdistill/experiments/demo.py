"""`make demo` / `stepdistill demo`: the whole pipeline, offline, on the embedded defaults.

1. write a small generated task (one-step arithmetic word problems) and its few-shot prompt;
2. the local SmolLM2 teacher (llama.cpp, in process) writes a rationale and an answer for each training input,
   and, where its answer is wrong, a second one with the right answer as a hint (`--rationalize`);
3. SmolLM2 students train with `dss` and with `standard` on the same data, steps and settings;
4. both are evaluated (validation picks the checkpoint, test once) and the report is written;
5. the dss student is exported to GGUF and answers three test questions through the llama.cpp server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..cliargs import option
from ..provenance import bf16_is_emulated


@dataclass
class DemoSettings:
    out: str = option("demo_out", "output folder")
    examples: int = option(160, "training examples in the generated task")
    epochs: float = option(3.0, "training epochs per student")
    teacher_max_tokens: int = option(64, "longest teacher completion in tokens")
    rationalize: bool = option(True, "ask the teacher again, with the gold answer as a hint, where it was wrong "
                                     "(raised the share of rationales with the right answer from 29% to 69% here)")


def run_demo(settings: DemoSettings) -> Path:
    from ..teacher.commands import describe
    from ..teacher.extract import ExtractSettings, run_extract
    from .report import write_report
    from .sample_task import write_sample_task
    from .sweep import run_sweep

    out = Path(settings.out).resolve()
    started = time.time()
    print(f"[1/5] writing the sample task to {out / 'task'}", flush=True)
    task_dir = write_sample_task(out / "task", n_train=settings.examples)
    task = f"jsonl:{task_dir}:numeric"

    print("[2/5] the local SmolLM2 teacher writes rationales for the training inputs", flush=True)
    manifest = run_extract(ExtractSettings(task=task, split="train", out=str(out / "rationales"), teacher="local",
                                           prompt=str(task_dir / "prompt.yaml"), keep="parsed",
                                           max_tokens=settings.teacher_max_tokens, rationalize=settings.rationalize))
    print(describe(manifest), flush=True)

    print("[3/5] training SmolLM2 students: standard finetuning and distilling step-by-step", flush=True)
    config = {
        "name": "demo", "tasks": [task], "methods": ["standard", "dss"], "labels": ["gold"], "fractions": [1.0],
        "students": ["smollm2"], "seeds": [0],
        # keyed by the task's name as runs record it; measured on the training inputs the teacher answered
        "teacher_accuracy": {manifest["task"]: manifest["teacher_accuracy"]} if manifest.get("teacher_accuracy") else {},
        # fp32 where bf16 would be emulated (an AVX2-only CPU: several times slower; BENCHMARKS)
        "train": {"rationales": str(out / "rationales"), "epochs": settings.epochs, "batch_size": 8, "lr": 1e-4,
                  "warmup": 0.05, "bf16": not bf16_is_emulated(), "max_source_len": 128, "max_target_len": 96,
                  "label_max_new_tokens": 12, "eval_batch_size": 40, "save_total_limit": 1},
    }
    sweep_dir = out / "sweep"
    sweep_dir.mkdir(parents=True, exist_ok=True)
    config_path = out / "demo_sweep.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    run_sweep(config_path, sweep_dir)

    print("[4/5] writing the report", flush=True)
    paths = write_report(sweep_dir)
    print(paths["markdown"].read_text())

    print("[5/5] shipping the dss student: GGUF export, three test questions through the server", flush=True)
    from ..deploy.demo_serve import answer_through_server
    answer_through_server(sweep_dir)
    print(f"demo finished in {(time.time() - started) / 60:.1f} min; report: {paths['html']}", flush=True)
    return paths["html"]
