"""Overlay PNGs for ``predict --overlays``: the image (after its contrast protocol) with each landmark drawn and
labelled; detected landmarks as green filled dots, landmarks below the threshold as red rings with their peak."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

MAX_SIDE = 1024  # overlays are for looking at: large radiographs are drawn scaled down to this size
DETECTED = (40, 220, 40)  # BGR
MISSED = (40, 40, 230)


def draw_overlay(
    image: np.ndarray, xy: np.ndarray, peaks: np.ndarray, present: np.ndarray, names: Sequence[str]
) -> np.ndarray:
    """BGR uint8 picture of ``image`` [H, W] (values in [0, 1]) with landmarks ``xy`` [K, 2] (original pixels).

    The picture is scaled so that its longer side is at most ``MAX_SIDE``; coordinates are scaled with it.

    Example:
        >>> pic = draw_overlay(np.zeros((40, 60)), np.array([[10.0, 20.0]]), np.array([0.9]), np.array([True]), ["a"])
        >>> pic.shape, pic.dtype.name
        ((40, 60, 3), 'uint8')
    """
    import cv2

    h, w = image.shape[:2]
    factor = min(1.0, MAX_SIDE / max(h, w))
    grey = np.clip(np.nan_to_num(image) * 255.0, 0, 255).astype(np.uint8)
    if factor < 1:
        grey = cv2.resize(grey, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    pic = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    side = max(pic.shape[:2])
    radius = max(2, side // 150)
    font = max(0.3, side / 1400)
    for k, name in enumerate(names):
        if not np.all(np.isfinite(xy[k])):
            continue
        x, y = ((xy[k] + 0.5) * factor - 0.5).round().astype(int)
        if present[k]:
            cv2.circle(pic, (int(x), int(y)), radius, DETECTED, -1, cv2.LINE_AA)
            label = f"{k + 1} {name}"
            color = DETECTED
        else:
            cv2.circle(pic, (int(x), int(y)), radius + 1, MISSED, 1, cv2.LINE_AA)
            label = f"{k + 1} {name} ({peaks[k]:.2f})"
            color = MISSED
        origin = (int(x) + radius + 2, int(y) - radius)
        cv2.putText(pic, label, origin, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(pic, label, origin, cv2.FONT_HERSHEY_SIMPLEX, font, color, 1, cv2.LINE_AA)
    return pic


def write_overlay(
    path: str | Path,
    protocol: Callable,
    xy: np.ndarray,
    peaks: np.ndarray,
    present: np.ndarray,
    names: Sequence[str],
    out_png: Path,
) -> Path:
    """Read ``path`` again, apply ``protocol``, draw the landmarks and write ``out_png``."""
    import cv2

    from landmark_afl.io import read_image

    pixels, meta = read_image(path)
    pic = draw_overlay(protocol(pixels, meta), xy, peaks, present, names)
    from landmark_afl.engine.atomic import write_atomic

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", pic)
    if not ok:
        raise OSError(f"could not encode the overlay of {path} as PNG")
    write_atomic(out_png, png.tobytes())  # any file name the OS allows (cv2.imwrite needs an encodable one)
    return out_png
