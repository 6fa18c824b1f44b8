"""A Hugging Face dataset as a task: `hf:NAME[:CONFIG][:SCORER]`, read with `datasets.load_dataset`.

NAME is a hub dataset (read from the local cache when offline), a local folder of data files (the
`datasets` library infers the format and the splits from the file names) or one local data file
(.jsonl, .csv, .tsv, .parquet; used as train). The dataset's own splits are used: `train`, `validation`
(or `valid`, `dev`) and `test`; with no validation split, 10% of train is held out (seed 0), or the
spec's `valid_fraction`. A label
column of type ClassLabel gives its class names as labels.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..scoring import SCORERS
from .rows import VALID_NAMES, RowTask
from .spec import TaskSpec
from .tables import table_format

BUILDERS = {"jsonl": ("json", {}), "csv": ("csv", {}), "tsv": ("csv", {"delimiter": "\t"}), "parquet": ("parquet", {})}


def parse_hf(rest: str) -> tuple[str, str | None, str]:
    """NAME[:CONFIG][:SCORER] -> (name, config, scorer)."""
    parts = rest.split(":")
    scorer = parts.pop() if len(parts) > 1 and parts[-1] in SCORERS else "exact"
    if not parts[0] or len(parts) > 2:
        raise DataError(f"hf:{rest}: expected hf:NAME[:CONFIG][:SCORER]")
    return parts[0], parts[1] if len(parts) == 2 and parts[1] else None, scorer


def load(name: str, config: str | None):
    """The DatasetDict, its splits renamed to the protocol's (train, valid, test)."""
    import datasets

    local = Path(name)
    try:
        if local.is_file():
            builder, kwargs = BUILDERS[table_format(local)]
            loaded = datasets.load_dataset(builder, data_files={"train": str(local)}, **kwargs)
        else:
            loaded = datasets.load_dataset(name, config)
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001: the datasets library raises many kinds; the message is what helps
        where = f"hf:{name}" + (f":{config}" if config else "")
        raise DataError(f"{where}: could not load it ({type(error).__name__}: {error})") from None
    splits = {}
    for split, data in loaded.items():
        protocol = "valid" if split in VALID_NAMES else split
        if protocol in ("train", "valid", "test"):
            splits[protocol] = data
    if "train" not in splits and "test" not in splits:
        raise DataError(f"hf:{name}: no train or test split (it has {', '.join(loaded) or 'none'})")
    return splits


class HFTask(RowTask):
    def __init__(self, spec: TaskSpec):
        name, config, scorer = parse_hf(spec.source[len("hf:"):])
        super().__init__(spec, scorer, Path(name))
        self.dataset_name, self.config = name, config
        self.splits = load(name, config)
        self.name = f"hf:{name}" + (f":{config}" if config else "")
        self.use_splits(self.splits, self.name)

    def input_path(self, split: str) -> Path:
        files = [f["filename"] for f in self.splits[split].cache_files] if split in self.splits else []
        return Path(files[0]) if len(files) == 1 else Path(self.dataset_name) / split

    def source(self, split: str) -> str:
        return f"{self.name} ({split} split)"

    def columns(self, split: str) -> list[str]:
        return list(self.splits[split].column_names)

    def rows(self, split: str):
        data = self.splits[split]
        if len(data) == 0:
            raise DataError(f"{self.source(split)}: empty (no rows)")
        label = self.format.label_column or "label"
        names = getattr(data.features.get(label), "names", None)  # ClassLabel: ids -> class names
        for index, row in enumerate(data):
            if names is not None and isinstance(row.get(label), int) and 0 <= row[label] < len(names):
                row = {**row, label: names[row[label]]}
            yield f"{self.source(split)} row {index + 1}", row
