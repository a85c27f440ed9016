"""Figures of the side-by-side report: false negatives per landmark per run, and threshold curves.

Each figure has one panel per protocol; reports sharing a label are pooled (mean over them). Figures are returned
as PNG bytes, so the HTML page can embed them and the report folder can keep them as files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _pyplot().close(fig)
    return buf.getvalue()


def pool_by_label(
    entries: Sequence[tuple[str, dict]],
) -> tuple[list[str], list[str], dict[tuple[str, str], list[dict]]]:
    """(labels in order, protocols in order, {(protocol, label): [report entries]}) of (label, report.json) pairs."""
    labels, protocols, groups = [], [], {}
    for label, report in entries:
        if label not in labels:
            labels.append(label)
        for name, entry in report["protocols"].items():
            if name not in protocols:
                protocols.append(name)
            groups.setdefault((name, label), []).append(entry)
    return labels, protocols, groups


def false_negatives_per_landmark_png(entries: Sequence[tuple[str, dict]]) -> bytes:
    """Grouped bars: mean false negatives of each landmark, one bar per label, one panel per protocol."""
    plt = _pyplot()
    labels, protocols, groups = pool_by_label(entries)
    landmarks = entries[0][1]["landmarks"]
    k = len(landmarks)
    fig, axes = plt.subplots(len(protocols), 1, figsize=(max(8.0, 0.28 * k * max(1, len(labels)) ** 0.5 + 2), 2.6 *
                             len(protocols) + 1.2), dpi=100, squeeze=False, sharex=True)  # fmt: skip
    width = 0.8 / max(1, len(labels))
    x = np.arange(k)
    for ax, name in zip(axes[:, 0], protocols, strict=True):
        totals = []
        for i, label in enumerate(labels):
            items = groups.get((name, label))
            if not items:
                continue
            fn = np.mean([[e["false_negatives"] for e in item["per_landmark"]] for item in items], axis=0)
            ax.bar(x - 0.4 + width * (i + 0.5), fn, width, label=label, color=f"C{i}")
            totals.append(f"{label} {fn.sum():g}")
        ax.set_title(f"protocol {name}: total {', '.join(totals)}", fontsize=9, loc="left")
        ax.set_ylabel("false negatives")
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xticks(x)
    axes[-1, 0].set_xticklabels(landmarks, rotation=75, fontsize=7, ha="right")
    fig.suptitle("false negatives per landmark (mean over runs with the same label)", fontsize=10)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", fontsize=8, ncol=len(labels))
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _png(fig)


def threshold_curves_png(entries: Sequence[tuple[str, dict]], threshold: float | None = None) -> bytes:
    """False negatives (solid) and false positives (dashed) against the threshold, one panel per protocol."""
    plt = _pyplot()
    labels, protocols, groups = pool_by_label(entries)
    cols = min(2, len(protocols))
    rows = int(np.ceil(len(protocols) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), dpi=100, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.ravel()[: len(protocols)], protocols, strict=True):
        for i, label in enumerate(labels):
            items = groups.get((name, label))
            if not items:
                continue
            sweep = items[0]["sweep"]
            fn = np.mean([e["sweep"]["false_negatives"] for e in items], axis=0)
            ax.plot(sweep["thresholds"], fn, color=colors[i % len(colors)], linewidth=2, label=f"{label}: FN")
            if any(e["sweep"]["absent"] for e in items):
                fp = np.mean([e["sweep"]["false_positives"] for e in items], axis=0)
                ax.plot(sweep["thresholds"], fp, color=colors[i % len(colors)], linestyle="--", label=f"{label}: FP")
        if threshold is not None:
            ax.axvline(threshold, color="grey", linestyle=":")
        ax.set_title(f"protocol {name}", fontsize=9, loc="left")
        ax.set_xlabel("threshold (target peak = 1)", fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes.ravel()[len(protocols) :]:
        ax.axis("off")
    fig.suptitle("false negatives (solid) and false positives (dashed) against the detection threshold", fontsize=10)
    fig.tight_layout()
    return _png(fig)
