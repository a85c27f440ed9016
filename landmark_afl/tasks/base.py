"""The interface between a task and the generic trainer (after timm's ``task/task.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn


class TrainTask(nn.Module):
    """A trainable task. Subclasses implement ``forward`` and ``validate``.

    ``forward(batch)`` returns a dict with:

    - ``"loss"``: the differentiable scalar the trainer back-propagates;
    - ``"log"`` (optional): name -> scalar (float or 0-d tensor); the trainer logs each to TensorBoard and writes
      its epoch mean to metrics.csv as ``train_<name>``; ``console_keys`` picks those shown on the log line;
    - ``"records"`` (optional): equal-length columns for the batch's samples (e.g. ``{"image": ids, "score": [B],
      "base_loss": [B]}``); the trainer appends them, with the epoch, to ``run_dir / records_file``.

    ``validate(loader, out_dir)`` returns a dict of ``val_*`` scalars (and may write files into ``out_dir``, the
    run folder, when it is not None); ``selection_key(metrics)`` orders checkpoints (lower is better);
    ``epoch_summary(metrics)`` is the console line after each epoch. State outside the parameters (an optimizer of
    the task's own, such as the AFL critic's) travels through ``extra_state`` / ``load_extra_state``.
    """

    records_file: str | None = "difficulty.csv"
    console_keys: tuple[str, ...] | None = None  # None: every logged scalar

    def optimizer_parameters(self) -> Iterable[nn.Parameter]:
        """Parameters the trainer's optimizer updates (a task's critic has its own optimizer)."""
        return self.parameters()

    def validate(self, loader, out_dir: Path | None = None) -> dict:
        raise NotImplementedError

    def selection_key(self, metrics: dict) -> tuple:
        return (metrics.get("val_loss", float("inf")),)

    def epoch_summary(self, metrics: dict) -> str:
        return ", ".join(
            f"{k[4:]} {v:.4g}" if isinstance(v, float) else f"{k[4:]} {'n/a' if v is None else v}"
            for k, v in metrics.items()
            if k.startswith("val_")
        )

    def extra_state(self) -> dict:
        """The optimizer state of the task's AFL (``self.afl``, an ``AdversarialFocalLoss`` or None; the critic's
        weights are in the state_dict); {} without AFL. (No class attribute: it would hide nn.Module's submodule.)"""
        afl = getattr(self, "afl", None)
        return afl.extra_state() if afl is not None else {}

    def load_extra_state(self, state: dict) -> None:
        afl = getattr(self, "afl", None)
        if afl is not None:
            afl.load_extra_state(state)
        elif state:
            raise ValueError(
                f"checkpoint holds extra state {sorted(state)} (an AFL critic's optimizer) but this "
                f"{type(self).__name__} has AFL turned off (afl.enabled=False, --no-afl)"
            )

    def batch_size(self, batch: dict) -> int:
        return len(batch["image"])

    @staticmethod
    def batch_to(batch: dict, device: torch.device) -> dict:
        return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
