"""A tiny hand-made landmark data set (PNG images, known landmarks, some absent) and a stub heatmap model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from torch import nn

LANDMARKS = ["a", "b", "c", "d"]


def write_dataset(
    root: Path, n: int = 5, size: int = 128, spacing_mm: float | None = 0.5, seed: int = 0
) -> tuple[Path, dict[str, np.ndarray]]:
    """n images of size x size with 4 landmarks; landmark "d" is absent in images 0 and 1. All images in "test"."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    coords, rows = {}, ["image,landmark,x,y"]
    for i in range(n):
        key = f"img{i:02d}.png"
        cv2.imwrite(str(root / "images" / key), (rng.random((size, size)) * 255).astype(np.uint8))
        xy = rng.uniform(0.2 * size, 0.8 * size, (len(LANDMARKS), 2))
        if i < 2:
            xy[3] = np.nan
        coords[key] = xy
        rows += [f"{key},{name},{x:.3f},{y:.3f}" for name, (x, y) in zip(LANDMARKS, xy, strict=True) if np.isfinite(x)]
    keys = sorted(coords)
    doc = {"name": "tiny", "landmarks": LANDMARKS, "splits": {"train": keys, "val": keys, "test": keys}}
    if spacing_mm is not None:
        doc["spacing_mm"] = [spacing_mm, spacing_mm]
    (root / "dataset.yaml").write_text(yaml.safe_dump(doc))
    (root / "landmarks.csv").write_text("\n".join(rows) + "\n")
    return root, coords


class StubModel(nn.Module):
    """Returns prescribed heatmaps [N, K, H, W], one batch after another, whatever the input."""

    def __init__(self, maps: torch.Tensor, batch_size: int) -> None:
        super().__init__()
        self.maps = maps
        self.batch_size = batch_size
        self.calls = 0
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        start = self.calls * self.batch_size
        self.calls += 1
        out = self.maps[start : start + images.shape[0]]
        assert out.shape[0] == images.shape[0], "stub asked for more images than it holds"
        return out
