"""Keep freed memory in the process for the next batch (glibc), instead of returning it to the system and faulting
it back in page by page.

A forward pass on the CPU frees and allocates the same large tensors every batch. glibc's malloc serves each
allocation above its mmap threshold (128 KiB, rising to at most 32 MiB) with a fresh ``mmap`` and unmaps it on
``free``, and trims the heap top beyond twice the threshold, so every batch touches much of its activations and
output maps as new pages, each one a minor page fault that the kernel zero-fills. Measured on 2 cores (AMD EPYC),
one phantom training epoch (``landmark-afl train --epochs 1``, mean of 3 runs) took 5.0 million page faults and
10.8 s of system time beside 55 s of user time; with the memory kept, 0.4 million and 2.0 s, and the training log
shows 6.7 instead of 5.5 img/s. PyTorch's CPU tuning guide answers this with jemalloc or TCMalloc; two ``mallopt``
settings give glibc the same reuse with no extra dependency: the main heap serves large allocations instead of
``mmap`` (``M_MMAP_MAX = 0``: reused after ``free``; an allocation of another thread beyond its arena's 64 MiB
still falls back to ``mmap``) and the heap top is trimmed only when 256 MiB of it are free
(``M_TRIM_THRESHOLD``). The price is memory: each process keeps most of its peak heap until it exits (that epoch:
1.85 instead of 1.50 GB peak RSS of the largest process; a 1 GiB threshold saved little more system time for
1.9-2.0 GB). DataLoader workers, forked after the setting, inherit it. ``scripts/bench_malloc.py`` measures both
policies in one process.

``landmark-afl train / evaluate / compare / predict`` call :func:`retain_freed_memory` first. Elsewhere (another
C library, an allocator preloaded with ``LD_PRELOAD`` such as jemalloc or TCMalloc, ``LANDMARK_AFL_MALLOC=default``
in the environment) nothing changes. ``predict``'s reader stream also calls :func:`release_free_memory` just
before it forks its reader processes; that one trim changes no setting, so it runs whatever
``LANDMARK_AFL_MALLOC`` says (not for another C library or a preloaded allocator).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

ENV = "LANDMARK_AFL_MALLOC"  # "default": leave malloc as it is
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's <malloc.h> parameter numbers
TRIM_THRESHOLD_BYTES = 256 << 20


def retain_freed_memory() -> str:
    """Apply the settings of the module doc where they apply; returns what was done, for logs and benchmarks:
    "retained", "default (LANDMARK_AFL_MALLOC=default)", "default (not glibc)", "default (an allocator in
    LD_PRELOAD)" or "default (mallopt refused)"."""
    if os.environ.get(ENV, "").strip().lower() == "default":
        return f"default ({ENV}=default)"
    libc, why = _glibc()
    if libc is None:
        return f"default ({why})"
    try:
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    except AttributeError:
        return "default (not glibc)"
    return "retained" if ok else "default (mallopt refused)"


def release_free_memory() -> bool:
    """Hand free memory back to the system (glibc's ``malloc_trim(0)``: the main heap's free top and the free
    chunks of every arena); True if it was called.

    For just before forking a worker process: the free pages a process keeps (see the module doc) are shared with
    a forked child, so each one the parent writes afterwards is copied first; after the trim they come back
    zero-filled instead (as many page faults, each cheaper), and the fork has fewer pages to map. The README
    ("Performance", predict) has the figures. Nothing happens for another C library or an allocator in
    ``LD_PRELOAD``.
    """
    libc, _ = _glibc()
    if libc is None:
        return False
    try:
        trim = libc.malloc_trim
    except AttributeError:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True


def _glibc() -> tuple[ctypes.CDLL | None, str]:
    """(glibc, "") where malloc is glibc's own, else (None, why not)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None, "not glibc"
    preload = os.environ.get("LD_PRELOAD", "")
    if any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return None, "an allocator in LD_PRELOAD"
    try:
        return ctypes.CDLL("libc.so.6"), ""
    except OSError:
        return None, "not glibc"
