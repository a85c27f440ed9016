"""Side-by-side preview of protocols on one image, with their contrast measures (``landmark-afl protocols preview``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from landmark_afl.protocols.contrast import contrast_measures
from landmark_afl.protocols.protocol import Protocol

PANEL_LONG_SIDE = 800  # display pixels of each panel's longer side (area-averaged, so no aliasing)


def apply_protocols(
    image: np.ndarray, meta: Mapping[str, Any] | None, protocols: Sequence[Protocol]
) -> list[dict[str, Any]]:
    """Run each protocol on ``image``; one dict per protocol: name, output, global_std, local_std, ms."""
    rows = []
    for protocol in protocols:
        start = time.perf_counter()
        out = protocol(image, meta)
        ms = (time.perf_counter() - start) * 1000.0
        rows.append({"name": protocol.name, "output": out, "ms": ms, **contrast_measures(out)})
    return rows


def _panel(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    scale = PANEL_LONG_SIDE / max(h, w)
    if scale >= 1.0:
        return x
    return cv2.resize(x, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def save_preview(rows: Sequence[Mapping[str, Any]], out: str | Path, title: str = "") -> Path:
    """Write the outputs of :func:`apply_protocols` side by side as a PNG, each titled with its name and measures."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [_panel(r["output"]) for r in rows]
    h, w = panels[0].shape
    panel_w_in = 4.0
    fig = Figure(figsize=(panel_w_in * len(panels), panel_w_in * h / w + 1.1), dpi=PANEL_LONG_SIDE / panel_w_in * 0.6)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, row, panel in zip(axes, rows, panels, strict=True):
        ax.imshow(panel, cmap="gray", vmin=0.0, vmax=1.0, interpolation="antialiased")
        ax.set_title(
            f"{row['name']}\nglobal std {row['global_std']:.3f}   local std {row['local_std']:.3f}",
            fontsize=11,
        )
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, format="png", facecolor="white", bbox_inches="tight", pad_inches=0.15)
    return out
