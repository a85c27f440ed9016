"""The interface between a task and the generic trainer (after timm's ``task/task.py``)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class TrainTask(nn.Module):
    """A trainable task. Subclasses implement ``forward`` and ``validate``.

    ``forward(batch)`` returns a dict with a differentiable scalar ``"loss"`` and optionally ``"base_loss"``
    (scalar, logged), ``"per_sample_loss"`` and ``"scores"`` ([B], written to difficulty.csv with the batch's
    ``"image_id"``) and any other scalars to log. ``validate(loader)`` returns a dict of scalars;
    ``selection_key(metrics)`` orders checkpoints (lower is better). State outside the parameters (an optimizer
    of the task's own) travels through ``extra_state`` / ``load_extra_state``.
    """

    def optimizer_parameters(self) -> Iterable[nn.Parameter]:
        """Parameters the trainer's optimizer updates (a task's critic has its own optimizer)."""
        return self.parameters()

    def validate(self, loader) -> dict:
        raise NotImplementedError

    def selection_key(self, metrics: dict) -> tuple:
        return (metrics.get("val_loss", float("inf")),)

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no extra state, got keys {sorted(state)}")

    @staticmethod
    def batch_to(batch: dict, device: torch.device) -> dict:
        return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
