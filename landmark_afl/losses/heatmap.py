"""Heatmap regression losses with a per-sample reduction, so that AFL can weight each sample.

Every function takes the raw network output ``pred`` and the target maps ``target`` ([B, K, H, W], peak 1) and a
``reduction``: "none" (elementwise or per map), "sample" (the per-sample loss [B], reduced over everything but the
batch), "landmark" (the per-sample, per-landmark loss [B, K], the mean over each map; its mean over K is the
"sample" loss) or "mean" (scalar). ``HEATMAP_LOSSES`` maps each name to ``(function, activation)``, where the activation
turns raw outputs into heatmaps for decoding ("identity" for regression losses, "sigmoid" for the others).
"""

from __future__ import annotations

import difflib

import torch
import torch.nn.functional as F
from torch import nn


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sample":
        return loss.flatten(1).mean(1)
    if reduction == "landmark":  # [B, K, H, W] -> [B, K]; a per-map loss is [B, K] already
        return loss.flatten(2).mean(2) if loss.ndim > 2 else loss
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction must be 'none', 'sample', 'landmark' or 'mean', got {reduction!r}")


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"pred and target must both be [B, K, H, W], got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def mse_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "sample") -> torch.Tensor:
    """Mean squared error ``(pred - target)^2`` on the raw output (the usual heatmap regression loss)."""
    _check(pred, target)
    return _reduce((pred.float() - target) ** 2, reduction)


def weighted_mse_loss(
    pred: torch.Tensor, target: torch.Tensor, reduction: str = "sample", fg_weight: float = 10.0
) -> torch.Tensor:
    """Foreground-weighted squared error ``(1 + fg_weight * target) * (pred - target)^2`` on the raw output.

    A Gaussian of sigma 3 px covers well under 1 % of a 256 x 256 map, so plain MSE is dominated by the background
    and a network trained from scratch first learns to predict zeros everywhere; weighting the pixels by the target
    (in the spirit of the weight map of the Adaptive Wing loss, Wang et al., ICCV 2019) makes the peaks count from
    the first steps. With fg_weight = 0 it is ``mse_loss``.
    """
    _check(pred, target)
    return _reduce((1 + fg_weight * target) * (pred.float() - target) ** 2, reduction)


def l1_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "sample") -> torch.Tensor:
    """Mean absolute error ``|pred - target|`` on the raw output."""
    _check(pred, target)
    return _reduce((pred.float() - target).abs(), reduction)


def bce_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "sample") -> torch.Tensor:
    """Binary cross-entropy of ``sigmoid(pred)`` against the soft Gaussian targets (pred are logits)."""
    _check(pred, target)
    return _reduce(F.binary_cross_entropy_with_logits(pred.float(), target, reduction="none"), reduction)


def focal_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "sample", gamma: float = 2.0) -> torch.Tensor:
    """Focal heatmap loss for continuous targets: ``BCE(sigmoid(pred), t) * |sigmoid(pred) - t|^gamma``.

    The quality focal loss of Li et al. (GFL, NeurIPS 2020), which reduces to the focal loss of Lin et al. (2017)
    for 0/1 targets and stays well defined for Gaussian targets whose peak falls between pixels (CornerNet's form
    needs a target of exactly 1 at the centre pixel). With gamma = 0 it is ``bce_loss``.
    """
    _check(pred, target)
    logits = pred.float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return _reduce(bce * (torch.sigmoid(logits) - target).abs().pow(gamma), reduction)


def dice_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "sample") -> torch.Tensor:
    """Soft dice per map on ``sigmoid(pred)``: ``1 - (2 sum(p t) + e) / (sum(p) + sum(t) + e)``, e = 1e-5 (MONAI).

    With reduction "none" it returns the per-map loss [B, K]; an absent landmark (all-zero target) is pushed to an
    all-zero prediction.
    """
    from monai.losses import DiceLoss

    _check(pred, target)
    per_map = DiceLoss(sigmoid=True, reduction="none", smooth_nr=1e-5, smooth_dr=1e-5)(pred.float(), target)
    per_map = per_map.flatten(1)  # [B, K]
    return _reduce(per_map, reduction)


HEATMAP_LOSSES = {
    "mse": (mse_loss, "identity"),
    "wmse": (weighted_mse_loss, "identity"),
    "l1": (l1_loss, "identity"),
    "bce": (bce_loss, "sigmoid"),
    "dice": (dice_loss, "sigmoid"),
    "focal": (focal_loss, "sigmoid"),
}


def heatmap_loss(name: str):
    """The loss function and output activation registered under ``name``."""
    if name not in HEATMAP_LOSSES:
        close = difflib.get_close_matches(name, HEATMAP_LOSSES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown heatmap loss {name!r}.{hint} Valid: {', '.join(HEATMAP_LOSSES)}")
    return HEATMAP_LOSSES[name]


class HeatmapLoss(nn.Module):
    """Module wrapper: ``HeatmapLoss("mse")(pred, target)`` is the per-sample loss [B].

    Example:
        >>> loss = HeatmapLoss("mse")
        >>> loss(torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)).tolist()
        [1.0, 1.0]
    """

    def __init__(self, name: str = "mse", reduction: str = "sample") -> None:
        super().__init__()
        self.name = name
        self.fn, self.activation = heatmap_loss(name)
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor, reduction: str | None = None) -> torch.Tensor:
        """The loss with ``reduction`` ("none", "sample", "landmark", "mean"; None: the module's own)."""
        return self.fn(pred, target, reduction=self.reduction if reduction is None else reduction)

    def activate(self, pred: torch.Tensor) -> torch.Tensor:
        """Raw outputs -> heatmaps on the target's scale (for decoding and the topology extractor)."""
        return torch.sigmoid(pred) if self.activation == "sigmoid" else pred
