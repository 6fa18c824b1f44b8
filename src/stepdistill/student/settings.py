"""The settings of `stepdistill train`: one field per command-line flag, saved into every run folder."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..cliargs import option
from ..errors import DataError
from .features import METHODS
from .prompts import INPUT_FORMATS


@dataclass
class TrainSettings:
    task: str = option("svamp", "task: cqa, svamp, anli1, esnli, PATH[:SCORER] (a .jsonl/.csv/.tsv/.parquet "
                                "file or folder) or hf:NAME[:CONFIG][:SCORER]")
    method: str = option("dss", "standard (x->y), dss (two tasks), single (x -> rationale then label)", choices=METHODS)
    labels: str = option("gold", "train on gold labels or the teacher's labels (the unlabeled setting)",
                         choices=("gold", "teacher"))
    student: str = option("smollm2", "hub id, local folder, gguf:PATH, smollm2 (embedded), gemma3-270m (a package), "
                          "tiny-t5 or tiny-llama")
    input_format: str = option("auto", "how the student sees a task: prefix (`[label] x`, `[rationale] x`, the "
                                       "paper's), chat (its own chat template, a system message naming the task; "
                                       "decoder-only students with a chat template), or auto (chat where the student "
                                       "has one, else prefix; run.json records which)", choices=INPUT_FORMATS)
    out: str = option("", "run folder (created); holds model/, run.json, predictions and logs", required=True)
    data_dir: str | None = option(None, "the release's datasets/ folder (default $STEPDISTILL_DATA, ./datasets)")
    rationales: str | None = option(None, "a `stepdistill extract` output folder: its rationales and teacher labels "
                                           "(default: the released completions)")
    hinted: str = option("include", "rationales from extract --rationalize (rows tagged hinted): include or exclude",
                         choices=("include", "exclude"))
    rationales_per_input: str = option("1", "with several kept rationales per input (extract --samples N): 1 (the "
                                            "first) or all (each extra one a rationale-only row: the label task still sees "
                                            "each input once)", choices=("1", "all"))
    fraction: float = option(1.0, "fraction of the training split to use, a seeded subset (nested across sizes)")
    seed: int = option(0, "seed for the data subset, shuffling and initialisation")
    alpha: float = option(0.5, "dss: loss = alpha * L_label + (1 - alpha) * L_rationale")
    alpha_schedule: str = option("constant", "dss: constant alpha, or linear (the rationale weight 1 - alpha "
                                             "decays to 0 over training)", choices=("constant", "linear"))
    epochs: float = option(5.0, "training epochs (ignored when --max-steps > 0)")
    max_steps: int = option(-1, "optimizer steps; overrides --epochs when > 0")
    batch_size: int = option(8, "training rows per device per step (dss: a row brings a label and a rationale "
                                "part; an extra rationale, --rationales-per-input all, its rationale part only)")
    grad_accum: int = option(1, "gradient accumulation steps")
    lr: float = option(1e-4, "peak learning rate (AdamW, linear decay)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup: float = option(0.0, "warm-up: a fraction of the steps (< 1) or a number of steps")
    max_source_len: int = option(512, "longest input in tokens, also at eval/predict (longer inputs keep their "
                                      "task prefix and the end of their text)")
    max_target_len: int = option(256, "longest target in tokens (rationales are cut there; single keeps its answer)")
    label_max_new_tokens: int = option(48, "tokens generated for a label at evaluation (single: --max-target-len)")
    select_on: str = option("auto", "labels that validation accuracy (checkpoint selection) is scored against: "
                                     "gold, or the teacher's (auto: the same as --labels)",
                             choices=("auto", "gold", "teacher"))
    eval_steps: int = option(0, "evaluate validation accuracy every N steps (0: once an epoch); the best is kept")
    eval_epochs: float = option(0.0, "evaluate every N epochs instead (rounded up to whole steps), so that a sweep "
                                     "over data fractions checks every fraction at the same point of its training")
    eval_limit: int = option(0, "evaluate on at most N validation examples (0: all)")
    eval_batch_size: int = option(32, "examples per generation batch")
    test: bool = option(True, "evaluate the chosen checkpoint on the test split once, at the end")
    test_each_eval: bool = option(False, "analysis only: also score test at every evaluation, written to "
                                         "checkpoint_scores.jsonl (accuracy and the items right) to measure "
                                         "selection noise (never used to choose)")
    attn: str = option("auto", "attention kernel: auto (eager on CPU, the model's default on GPU), eager, sdpa",
                       choices=("auto", "eager", "sdpa", "flash_attention_2"))
    activation_checkpointing: bool = option(False, "recompute activations in the backward pass: less memory "
                                                   "(the activations of a long-rationale batch), more compute")
    lora: bool = option(False, "train LoRA adapters (peft) instead of all weights; merged into the saved model")
    lora_r: int = option(16, "LoRA rank")
    bf16: bool = option(False, "bf16 autocast (about 1.7x faster than fp32 on a CPU with bf16 instructions, "
                               "several times slower on one without, e.g. AVX2 only)")
    resume: bool = option(False, "continue a run killed mid-way from its last checkpoint")
    overwrite: bool = option(False, "replace a finished run in --out (its run.json, model/ and checkpoints)")
    logging_steps: int = option(10, "log both loss parts every N steps")
    save_total_limit: int = option(2, "checkpoints kept on disk (the best one always stays)")
    progress: bool = option(True, "show progress bars")

    def __post_init__(self):
        if not self.out:
            raise DataError("train needs --out (the run folder)")
        if not 0.0 <= self.alpha <= 1.0:
            raise DataError(f"--alpha must be in [0, 1], got {self.alpha}")
        if not 0.0 < self.fraction <= 1.0:
            raise DataError(f"--fraction must be in (0, 1], got {self.fraction}")
        self.rationales_per_input = str(self.rationales_per_input)  # a YAML config may say 1, not "1"
        check_choices(self)
        check_numbers(self)

    @property
    def effective_alpha(self) -> float:
        """The weight of the label loss in training: alpha for dss; standard and single train the label task only."""
        return self.alpha if self.method == "dss" else 1.0

    @property
    def selection_labels(self) -> str:
        """gold or teacher: what validation predictions are scored against when choosing the checkpoint."""
        return self.labels if self.select_on == "auto" else self.select_on

    @property
    def label_tokens(self) -> int:
        """Tokens generated per prediction: a label, or for `single` the rationale and then the label."""
        return self.max_target_len if self.method == "single" else self.label_max_new_tokens


# The smallest value each numeric setting accepts: (minimum, whether the minimum itself is allowed).
MINIMUMS = {
    "batch_size": (1, True), "grad_accum": (1, True), "eval_batch_size": (1, True), "lr": (0, False),
    "weight_decay": (0, True), "warmup": (0, True), "max_source_len": (1, True), "max_target_len": (1, True),
    "label_max_new_tokens": (1, True), "eval_steps": (0, True), "eval_epochs": (0, True), "eval_limit": (0, True),
    "logging_steps": (1, True), "save_total_limit": (1, True), "lora_r": (1, True), "seed": (0, True),
    "epochs": (0, True),
}


def check_numbers(settings: TrainSettings) -> None:
    """Every numeric setting in its range, and some training to do: an untrained model is never "done"."""
    for name, (minimum, inclusive) in MINIMUMS.items():
        value = getattr(settings, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or \
                value < minimum or (value == minimum and not inclusive):
            bound = f"at least {minimum}" if inclusive else f"greater than {minimum}"
            raise DataError(f"--{name.replace('_', '-')} must be a number {bound}, got {value!r}")
    if not isinstance(settings.max_steps, int) or settings.max_steps < -1:
        raise DataError(f"--max-steps must be a positive number of steps, or -1 or 0 to train --epochs, "
                        f"got {settings.max_steps!r}")
    if settings.eval_steps > 0 and settings.eval_epochs > 0:
        raise DataError(f"--eval-steps {settings.eval_steps} and --eval-epochs {settings.eval_epochs} both set "
                        "the validation interval; give one of them")
    if settings.max_steps <= 0 and settings.epochs <= 0:
        raise DataError(f"nothing to train: --max-steps {settings.max_steps} and --epochs {settings.epochs}; "
                        "give --epochs > 0 or --max-steps > 0")


def check_choices(settings: TrainSettings) -> None:
    """Fields with a fixed set of values (the CLI checks these too, a sweep config or Python caller does not)."""
    for field in dataclasses.fields(settings):
        choices = field.metadata.get("choices")
        if choices and getattr(settings, field.name) not in choices:
            raise DataError(f"--{field.name.replace('_', '-')} must be one of {', '.join(choices)}, "
                            f"got {getattr(settings, field.name)!r}")
