"""Checkpoints: written atomically, loaded with ``weights_only=True``, checked against the run that loads them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or belongs to an incompatible run."""


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to a temporary file in the same folder, then an atomic rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save({"version": CHECKPOINT_VERSION, **state}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete what a killed save left in a run folder: ``checkpoints/<name>.pt.*.tmp`` (up to the checkpoint's size)
    and ``.<name>.tmp`` files of atomic writes. Call it only once a resume of the run has been accepted.

    Returns:
        The removed files.
    """
    run_dir = Path(run_dir)
    stale = [*(run_dir / "checkpoints").glob("*.pt.*.tmp"), *run_dir.glob(".*.tmp")]
    removed = []
    for path in stale:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """Load a checkpoint saved by ``save_checkpoint`` (plain tensors and Python values only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; is this a run folder made by landmark-afl train?")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint {path} could not be read ({err}); it may be truncated or not ours") from err
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} is not a landmark-afl checkpoint of version {CHECKPOINT_VERSION}")
    return state
