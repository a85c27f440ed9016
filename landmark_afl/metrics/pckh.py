"""PCKh on MPII by the official rules (the MATLAB ``evalPCKh``, ported in HRNet ``MPIIDataset.evaluate``).

A joint is correct when ``||pred - gt|| <= thr * SC_BIAS * ||head_box[1] - head_box[0]||`` with ``SC_BIAS = 0.6``
(the head-box diagonal times 0.6 approximates the head segment length); joints marked missing are left out of
both counts. Per joint ``PCKh_j = 100 * correct_j / present_j``; the table of the AFL paper (Table 1) and of HRNet
reports the groups Head (head top), Shoulder, Elbow, Wrist, Hip, Knee, Ankle as the mean of the left and right
joints, and Mean over all joints except pelvis and thorax weighted by their counts (the pooled fraction).

``Mean@0.1`` is computed at exactly 0.1; HRNet and mmpose read row 11 of a 0.01-step grid (threshold 0.11) for it,
which gives slightly higher values.
"""

from __future__ import annotations

import numpy as np

SC_BIAS = 0.6
#: MPII joint indices of each reported group (``landmark_afl.data.mpii.JOINTS``).
GROUPS = {
    "head": (9,),
    "shoulder": (12, 13),
    "elbow": (11, 14),
    "wrist": (10, 15),
    "hip": (2, 3),
    "knee": (1, 4),
    "ankle": (0, 5),
}
MEAN_EXCLUDED = (6, 7)  # pelvis, thorax: not part of the official mean


def normalized_errors(pred: np.ndarray, gt: np.ndarray, missing: np.ndarray, head_boxes: np.ndarray) -> np.ndarray:
    """Errors [N, K] in units of ``SC_BIAS x head-box diagonal``; NaN for missing joints, inf for NaN predictions.

    Args:
        pred: predictions [N, K, 2] in image pixels.
        gt: ground truth [N, K, 2] in the same pixels.
        missing: [N, K] True where the joint is not annotated.
        head_boxes: [N, 2, 2] ``((x1, y1), (x2, y2))``.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    missing, head_boxes = np.asarray(missing, bool), np.asarray(head_boxes, np.float64)
    n, k = gt.shape[:2]
    if pred.shape != gt.shape or gt.shape[-1] != 2 or missing.shape != (n, k) or head_boxes.shape != (n, 2, 2):
        raise ValueError(
            f"expected pred and gt [N, K, 2], missing [N, K], head_boxes [N, 2, 2]; got {pred.shape}, {gt.shape}, "
            f"{missing.shape}, {head_boxes.shape}"
        )
    head = SC_BIAS * np.linalg.norm(head_boxes[:, 1] - head_boxes[:, 0], axis=-1)  # [N]
    if (head[(~missing).any(-1)] <= 0).any():
        bad = int(np.flatnonzero((head <= 0) & (~missing).any(-1))[0])
        raise ValueError(f"person {bad} has an empty head box {head_boxes[bad].tolist()}; PCKh cannot be normalised")
    err = np.linalg.norm(pred - gt, axis=-1) / np.where(head > 0, head, 1.0)[:, None]
    err = np.where(np.isfinite(err), err, np.inf)
    return np.where(missing, np.nan, err)


def pckh_per_joint(errors: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(PCKh [K] in percent (NaN for a joint never present), present count [K]) at ``threshold``."""
    present = ~np.isnan(errors)
    count = present.sum(0)
    correct = (present & (np.nan_to_num(errors, nan=np.inf) <= threshold)).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, 100.0 * correct / count, np.nan), count


def pckh_mean(errors: np.ndarray, threshold: float) -> float:
    """Count-weighted mean PCKh (percent) over the joints except pelvis and thorax."""
    keep = np.setdiff1d(np.arange(errors.shape[1]), MEAN_EXCLUDED)
    sub = errors[:, keep]
    present = ~np.isnan(sub)
    if not present.any():
        return float("nan")
    return float(100.0 * (present & (np.nan_to_num(sub, nan=np.inf) <= threshold)).sum() / present.sum())


def mpii_pckh(
    pred: np.ndarray, gt: np.ndarray, missing: np.ndarray, head_boxes: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """The paper's Table 1 row: ``{"head", "shoulder", ..., "ankle", "mean", "mean@0.1"}`` in percent.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((1, 16, 2)); boxes = np.array([[[0.0, 0.0], [30.0, 40.0]]])  # diagonal 50 -> 30 px at 1.0
        >>> pred = gt.copy(); pred[0, 9, 0] = 16.0  # head top 16 px off: > 0.5 * 30
        >>> r = mpii_pckh(pred, gt, np.zeros((1, 16), bool), boxes)
        >>> r["head"], r["shoulder"], round(r["mean"], 2)
        (0.0, 100.0, 92.86)
    """
    errors = normalized_errors(pred, gt, missing, head_boxes)
    per_joint, _ = pckh_per_joint(errors, threshold)
    out = {}
    for name, joints in GROUPS.items():
        values = per_joint[list(joints)]
        out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    out["mean"] = pckh_mean(errors, threshold)
    out["mean@0.1"] = pckh_mean(errors, 0.1)
    return out
