import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared benchmark data: $STEPDISTILL_DATA or ../shared/datasets beside the checkout."""
    path = Path(os.environ.get("STEPDISTILL_DATA", ROOT.parent / "shared" / "datasets"))
    assert path.is_dir(), f"benchmark data not found at {path}; set STEPDISTILL_DATA"
    return path
