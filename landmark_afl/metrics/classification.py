"""Classification metrics: top-k accuracy, per-class accuracy and balanced accuracy (the long-tail figure).

Inputs are numpy arrays or tensors: scores [N, C] (logits or probabilities; only their order matters) and labels
[N]. Definitions follow scikit-learn (``top_k_accuracy_score``, ``balanced_accuracy_score``), which the tests use as
the reference: balanced accuracy is the mean recall over the classes present in the labels.
"""

from __future__ import annotations

import numpy as np


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.dtype.is_floating_point else x.detach().cpu().numpy()
    return np.asarray(x)


def _check(scores: np.ndarray, labels: np.ndarray) -> None:
    if scores.ndim != 2 or labels.ndim != 1 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"scores must be [N, C] and labels [N], got {list(scores.shape)} and {list(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels span {labels.min()}..{labels.max()}, outside the {scores.shape[1]} score columns")


def topk_accuracy(scores, labels, k: int = 1) -> float:
    """Fraction of samples whose label is among the k highest scores (NaN for no samples).

    Ties are broken towards the lower class index, as ``argmax`` does, so top-1 is ``mean(argmax == label)``: a
    constant output scores 1 / C, never 1.

    Args:
        scores: [N, C].
        labels: [N] in 0..C-1.
        k: 1 <= k <= C.
    """
    scores, labels = _as_numpy(scores), _as_numpy(labels).astype(np.int64)
    _check(scores, labels)
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be between 1 and C = {scores.shape[1]}, got {k}")
    if len(labels) == 0:
        return float("nan")
    true = np.take_along_axis(scores, labels[:, None], axis=1)
    # Classes ranked above the label: higher scores, and equal scores at a lower index (as argmax breaks ties).
    ahead = (scores > true) | ((scores == true) & (np.arange(scores.shape[1]) < labels[:, None]))
    rank = ahead.sum(axis=1)
    return float((rank < k).mean())


def per_class_accuracy(pred, labels, num_classes: int) -> np.ndarray:
    """Recall of each class [C]: correct / present; NaN for a class absent from ``labels``.

    Args:
        pred: predicted classes [N].
        labels: true classes [N].
        num_classes: C.
    """
    pred, labels = _as_numpy(pred).astype(np.int64), _as_numpy(labels).astype(np.int64)
    if pred.shape != labels.shape or pred.ndim != 1:
        raise ValueError(f"pred and labels must both be [N], got {list(pred.shape)} and {list(labels.shape)}")
    present = np.bincount(labels, minlength=num_classes)[:num_classes]
    correct = np.bincount(labels[pred == labels], minlength=num_classes)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present > 0, correct / np.maximum(present, 1), np.nan)


def balanced_accuracy(pred, labels, num_classes: int) -> float:
    """Mean of ``per_class_accuracy`` over the classes present in ``labels`` (NaN for no samples)."""
    acc = per_class_accuracy(pred, labels, num_classes)
    return float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")


def classification_metrics(scores, labels) -> dict:
    """``top1``, ``top5`` (where C >= 5), ``balanced_acc`` (floats) and ``per_class`` (float array [C])."""
    scores, labels = _as_numpy(scores), _as_numpy(labels).astype(np.int64)
    _check(scores, labels)
    num_classes = scores.shape[1]
    pred = scores.argmax(axis=1)
    out = {"top1": topk_accuracy(scores, labels, 1)}
    if num_classes >= 5:
        out["top5"] = topk_accuracy(scores, labels, 5)
    out["balanced_acc"] = balanced_accuracy(pred, labels, num_classes)
    out["per_class"] = per_class_accuracy(pred, labels, num_classes)
    return out
