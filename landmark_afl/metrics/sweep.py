"""Threshold sweep: false negatives and false positives against the detection threshold, from stored peaks.

A landmark is detected when its peak response is >= the threshold, so raising the threshold can only turn detections
into misses: false negatives never decrease and false positives never increase along the sweep. The numbers come
from the peaks recorded by the evaluator; the model is not run again.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.951, 0.05))


def threshold_sweep(
    peaks: np.ndarray, present: np.ndarray, thresholds: tuple[float, ...] | np.ndarray = DEFAULT_THRESHOLDS
) -> dict:
    """False negatives and false positives at each threshold.

    Args:
        peaks: peak responses [N, K].
        present: ground-truth presence [N, K] (bool).
        thresholds: detection thresholds to evaluate (target peak = 1).

    Returns:
        ``{"thresholds": [...], "false_negatives": [...], "false_positives": [...], "present": P, "absent": A}``
        (lists of ints of the same length as ``thresholds``).

    Example:
        >>> threshold_sweep(np.array([[0.2, 0.7, 0.9]]), np.array([[True, True, False]]), (0.5, 0.8))
        {'thresholds': [0.5, 0.8], 'false_negatives': [1, 2], 'false_positives': [1, 1], 'present': 2, 'absent': 1}
    """
    peaks = np.asarray(peaks, np.float64)
    present = np.asarray(present, bool)
    if peaks.shape != present.shape:
        raise ValueError(f"peaks {peaks.shape} and present {present.shape} must have the same shape [N, K]")
    thr = np.asarray(thresholds, np.float64)
    detected = peaks[None] >= thr.reshape(-1, *([1] * peaks.ndim))  # [T, N, K]
    fn = (present[None] & ~detected).reshape(len(thr), -1).sum(1)
    fp = (~present[None] & detected).reshape(len(thr), -1).sum(1)
    return {
        "thresholds": [float(t) for t in thr],
        "false_negatives": [int(v) for v in fn],
        "false_positives": [int(v) for v in fp],
        "present": int(present.sum()),
        "absent": int((~present).sum()),
    }
