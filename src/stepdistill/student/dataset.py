"""The training data of a run: examples -> token-id rows for the Trainer, plus what run.json says about them."""

from __future__ import annotations

from pathlib import Path

from ..jsonio import write_jsonl
from ..provenance import file_sha256
from .data import TrainingExample
from .features import Encoder, task_texts
from .settings import TrainSettings

COLUMNS = ("label_input_ids", "label_labels", "rationale_input_ids", "rationale_labels", "length",
           "input_cut", "target_cut")
RATIONALE_SAMPLE_FILE = "rationales_sample.jsonl"  # read by `stepdistill report`


def build_dataset(train_examples: list[TrainingExample], method: str, encoder: Encoder):
    """One row per training example with both tasks' ids (empty for a part the row lacks; a row with neither part,
    an extra rationale under `standard`, is left out); `length` lets the sampler group similar lengths;
    `input_cut` / `target_cut` say whether the example's input or a target was longer than the limits."""
    import datasets

    columns: dict[str, list] = {name: [] for name in COLUMNS}
    for item in train_examples:
        sources_cut, targets_cut = encoder.sources_cut, encoder.targets_cut
        texts = task_texts(item.example, method, item.label, item.rationale, item.label_row, encoder.prompts)
        if texts.label is None and texts.rationale is None:
            continue
        label_ids, label_labels = encoder.encode(*texts.label) if texts.label else ([], [])
        rationale_ids, rationale_labels = encoder.encode(*texts.rationale) if texts.rationale else ([], [])
        columns["label_input_ids"].append(label_ids)
        columns["label_labels"].append(label_labels)
        columns["rationale_input_ids"].append(rationale_ids)
        columns["rationale_labels"].append(rationale_labels)
        targets = len(label_labels) + len(rationale_labels) if encoder.is_seq2seq else 0  # decoder tokens
        columns["length"].append(len(label_ids) + len(rationale_ids) + targets)
        columns["input_cut"].append(encoder.sources_cut > sources_cut)
        columns["target_cut"].append(encoder.targets_cut > targets_cut)
    return datasets.Dataset.from_dict(columns)


def count_tokens(dataset, is_seq2seq: bool) -> int:
    """Input + target tokens of one pass over the data (padding excluded): the unit of throughput."""
    total = 0
    for key in ("label", "rationale"):
        ids, labels = dataset[f"{key}_input_ids"], dataset[f"{key}_labels"]
        total += sum(len(row) for row in ids) + (sum(len(row) for row in labels) if is_seq2seq else 0)
    return total


def truncation_record(dataset, settings: TrainSettings) -> dict:
    """How many training examples had their input or a target cut to fit the length limits."""
    return {"inputs_cut": sum(dataset["input_cut"]), "targets_cut": sum(dataset["target_cut"]),
            "max_source_len": settings.max_source_len, "max_target_len": settings.max_target_len}


def data_hashes(task, settings: TrainSettings) -> dict[str, str]:
    """sha256 of every file the run read: inputs, and the released completions or the extracted rationales."""
    files = [task.input_path(split) for split in task.release_splits]
    if settings.rationales:
        files.append(Path(settings.rationales) / "rationales.jsonl")
    else:
        files += [path for split in task.release_splits for path in task.teacher_files(split)]
    return {str(path): file_sha256(path) for path in files if path.is_file()}


def write_rationale_sample(out: Path, train_examples: list[TrainingExample], size: int = 5) -> None:
    """A few of the (input, rationale, label) rows the run trained on, so a report can show them: the first `size`
    of the teacher's own rationales, then the first `size` hinted ones (extract --rationalize), tagged `hinted`."""
    with_rationale = [item for item in train_examples if item.rationale]
    chosen = [item for item in with_rationale if not item.hinted][:size] + \
        [item for item in with_rationale if item.hinted][:size]
    write_jsonl(out / RATIONALE_SAMPLE_FILE, [{"id": item.example.id, "input": item.example.input,
                                              "rationale": item.rationale, "label": item.label, "hinted": item.hinted}
                                             for item in chosen])
