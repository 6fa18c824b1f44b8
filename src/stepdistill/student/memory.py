"""Keeping a CPU training process's resident memory near what its tensors need.

torch's CPU tensors come from glibc malloc. Two of its defaults let a training run's RSS grow far beyond its
live tensors: the mmap threshold rises (up to 32 MiB) each time a large block is freed, after which the
large, differently-shaped activation and logits buffers of every step come from the heap, where freed space
fragments and is rarely returned; and each thread gets its own arena. Fixing the threshold makes every large
buffer its own mapping, returned to the system when freed. Measured with benchmarks/bench_memory.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc

M_ARENA_MAX = -8  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20  # buffers of 1 MiB and more (weights, activations, logits) are mapped alone
ARENAS = 2


@functools.lru_cache(maxsize=None)
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_allocator_growth() -> bool:
    """Fixed mmap threshold and few arenas (glibc only; elsewhere nothing happens). True when applied."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(libc.mallopt(M_ARENA_MAX, ARENAS))


def release_free_memory() -> None:
    """Give freed heap memory back to the system, e.g. after validation generation."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
