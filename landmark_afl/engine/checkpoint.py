"""Checkpoints: written atomically, loaded with ``weights_only=True``, checked against the run that loads them."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import torch

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or belongs to an incompatible run."""


def checkpoint_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a checkpoint file: what tells two models apart whatever their folders are called."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        with warnings.catch_warnings():  # torch's notes on foreign pickles; the error below says what matters
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged file
        detail = str(err).split("\n")
        # torch's own text for a refused pickle advises weights_only=False: never advise unpickling a foreign file
        reason = next((line.strip() for line in detail if "WeightsUnpickler error" in line), None)
        if reason is not None or "weights_only" in str(err):
            why = "it holds Python objects other than tensors and plain values, which are never unpickled here"
        else:
            why = " ".join(str(err).split())[:300]
        raise CheckpointError(
            f"checkpoint {path} could not be read ({why}); it is damaged, truncated or was not written by "
            "landmark-afl train - use a checkpoint of a landmark-afl run"
        ) from err
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} is not a landmark-afl checkpoint of version {CHECKPOINT_VERSION}")
    return state
