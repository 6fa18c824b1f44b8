"""What every output folder records about where it came from: hashes of the files read, library versions, and the
hardware a training ran on."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from . import __version__


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks (rationale files can be large)."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def source_commit(folder: str | Path = Path(__file__).parent) -> str | None:
    """The git commit stepdistill's code was run from ("+dirty" when its tracked files have changes), so two runs
    made with the same version number but different code can be told apart; None when the code is not tracked
    by git (an installed wheel, even in a virtual environment inside some other project's repository) or
    without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        git("ls-files", "--error-unmatch", "--", "__init__.py")  # fails unless this code itself is in the repository
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "."))
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def library_versions(*distributions: str) -> dict[str, str]:
    """stepdistill's and Python's versions (with the git commit of a source checkout), and each named
    distribution's installed version."""
    found = {"stepdistill": __version__, "python": platform.python_version()}
    commit = source_commit()
    if commit:
        found["stepdistill_commit"] = commit
    for name in distributions:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def hardware() -> dict:
    """The machine a training ran on: bf16 arithmetic takes different kernels on different CPUs (AVX2, AVX-512,
    AMX) and GPUs, so the same code, settings and seed can score differently on another machine (seen here: 3
    points of SVAMP test accuracy at the first checkpoint). Comparing runs from two machines needs to know it."""
    import torch  # here, not at the top: extraction records provenance without needing torch

    return {
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16_instructions": cpu_bf16_instructions(),
        "torch_threads": torch.get_num_threads(),
        "gpus": [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())],
    }


def cpu_bf16_instructions() -> bool | None:
    """Whether this x86 CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), as torch itself detects it; None
    where torch cannot say (another architecture, or a torch without these probes). Without them bf16 autocast
    is emulated: a SmolLM2 dss training step took 7.9x as long as in fp32 on a Zen 3 EPYC (BENCHMARKS, "bf16 on
    a CPU without bf16 instructions")."""
    import torch

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if not all(callable(probe) for probe in probes):
        return None
    return any(probe() for probe in probes)


def bf16_is_emulated() -> bool:
    """True where training runs on a CPU (no GPU) that torch says has no bf16 instructions."""
    import torch

    return not torch.cuda.is_available() and cpu_bf16_instructions() is False


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
