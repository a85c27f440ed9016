"""Which torch device a run uses."""

from __future__ import annotations

import functools
from pathlib import Path

import torch


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else the CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device={name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available here; use device=cpu or device=auto")
    return device


def cpu_bf16_support() -> str | None:
    """The native bf16 instructions of this CPU that oneDNN uses ("amx_bf16", "avx512_bf16"), or None.

    Without them ``torch.autocast("cpu", dtype=torch.bfloat16)`` still runs, but emulated and slower than fp32, so
    ``amp=auto`` stays fp32 there. torch's own cpuinfo checks are used where this torch has them, else the flags of
    ``/proc/cpuinfo`` (Linux), else None.
    """
    return _cpu_bf16_support()


_BF16_FEATURES = (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))


@functools.cache
def _cpu_bf16_support() -> str | None:
    checks = [(name, getattr(torch.cpu, fn, None)) for name, fn in _BF16_FEATURES]
    if all(fn is not None for _, fn in checks):
        return next((name for name, fn in checks if fn()), None)
    try:
        return bf16_from_cpuinfo(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return None


def bf16_from_cpuinfo(text: str) -> str | None:
    """The first native bf16 feature ("amx_bf16", "avx512_bf16") among the flags of a /proc/cpuinfo text."""
    flags = set(text.split())
    return next((name for name, _ in _BF16_FEATURES if name in flags), None)
