"""Keep freed memory in the process for the next batch (glibc), instead of returning it to the system and faulting
it back in page by page.

A forward pass on the CPU frees and allocates the same large tensors every batch. glibc's malloc serves each
allocation above its mmap threshold (128 KiB, rising to at most 32 MiB) with a fresh ``mmap`` and unmaps it on
``free``, and trims the heap top beyond twice the threshold, so every batch touches its activations and output maps
as new pages: tens of thousands of minor page faults per batch, each zero-filled by the kernel. Measured on 2 cores
(AMD EPYC), FPN resnet18, batch 8 at 256 px, 19 maps: 33 000 faults and 110 ms of system time per forward in bf16,
129 000 and 375 ms in fp32; with the memory kept, none (``scripts/bench_malloc.py``). This is the problem PyTorch's
CPU tuning guide answers with jemalloc or TCMalloc; the two ``mallopt`` settings here give glibc the same reuse
with no extra dependency: no allocation is served by ``mmap`` (``M_MMAP_MAX = 0``: from the heap, reused after
``free``) and the heap is trimmed only when 1 GiB at its top is free (``M_TRIM_THRESHOLD``). The process keeps its
peak heap until it exits, which a training or predict run reaches in its first batches anyway.

``landmark-afl train / evaluate / compare / predict`` call :func:`retain_freed_memory` first. Elsewhere (another
C library, ``LANDMARK_AFL_MALLOC=default`` in the environment) nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

ENV = "LANDMARK_AFL_MALLOC"  # "default": leave malloc as it is
_M_TRIM_THRESHOLD = -1  # glibc's <malloc.h> parameter numbers
_M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 1 << 30


def retain_freed_memory() -> str:
    """Apply the settings of the module doc where they apply; returns what was done, for logs and benchmarks:
    "retained", "default (LANDMARK_AFL_MALLOC=default)", "default (not glibc)" or "default (mallopt refused)"."""
    if os.environ.get(ENV, "").strip().lower() == "default":
        return f"default ({ENV}=default)"
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return "default (not glibc)"
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    except (OSError, AttributeError):
        return "default (not glibc)"
    return "retained" if ok else "default (mallopt refused)"
