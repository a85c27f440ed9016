"""Fit an image into the network input without distorting it, and map landmarks both ways.

The image is scaled by one factor (aspect ratio kept, so pixels stay square when they were) and padded with zeros
at the bottom and right. Coordinates use pixel centres (x = column, y = row, origin at the centre of the top-left
pixel), which is also OpenCV's resize convention: ``x_input = (x + 0.5) * sx - 0.5`` with ``sx`` the ratio of the
resized width to the original width.
"""

from __future__ import annotations

import cv2
import numpy as np


def letterbox_size(shape: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """(rows, cols) that an image of ``shape`` (h, w) fills inside the network input ``size`` (H, W); the rest is
    padding."""
    h, w = shape[:2]
    out_h, out_w = size
    factor = min(out_h / h, out_w / w)
    return max(1, round(h * factor)), max(1, round(w * factor))


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``image`` [h, w] to fit ``size`` (H, W) and pad it; returns (image [H, W] float32, scale (sx, sy))."""
    h, w = image.shape[:2]
    out_h, out_w = size
    new_h, new_w = letterbox_size((h, w), size)
    interp = cv2.INTER_AREA if min(out_h / h, out_w / w) < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(image, dtype=np.float32), (new_w, new_h), interpolation=interp)
    canvas = np.zeros((out_h, out_w), np.float32)
    canvas[:new_h, :new_w] = resized
    return canvas, np.array([new_w / w, new_h / h], np.float64)


def inside_image(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[..., K] whether landmarks [..., K, 2] (pixel centres) lie on an image of ``shape`` (rows, cols): within half a
    pixel of the outer pixel centres. NaN (absent) landmarks give False."""
    height, width = shape[:2]
    x, y = np.asarray(xy, np.float64)[..., 0], np.asarray(xy, np.float64)[..., 1]
    with np.errstate(invalid="ignore"):
        return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


def to_input_coords(xy: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Landmarks [..., 2] in original image pixels -> network input pixels (NaN stays NaN)."""
    return (np.asarray(xy, np.float64) + 0.5) * scale - 0.5


def to_image_coords(xy: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Landmarks [..., 2] in network input pixels -> original image pixels."""
    return (np.asarray(xy, np.float64) + 0.5) / scale - 0.5
