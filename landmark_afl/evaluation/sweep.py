"""Threshold sweep: false negatives and false positives against the detection threshold, from stored peaks.

A landmark is detected when its peak response is >= the threshold, so raising the threshold can only turn detections
into misses: false negatives never decrease and false positives never increase along the sweep. The numbers come
from the peaks recorded by the evaluator; the model is not run again.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def plot_sweeps(curves: dict[str, dict], out_png: Path, threshold: float | None = None, title: str = "") -> Path:
    """One line pair per curve: false negatives (solid) and false positives (dashed) against the threshold.

    Args:
        curves: label -> a ``threshold_sweep`` result.
        out_png: where to write the PNG (atomically).
        threshold: the operating threshold, drawn as a vertical line.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, sweep) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        ax.plot(sweep["thresholds"], sweep["false_negatives"], color=color, linewidth=2, label=f"{label}: FN")
        if sweep.get("absent", 0) > 0:
            ax.plot(sweep["thresholds"], sweep["false_positives"], color=color, linestyle="--", label=f"{label}: FP")
    if threshold is not None:
        ax.axvline(threshold, color="grey", linestyle=":", label=f"threshold {threshold:g}")
    ax.set_xlabel("detection threshold (peak response; target peak = 1)")
    ax.set_ylabel("count")
    ax.set_title(title or "false negatives (solid) and false positives (dashed) against the threshold", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out_png = Path(out_png)
    tmp = out_png.with_name(out_png.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out_png)
    return out_png
