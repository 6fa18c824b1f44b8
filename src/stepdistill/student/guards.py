"""Data checks a training run makes before its first step, so that it fails in seconds, not after hours:
extracted rationales that belong to other inputs, a test split that is not there, a validation split too
small to choose a checkpoint on, a student that cannot be found, or one that cannot take the input format."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from ..errors import DataError
from ..jsonio import iter_jsonl, read_json
from ..tasks.base import Example, Task
from .prompts import PREFIX, PromptFormat, prompt_format

MIN_VALID = 10  # below this, validation accuracy moves in steps of 10 points or more: selection is mostly noise


def check_rationales(folder: str | Path, pool: list[Example]) -> None:
    """An extraction folder must exist and hold the rationales of these inputs: ids alone match two datasets
    without `id` fields (both `train-N`), so each row's input text is compared with the task's."""
    from ..teacher.output import MANIFEST_FILE, RATIONALES_FILE

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: --rationales folder not found")
    if not (folder / MANIFEST_FILE).is_file() or not (folder / RATIONALES_FILE).is_file():
        return  # read_rationales says the extraction did not finish
    inputs = {example.id: normalise(example.input) for example in pool}
    compared = differing = 0
    first = None
    for lineno, row in iter_jsonl(folder / RATIONALES_FILE):
        example_id, text = str(row.get("id")), row.get("input")
        if example_id not in inputs or not isinstance(text, str):
            continue
        compared += 1
        if normalise(text) != inputs[example_id]:
            differing += 1
            first = first or f"line {lineno}, id {example_id}"
    if differing:
        manifest = read_json(folder / MANIFEST_FILE)
        raise DataError(f"{folder / RATIONALES_FILE}: {differing} of {compared} rows have another input than the "
                        f"training example with their id (first: {first}); it was extracted from "
                        f"{manifest.get('task')} {manifest.get('input_file')}, not this task's inputs")


def normalise(text: str) -> str:
    return " ".join(text.split())


def check_test_split(task: Task) -> None:
    """The test split is read before training, so a missing one stops the run before it trains, not after."""
    try:
        test = task.protocol_split("test", with_teacher=False)
    except DataError as error:
        raise DataError(f"{error}; pass --no-test to train without a test split") from None
    if not test:
        raise DataError(f"task {task.name}: the test split has no examples; pass --no-test to train without it")


def warn_small_validation(task: Task, valid: list[Example]) -> None:
    if not valid:
        print(f"warning: task {task.name} has no validation examples: checkpoint selection has nothing to choose "
              "on, so the last checkpoint is as good as any", file=sys.stderr)
    elif len(valid) < MIN_VALID:
        print(f"warning: task {task.name} has only {len(valid)} validation examples: checkpoint selection has "
              "almost nothing to choose on", file=sys.stderr)


def warn_slow_bf16(bf16: bool) -> None:
    """bf16 autocast on a CPU without bf16 instructions is emulated, many times slower than fp32: say so before
    the first step rather than let a one-hour run take a day. The setting is the user's, so it is kept."""
    import torch

    from ..provenance import bf16_is_emulated

    if bf16 and bf16_is_emulated():
        print(f"warning: bf16 on a CPU without bf16 instructions (torch capability "
              f"{torch.backends.cpu.get_cpu_capability()}, no AVX512-BF16 or AMX): every bf16 matrix multiply is "
              "emulated, and a training step takes several times as long as in fp32 (7.9x measured for SmolLM2); "
              "train without --bf16 (bf16: false in a sweep config) on this machine", file=sys.stderr)


def check_student(spec: str) -> None:
    """A student that is known before any model is loaded: a built-in name, an existing file or folder,
    or a hub id written owner/name (a bare unknown word is most likely a typo of a built-in name)."""
    from .models import PACKAGED_GGUF, TINY_SPECS

    if spec in TINY_SPECS or spec in PACKAGED_GGUF:
        return
    if spec.startswith("gguf:"):
        if not Path(spec[len("gguf:"):]).is_file():
            raise DataError(f"{spec[len('gguf:'):]}: GGUF file not found (--student {spec})")
        return
    looks_like_path = spec.startswith((".", "/", "~")) or Path(spec).exists()
    if looks_like_path and not Path(spec).expanduser().is_dir():
        raise DataError(f"{spec}: student folder not found")
    if not looks_like_path and spec.count("/") != 1:
        raise DataError(f"unknown student '{spec}' (expected smollm2, gemma3-270m, tiny-t5, tiny-llama, gguf:PATH, "
                        "a model folder, or a hub id owner/name)")


def check_input_format(input_format: str, student: str) -> PromptFormat:
    """The run's input format for this student, before any work: chat needs a decoder-only student whose tokenizer
    has a chat template, and auto takes chat where it can (only the tokenizer and config are loaded here, not the
    weights)."""
    if input_format == "prefix":
        return PREFIX
    from .models import load_tokenizer

    tokenizer, is_seq2seq = load_tokenizer(student)
    return prompt_format(input_format, tokenizer, is_seq2seq, student)


def with_input_format(settings, prompts: PromptFormat | None = None):
    """`settings` with --input-format auto resolved to what this student gets (prefix or chat), as settings.json
    and run.json keep it: a resumed run or sweep cell then compares like with like."""
    prompts = prompts or check_input_format(settings.input_format, settings.student)
    return dataclasses.replace(settings, input_format=prompts.name)
