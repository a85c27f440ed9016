"""Overlay PNGs for ``predict --overlays``: the predicted landmarks drawn on the image as a viewer would show it.

What the picture shows:

- **Display**: the file's own VOI (:func:`display_image`): a DICOM's Window Center / Width with its VOI LUT
  Function, or its VOI LUT Sequence, applied exactly (:func:`landmark_afl.io.dicom_pixels.apply_voi`, MONOCHROME1
  shown bone bright); without one, the 0.5-99.5 percentile window. Never the protocol output (the model's input).
- **Size**: full resolution up to ``max_side`` (:data:`MAX_SIDE`, 2048) pixels on the long side; a larger image is
  scaled down to it (area average), an image under :data:`MIN_SIDE` (512) is enlarged by a whole factor (nearest
  neighbour, so each pixel stays a square) to keep the labels legible. The title states the scale.
- **Marks**: a landmark at or above the threshold is a filled green disc; one below it (not detected) a red ring
  with a cross, its label ending in its peak response in brackets. The legend in the title band says so.
- **Labels** ``"k name"`` on a dark box: placed greedily (:func:`place_labels`) so that no two overlap and none
  leaves the image; a label not level with and next to its mark, or nearer to another mark, gets a leader line; one
  with no free place inside the image goes to a column right of the image (the canvas widens), also with a leader
  line.
- **Title band** on top: file name, run, threshold and protocol; the display and the scale; the legend.

Text is drawn with OpenCV's Hershey font: characters outside printable ASCII are shown as "?".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAX_SIDE = 2048  # the long side of an overlay at most (full resolution below it)
MIN_SIDE = 512  # smaller images are enlarged by a whole factor to about this
PERCENTILES = (0.5, 99.5)  # the display window of an image without its own VOI
DETECTED = (40, 220, 40)  # BGR
MISSED = (40, 40, 230)
TEXT = (235, 235, 235)
BAND = (32, 32, 32)
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
# candidate label positions: distances in multiples of the gap, then 8 directions (unit vectors, y down)
_DISTANCES = (1, 2, 3, 4, 6, 8, 11, 15, 20, 26, 34)
_DIRECTIONS = ((1, 0), (-1, 0), (0.7, -0.7), (0.7, 0.7), (-0.7, -0.7), (-0.7, 0.7), (0, -1), (0, 1))

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends), canvas pixels


@dataclass
class Overlay:
    """A rendered overlay: the BGR picture and where everything went (canvas pixels).

    Attributes:
        image: BGR uint8 [H, W, 3].
        scale: display pixels per image pixel.
        image_box: where the image lies on the canvas.
        label_boxes: one box per drawn label (landmarks with finite coordinates), in landmark order.
        overflow: how many labels went to the column right of the image.
        title_lines: the text of the title band.
    """

    image: np.ndarray
    scale: float
    image_box: Box
    label_boxes: list[Box] = field(default_factory=list)
    overflow: int = 0
    title_lines: list[str] = field(default_factory=list)


def display_image(pixels: np.ndarray, meta: Mapping[str, Any] | None) -> tuple[np.ndarray, str]:
    """The image as a viewer shows it, float32 [0, 1], and a description of the window used.

    The file's VOI when it has one (``meta["voi"]``, else its linear ``meta["voi_window"]``), else the percentile
    window :data:`PERCENTILES` (the ``voi_window`` protocol step with its fallback at width scale 1).
    """
    from landmark_afl.protocols.steps import voi_window

    meta = meta or {}
    voi, window = meta.get("voi"), meta.get("voi_window")
    lo, hi = PERCENTILES
    out = voi_window(np.array(pixels, dtype=np.float32, copy=True), meta, lo=lo, hi=hi, width_scale=1.0)
    if isinstance(voi, Mapping) and voi.get("function") == "LUT":
        label = f"the file's VOI LUT ({len(voi['lut'])} entries)"
    elif isinstance(voi, Mapping) and voi.get("function"):
        label = f"the file's VOI window c {voi['center']:g} w {voi['width']:g} {voi['function']}"
    elif window is not None and _usable_window(window):
        label = f"the file's VOI window c {float(window[0]):g} w {float(window[1]):g}"
    else:
        label = f"percentile window {PERCENTILES[0]:g}-{PERCENTILES[1]:g} %"
    return out, label


def _ascii(text: str) -> str:
    """What OpenCV's Hershey fonts can draw: printable ASCII; anything else (accents, a newline, the surrogates of a
    name that is not UTF-8, on which ``cv2.getTextSize`` crashes) becomes "?"."""
    return "".join(c if " " <= c <= "~" else "?" for c in str(text))


def _usable_window(window: Any) -> bool:
    try:
        c, w = (float(v) for v in window)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(c) and np.isfinite(w) and w > 1.0)


def display_scale(shape: tuple[int, int], max_side: int | None = MAX_SIDE) -> float:
    """Display pixels per image pixel: 1 up to ``max_side``, less above it, a whole factor > 1 below MIN_SIDE."""
    long_side = max(shape[:2])
    if max_side is not None and long_side > max_side:
        return max_side / long_side
    if long_side < MIN_SIDE:
        return float(max(1, MIN_SIDE // long_side))
    return 1.0


def _intersects(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _box_distance(box: Box, point: np.ndarray) -> float:
    nx = min(max(point[0], box[0]), box[2])
    ny = min(max(point[1], box[1]), box[3])
    return float(np.hypot(nx - point[0], ny - point[1]))


def _cost(box: Box, k: int, anchors: np.ndarray, mark_radius: float) -> tuple[int, int]:
    """(marks the box covers, whether another mark is nearer to it than its own): lower is better."""
    dists = [_box_distance(box, p) for p in anchors]
    covered = sum(d <= mark_radius for d in dists)
    ambiguous = int(any(d <= dists[k] for j, d in enumerate(dists) if j != k))
    return covered, ambiguous


def place_labels(
    anchors: np.ndarray, sizes: Sequence[tuple[int, int]], area: Box, mark_radius: float, gap: float
) -> list[Box | None]:
    """Greedy label placement: a box per anchor inside ``area``, no two intersecting, or None (no room).

    Each label in turn tries positions around its anchor at distances ``gap * d`` (``d`` in ``_DISTANCES``) in
    8 directions; the first that lies inside ``area`` and meets no placed box wins, preferring one that covers no
    mark (a disc of ``mark_radius`` around any anchor) and then one with no other mark nearer to it than its own
    (so that it cannot be read as another mark's label); failing that, the free position covering fewest marks.

    Args:
        anchors: [K, 2] (x, y) canvas positions of the marks.
        sizes: K (width, height) of the label boxes.
        area: the region the boxes must lie in.
        mark_radius: the radius of a mark.
        gap: the distance unit between a mark and its label.

    Returns:
        K boxes (x0, y0, x1, y1) or None.

    Example:
        >>> place_labels(np.array([[50.0, 50.0], [52.0, 50.0]]), [(30, 10), (30, 10)], (0, 0, 100, 100), 3, 5)
        [(15, 45, 45, 55), (57, 45, 87, 55)]
    """
    placed: list[Box] = []
    result: list[Box | None] = []
    for k, (ax, ay) in enumerate(np.asarray(anchors, dtype=np.float64)):
        w, h = sizes[k]
        best: tuple[tuple[int, int], Box] | None = None
        for d in _DISTANCES:
            dist = gap * d
            for ux, uy in _DIRECTIONS:
                cx, cy = ax + ux * dist, ay + uy * dist  # the box's corner/edge nearest the anchor is here
                x0 = cx if ux > 0 else cx - w if ux < 0 else cx - w / 2
                y0 = cy if uy > 0 else cy - h if uy < 0 else cy - h / 2
                box = (round(x0), round(y0), round(x0) + w, round(y0) + h)
                if box[0] < area[0] or box[1] < area[1] or box[2] > area[2] or box[3] > area[3]:
                    continue
                if any(_intersects(box, other) for other in placed):
                    continue
                cost = _cost(box, k, anchors, mark_radius)
                if best is None or cost < best[0]:
                    best = (cost, box)
                if cost == (0, 0):
                    break
            if best is not None and best[0] == (0, 0):
                break
        result.append(None if best is None else best[1])
        if best is not None:
            placed.append(best[1])
    return result


def render_overlay(
    display: np.ndarray,
    xy: np.ndarray,
    peaks: np.ndarray,
    present: np.ndarray,
    names: Sequence[str],
    *,
    title: Sequence[Sequence[str]] = (),
    max_side: int | None = MAX_SIDE,
) -> Overlay:
    """The overlay of ``display`` [H, W] (values in [0, 1]) with landmarks ``xy`` [K, 2] (image pixels).

    Args:
        display: the image as shown (:func:`display_image`).
        xy: [K, 2] (x, y) in pixels of ``display``, origin at the centre of the top-left pixel; rows with a
            non-finite value are not drawn.
        peaks: [K] peak responses.
        present: [K] whether each landmark is detected (peak at or above the threshold).
        names: K landmark names.
        title: the title's lines, each a sequence of text segments (file, run, threshold...; wrapped at "  |  "
            to the canvas width); the display scale is added to the last line, the legend below.
        max_side: the long side at most (None: always full resolution); see the module docstring.
    """
    import cv2

    h, w = display.shape[:2]
    scale = display_scale((h, w), max_side)
    grey = np.clip(np.nan_to_num(np.asarray(display, dtype=np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if scale != 1:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    dh, dw = grey.shape
    side = max(dh, dw)
    font = max(0.5, side / 1600)
    thick = max(1, round(font * 1.6))
    radius = max(4, side // 220)
    pad = max(2, round(4 * font))
    if scale == 1:
        scale_text = f"full resolution, {w} x {h} px"
    elif scale < 1:
        scale_text = f"scaled {scale:.3g}x: {dw} x {dh} of {w} x {h} px"
    else:
        scale_text = f"enlarged {scale:g}x (nearest): {dw} x {dh} of {w} x {h} px"

    xy = np.asarray(xy, dtype=np.float64)
    finite = np.all(np.isfinite(xy), axis=1)
    labels, sizes, anchors, keys = [], [], [], []
    for k, name in enumerate(names):
        if not finite[k]:
            continue
        text = _ascii(f"{k + 1} {name}" + ("" if present[k] else f" ({float(peaks[k]):.2f})"))
        (tw, th), base = cv2.getTextSize(text, _FONT, font, thick)
        labels.append(text)
        sizes.append((tw + 2 * pad, th + base + 2 * pad))
        anchors.append((xy[k] + 0.5) * scale - 0.5)
        keys.append(k)
    anchors_arr = np.array(anchors, dtype=np.float64).reshape(-1, 2)

    # the overflow column(s) right of the image: as many as the labels that found no place need
    gap = radius + pad + 2
    boxes = place_labels(anchors_arr, sizes, (0, 0, dw, dh), radius + 1, gap)
    lost = [i for i, b in enumerate(boxes) if b is None]
    column_w = max((sizes[i][0] for i in lost), default=0) + 2 * pad
    margin = 3 * radius
    x_col, y_col, columns = dw + margin, pad, 1 if lost else 0
    for i in sorted(lost, key=lambda i: anchors_arr[i, 1]):
        bw, bh = sizes[i]
        if y_col + bh > dh and y_col > pad:
            x_col, y_col, columns = x_col + column_w, pad, columns + 1
        boxes[i] = (x_col, y_col, x_col + bw, y_col + bh)
        y_col += bh + pad
    canvas_w = dw + (margin + columns * column_w if lost else 0)
    canvas_h_img = max(dh, max((b[3] for b in boxes if b is not None), default=0))

    n_missed = int(sum(not present[k] for k in keys))
    lines = [[_ascii(seg) for seg in line] for line in title] or [[]]
    lines[-1].append(scale_text)
    title_lines = [text for line in lines for text in _wrap(line, font, thick, canvas_w - 2 * pad)]
    legend = [
        ("disc", DETECTED, f"detected ({len(keys) - n_missed})"),
        ("ring", MISSED, f"below threshold, peak in brackets ({n_missed})"),
    ]
    line_h = cv2.getTextSize("Ag", _FONT, font, thick)[0][1] * 2 + pad
    band_h = line_h * (len(title_lines) + 1) + 2 * pad
    canvas = np.zeros((band_h + canvas_h_img, canvas_w, 3), np.uint8)
    canvas[:band_h] = BAND
    canvas[band_h : band_h + dh, :dw] = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    y = pad
    for line in title_lines:
        y += line_h
        cv2.putText(canvas, line, (pad, y - line_h // 3), _FONT, font, TEXT, thick, cv2.LINE_AA)
    y += line_h
    x = pad
    text_h = cv2.getTextSize("A", _FONT, font, thick)[0][1]
    for shape, color, text in legend:
        _mark(canvas, (x + radius, y - line_h // 3 - text_h // 2), radius, color, shape == "disc")
        x += 2 * radius + 2 * pad
        cv2.putText(canvas, text, (x, y - line_h // 3), _FONT, font, TEXT, thick, cv2.LINE_AA)
        x += cv2.getTextSize(text, _FONT, font, thick)[0][0] + 4 * pad

    shifted = [(b[0], b[1] + band_h, b[2], b[3] + band_h) for b in boxes]
    anchors_canvas = anchors_arr + np.array([0.0, band_h])
    for i, k in enumerate(keys):  # leader lines first, then the marks, then the labels on top
        own = _box_distance(shifted[i], anchors_canvas[i])
        beside = own <= gap + 1 and shifted[i][1] <= anchors_canvas[i][1] <= shifted[i][3]  # level with its mark
        nearer = any(_box_distance(shifted[i], p) <= own for j, p in enumerate(anchors_canvas) if j != i)
        if not beside or nearer:
            _leader(canvas, anchors_canvas[i], shifted[i], radius, DETECTED if present[k] else MISSED)
    for i, k in enumerate(keys):
        centre = tuple(int(v) for v in np.round(anchors_canvas[i]))
        _mark(canvas, centre, radius, DETECTED if present[k] else MISSED, bool(present[k]))
    for i, k in enumerate(keys):
        x0, y0, x1, y1 = shifted[i]
        region = canvas[y0:y1, x0:x1]
        region[:] = (region * 0.3).astype(np.uint8)
        base = cv2.getTextSize(labels[i], _FONT, font, thick)[1]
        color = DETECTED if present[k] else MISSED
        cv2.putText(canvas, labels[i], (x0 + pad, y1 - pad - base), _FONT, font, _lighter(color), thick, cv2.LINE_AA)
    return Overlay(canvas, scale, (0, band_h, dw, band_h + dh), shifted, len(lost), [*title_lines])


def _lighter(color: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(c + (255 - c) * 0.35) for c in color)  # type: ignore[return-value]


def _mark(canvas: np.ndarray, centre: tuple[int, int], radius: int, color: tuple, detected: bool) -> None:
    import cv2

    if detected:
        cv2.circle(canvas, centre, radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(canvas, centre, radius, color, -1, cv2.LINE_AA)
        return
    t = max(1, radius // 4)
    cv2.circle(canvas, centre, radius, (0, 0, 0), t + 2, cv2.LINE_AA)
    cv2.circle(canvas, centre, radius, color, t, cv2.LINE_AA)
    r = int(radius * 0.6)
    for dx, dy in ((r, r), (r, -r)):
        cv2.line(canvas, (centre[0] - dx, centre[1] - dy), (centre[0] + dx, centre[1] + dy), color, t, cv2.LINE_AA)


def _leader(canvas: np.ndarray, anchor: np.ndarray, box: Box, radius: int, color: tuple) -> None:
    """A line from the edge of the mark to the nearest point of its label box."""
    import cv2

    near = np.array([min(max(anchor[0], box[0]), box[2] - 1), min(max(anchor[1], box[1]), box[3] - 1)])
    vec = near - anchor
    dist = float(np.hypot(*vec))
    if dist <= radius + 1:
        return
    start = anchor + vec / dist * (radius + 1)
    p0, p1 = tuple(int(v) for v in np.round(start)), tuple(int(v) for v in np.round(near))
    t = max(1, radius // 4)
    cv2.line(canvas, p0, p1, (0, 0, 0), t + 2, cv2.LINE_AA)
    cv2.line(canvas, p0, p1, color, t, cv2.LINE_AA)


def _wrap(segments: Sequence[str], font: float, thick: int, width: int) -> list[str]:
    """Join ``segments`` with "  |  " into lines no wider than ``width`` px; a segment too wide alone loses its
    middle (a long file name keeps its start and end)."""
    import cv2

    def fits(text: str) -> bool:
        return cv2.getTextSize(text, _FONT, font, thick)[0][0] <= width

    lines: list[str] = []
    for seg in segments:
        short, keep = seg, len(seg)
        while keep > 8 and not fits(short):
            keep -= 2
            short = f"{seg[: keep // 2]}...{seg[len(seg) - (keep - keep // 2) :]}"
        seg = short
        if lines and fits(f"{lines[-1]}  |  {seg}"):
            lines[-1] = f"{lines[-1]}  |  {seg}"
        else:
            lines.append(seg)
    return lines


def draw_overlay(
    image: np.ndarray, xy: np.ndarray, peaks: np.ndarray, present: np.ndarray, names: Sequence[str], **kwargs: Any
) -> np.ndarray:
    """BGR uint8 picture of ``image`` [H, W] (values in [0, 1]) with landmarks ``xy`` [K, 2]: :func:`render_overlay`.

    Example:
        >>> pic = draw_overlay(np.zeros((40, 60)), np.array([[10.0, 20.0]]), np.array([0.9]), np.array([True]), ["a"])
        >>> pic.dtype.name, pic.shape[1]  # enlarged 8x to at least MIN_SIDE, a title band on top
        ('uint8', 480)
    """
    return render_overlay(image, xy, peaks, present, names, **kwargs).image


def overlay_title(
    path: str | Path, run_name: str | None, threshold: float | None, protocol_name: str | None, display_label: str
) -> list[list[str]]:
    """The title lines: file, run, threshold; the display and the protocol the model saw (not what is shown)."""
    return [
        [
            Path(path).name,
            f"run {run_name or 'n/a'}",
            "threshold n/a" if threshold is None else f"threshold {threshold:g}",
        ],
        [f"display: {display_label}", f"model input: protocol {protocol_name or 'n/a'}"],
    ]


def write_overlay(
    path: str | Path,
    protocol: Callable | None,
    xy: np.ndarray,
    peaks: np.ndarray,
    present: np.ndarray,
    names: Sequence[str],
    out_png: Path,
    *,
    run_name: str | None = None,
    threshold: float | None = None,
    max_side: int | None = MAX_SIDE,
) -> Path:
    """Read ``path`` again, draw the landmarks on its own display (:func:`display_image`) and write ``out_png``.

    Args:
        path: the image.
        protocol: the contrast protocol the model saw; only its ``name`` is used (in the title), the picture is the
            file's own display, not the protocol output.
        xy: [K, 2] (x, y) in pixels of the file.
        peaks: [K] peak responses.
        present: [K] detected or not.
        names: K landmark names.
        out_png: the PNG to write (atomically; parent folders are made).
        run_name: the run, for the title.
        threshold: the detection threshold, for the title.
        max_side: see :func:`render_overlay`.
    """
    import cv2

    from landmark_afl.engine.atomic import write_atomic
    from landmark_afl.io import read_image

    pixels, meta = read_image(path)
    display, label = display_image(pixels, meta)
    title = overlay_title(path, run_name, threshold, getattr(protocol, "name", None), label)
    pic = render_overlay(display, xy, peaks, present, names, title=title, max_side=max_side).image
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", pic)
    if not ok:
        raise OSError(f"could not encode the overlay of {path} as PNG")
    write_atomic(out_png, png.tobytes())  # any file name the OS allows (cv2.imwrite needs an encodable one)
    return out_png
