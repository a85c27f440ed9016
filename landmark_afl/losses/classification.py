"""Per-sample classification losses over logits (the L[b] that AFL re-weights): cross-entropy and focal loss.

Each function takes logits [B, C] and integer labels [B] and a ``reduction``: "none" (the per-sample loss [B],
the default, as AFL needs), "mean" or "sum". The math is done in float32 (or float64 when given), whatever autocast
gave. ``CLASSIFICATION_LOSSES`` maps each name to its function; the modules are thin wrappers.
"""

from __future__ import annotations

import difflib

import torch
import torch.nn.functional as F
from torch import nn


def _check(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.ndim != 2 or target.ndim != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(f"logits must be [B, C] and target [B], got {tuple(logits.shape)} and {tuple(target.shape)}")
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _log_pt(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[b, target[b]]`` [B], computed stably."""
    logits = logits if logits.dtype == torch.float64 else logits.float()
    return F.log_softmax(logits, dim=1).gather(1, target.long()[:, None]).squeeze(1)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    """Cross-entropy ``CE = -log p_t`` with ``p = softmax(logits)`` and ``p_t = p[target]``.

    Args:
        logits: raw scores [B, C].
        target: class indices [B] in 0..C-1.
        reduction: "none" ([B]), "mean" or "sum".
    """
    _check(logits, target)
    return _reduce(-_log_pt(logits, target), reduction)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, reduction: str = "none") -> torch.Tensor:
    """Multi-class focal loss ``FL = -(1 - p_t)^gamma * log p_t`` (Lin et al., "Focal Loss for Dense Object
    Detection", ICCV 2017), with ``p_t`` the softmax probability of the true class.

    gamma = 2 is the paper's choice; gamma = 0 gives ``cross_entropy``. No alpha balancing (the paper's alpha is a
    per-class weight for the binary case; class weights are a separate design choice).

    Args:
        logits: raw scores [B, C].
        target: class indices [B] in 0..C-1.
        gamma: focusing exponent, >= 0.
        reduction: "none" ([B]), "mean" or "sum".
    """
    _check(logits, target)
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    log_pt = _log_pt(logits, target)
    loss = -log_pt if gamma == 0 else -((1 - log_pt.exp()).clamp_min(0) ** gamma) * log_pt
    return _reduce(loss, reduction)


CLASSIFICATION_LOSSES = {"ce": cross_entropy, "focal": focal_loss}


class CrossEntropyLoss(nn.Module):
    """Module form of ``cross_entropy``.

    Example:
        >>> CrossEntropyLoss()(torch.zeros(2, 4), torch.tensor([0, 3]))
        tensor([1.3863, 1.3863])
    """

    def __init__(self, reduction: str = "none") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, target, self.reduction)


class FocalLoss(nn.Module):
    """Module form of ``focal_loss``.

    Example:
        >>> FocalLoss(gamma=2.0)(torch.zeros(2, 4), torch.tensor([0, 3]))
        tensor([0.7798, 0.7798])
    """

    def __init__(self, gamma: float = 2.0, reduction: str = "none") -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, target, self.gamma, self.reduction)


def classification_loss(name: str, gamma: float = 2.0, reduction: str = "none") -> nn.Module:
    """The loss module named ``name`` ("ce" or "focal"; ``gamma`` is used by "focal" only)."""
    if name == "ce":
        return CrossEntropyLoss(reduction)
    if name == "focal":
        return FocalLoss(gamma, reduction)
    close = difflib.get_close_matches(name, CLASSIFICATION_LOSSES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown classification loss {name!r}{hint}; choose one of {sorted(CLASSIFICATION_LOSSES)}")
