"""Plots of threshold sweeps (the sweep itself is ``landmark_afl.metrics.sweep``)."""

from __future__ import annotations

import os
from pathlib import Path


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
