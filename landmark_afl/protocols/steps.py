"""The steps a contrast protocol is made of: pure functions plus the schema of their parameters.

Every step takes the current float32 image ``x`` (its own copy: a step may overwrite it), the image's ``meta`` dict
from :func:`landmark_afl.io.read_image` (or ``{}``) and its parameters as keyword arguments, and returns the new
float32 image. Window steps (``percentile_window``, ``voi_window``, ``normalize``) map the raw values of any range
(8-bit, 12/16-bit, Hounsfield-like) to [0, 1]; the steps after them work on [0, 1] and clip their input to it where
their math needs it (``gamma``, ``clahe``, ``tone_curve``). ``unsharp_mask`` may overshoot [0, 1]; the protocol clips
once at the end.

The registry :data:`STEPS` is a plain dict built from an explicit list; a protocol file names its steps by key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from landmark_afl.protocols.clahe import clahe_float
from landmark_afl.protocols.percentile import percentiles

# Percentiles are computed on a regular subsample of at most about this many pixels (every k-th row and column):
# 3 ms instead of 27 ms on a 2400 x 1935 image; the window edges move by well under 1 % of the range.
PERCENTILE_SAMPLE_PIXELS = 262_144


@dataclass(frozen=True)
class Param:
    """One parameter of a step: its type, default, allowed range and meaning."""

    kind: type
    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    doc: str = ""

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.lo is not None and self.hi is not None:
            return f"{self.kind.__name__} in [{self.lo:g}, {self.hi:g}]"
        return self.kind.__name__


@dataclass(frozen=True)
class StepSpec:
    """A registered step: its function, parameters and role in the pipeline."""

    name: str
    func: Callable[..., np.ndarray]
    doc: str
    params: dict[str, Param] = field(default_factory=dict)
    maps_to_unit: bool = False  # its output is in [0, 1] whatever the input range (a window step)
    needs_unit: bool = False  # its input must already be on the [0, 1] scale (must follow a window step)
    check: Callable[[dict[str, Any]], str | None] | None = None  # cross-parameter rule; returns the problem


def _percentiles(x: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Percentiles ``lo`` and ``hi`` of ``x`` on a deterministic grid subsample (see PERCENTILE_SAMPLE_PIXELS)."""
    stride = max(1, int(math.sqrt(x.size / PERCENTILE_SAMPLE_PIXELS)))
    sample = x[::stride, ::stride]
    p_lo, p_hi = percentiles(sample, [lo, hi])  # np.percentile's values, the tails sorted alone (10x faster)
    if p_hi <= p_lo:  # e.g. 99 % of the image is background: fall back to the full range
        p_lo, p_hi = float(x.min()), float(x.max())
    return float(p_lo), float(p_hi)


def _apply_window(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear window: ``center - width / 2`` -> 0, ``center + width / 2`` -> 1, clipped; in place."""
    width = max(float(width), 1e-12)
    x -= np.float32(center - width / 2.0)
    x *= np.float32(1.0 / width)
    return np.clip(x, 0.0, 1.0, out=x)


def percentile_window(
    x: np.ndarray, meta: Mapping[str, Any], *, lo: float, hi: float, width_scale: float
) -> np.ndarray:
    """Window between the ``lo`` and ``hi`` percentiles of the image, widened by ``width_scale``, clipped to [0, 1]."""
    p_lo, p_hi = _percentiles(x, lo, hi)
    return _apply_window(x, (p_lo + p_hi) / 2.0, (p_hi - p_lo) * width_scale)


def voi_window(x: np.ndarray, meta: Mapping[str, Any], *, lo: float, hi: float, width_scale: float) -> np.ndarray:
    """The image's own display: the file's VOI exactly as pydicom's ``apply_voi_lut`` applies it, scaled to [0, 1].

    With ``meta["voi"]`` (DICOM, :func:`landmark_afl.io.dicom_pixels.voi_record`): Window Center / Width through its
    VOILUTFunction (LINEAR, LINEAR_EXACT or SIGMOID, PS3.3 C.11.2.1.2 / C.11.2.1.3) or the VOI LUT Sequence
    (C.11.2.1.1), on the modality output, then inverted back for MONOCHROME1 (bone bright):
    :func:`landmark_afl.io.dicom_pixels.apply_voi` (a LINEAR window on MONOCHROME1 pixels keeps this step's earlier
    mirrored window, one modality unit from the exact display, so outputs did not change). ``width_scale``
    multiplies the window width (LINEAR: ``w - 1``) or stretches a LUT along its input axis around its middle.
    Without ``meta["voi"]`` but with ``meta["voi_window"]`` = (center, width) in the units of the image (a caller's
    own window, a colour DICOM): the DICOM linear function ``(x - (c - 0.5)) / (w - 1) + 0.5`` with the width
    scaled. Without a usable window (no VOI, a JPEG, a width of 1 or less) it falls back to
    ``percentile_window(lo, hi, width_scale)``.
    """
    voi = meta.get("voi") if meta else None
    if isinstance(voi, Mapping) and voi.get("function"):
        from landmark_afl.io.dicom_pixels import apply_voi

        return apply_voi(x, voi, width_scale)
    window = meta.get("voi_window") if meta else None
    center = width = None
    if window is not None:
        try:
            center, width = (float(v) for v in window)
        except (TypeError, ValueError):
            center = width = None
    if center is None or width is None or not (math.isfinite(center) and math.isfinite(width)) or width <= 1.0:
        return percentile_window(x, meta, lo=lo, hi=hi, width_scale=width_scale)
    # DICOM: c - 0.5 - (w - 1) / 2 -> 0 and c - 0.5 + (w - 1) / 2 -> 1.
    return _apply_window(x, center - 0.5, (width - 1.0) * width_scale)


def normalize(x: np.ndarray, meta: Mapping[str, Any], *, method: str, z_range: float) -> np.ndarray:
    """Min-max (min -> 0, max -> 1) or z-score (mean +- ``z_range`` standard deviations -> [0, 1]), clipped."""
    if method == "minmax":
        v_min, v_max = float(x.min()), float(x.max())
        return _apply_window(x, (v_min + v_max) / 2.0, v_max - v_min)
    mean, std = cv2.meanStdDev(x)
    return _apply_window(x, float(mean[0, 0]), 2.0 * z_range * float(std[0, 0]))


def gamma(x: np.ndarray, meta: Mapping[str, Any], *, gamma: float) -> np.ndarray:
    """Power law ``x ** gamma`` on [0, 1]: gamma < 1 lifts the dark range and flattens the bright one."""
    np.clip(x, 0.0, 1.0, out=x)
    return cv2.pow(x, gamma)


def tone_curve(x: np.ndarray, meta: Mapping[str, Any], *, gain: float, midpoint: float) -> np.ndarray:
    """Sigmoid characteristic curve (the film H&D curve of radiography), rescaled so 0 -> 0 and 1 -> 1.

    ``gain`` is the steepness (slope ``gain / 4`` before rescaling at ``midpoint``); a larger gain separates bone from
    soft tissue more and raises the global contrast.
    """
    np.clip(x, 0.0, 1.0, out=x)
    s0 = 1.0 / (1.0 + math.exp(gain * midpoint))
    s1 = 1.0 / (1.0 + math.exp(-gain * (1.0 - midpoint)))
    x -= np.float32(midpoint)
    x *= np.float32(-gain)
    y = cv2.exp(x)
    y += np.float32(1.0)
    np.reciprocal(y, out=y)
    y -= np.float32(s0)
    y *= np.float32(1.0 / (s1 - s0))
    return y


def clahe(x: np.ndarray, meta: Mapping[str, Any], *, clip_limit: float, tile_grid: int, bins: int) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation on float [0, 1], precision kept (see :mod:`.clahe`)."""
    np.clip(x, 0.0, 1.0, out=x)
    return clahe_float(x, clip_limit=clip_limit, tile_grid=tile_grid, bins=bins)


def _blur(x: np.ndarray, sigma: float, meta: Mapping[str, Any]) -> np.ndarray:
    # Sizes are in pixels of the stored image: a JPEG 2000 or JPEG file decoded at a reduced scale (meta
    # "decode_scale" f > 1, each pixel covering f x f stored pixels) is blurred by sigma / f of its own pixels, so the
    # protocol does the same to it as to the full decode. OpenCV's separable Gaussian, kernel radius 4 sigma for
    # float32, border reflect-101 (scipy mode "mirror").
    sigma = sigma / float((meta or {}).get("decode_scale") or 1)
    return cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def unsharp_mask(x: np.ndarray, meta: Mapping[str, Any], *, sigma: float, amount: float) -> np.ndarray:
    """``x + amount * (x - gaussian(x, sigma))``: edge enhancement at the scale ``sigma`` (pixels of the stored
    image, also when it was decoded at a reduced resolution); may overshoot."""
    detail = _blur(x, sigma, meta)
    np.subtract(x, detail, out=detail)
    detail *= np.float32(amount)
    x += detail
    return x


def gaussian_blur(x: np.ndarray, meta: Mapping[str, Any], *, sigma: float) -> np.ndarray:
    """Gaussian smoothing with standard deviation ``sigma`` (pixels of the stored image): suppresses quantum noise and
    fine detail."""
    return _blur(x, sigma, meta)


def invert(x: np.ndarray, meta: Mapping[str, Any]) -> np.ndarray:
    """``1 - x``: bone dark (the film look). read_image already makes bone bright in every file."""
    np.clip(x, 0.0, 1.0, out=x)
    np.subtract(np.float32(1.0), x, out=x)
    return x


def _check_percentiles(params: dict[str, Any]) -> str | None:
    if params["lo"] >= params["hi"]:
        return f"lo ({params['lo']:g}) must be below hi ({params['hi']:g})"
    return None


_WINDOW_PARAMS = {
    "lo": Param(float, 0.5, 0.0, 100.0, doc="lower percentile -> 0"),
    "hi": Param(float, 99.5, 0.0, 100.0, doc="upper percentile -> 1"),
    "width_scale": Param(float, 1.0, 0.1, 10.0, doc="window width multiplier around its centre (>1: flatter)"),
}

STEPS: dict[str, StepSpec] = {
    spec.name: spec
    for spec in (
        StepSpec(
            "percentile_window",
            percentile_window,
            "linear window between two percentiles of the image, clipped to [0, 1]",
            dict(_WINDOW_PARAMS),
            maps_to_unit=True,
            check=_check_percentiles,
        ),
        StepSpec(
            "voi_window",
            voi_window,
            "the file's own VOI (DICOM window with its VOI LUT function, or VOI LUT); without one, percentiles lo..hi",
            {
                "lo": Param(float, 0.5, 0.0, 100.0, doc="fallback: lower percentile -> 0"),
                "hi": Param(float, 99.5, 0.0, 100.0, doc="fallback: upper percentile -> 1"),
                "width_scale": Param(
                    float, 1.0, 0.1, 10.0, doc="window width multiplier (a VOI LUT: stretch of its input axis)"
                ),
            },
            maps_to_unit=True,
            check=_check_percentiles,
        ),
        StepSpec(
            "normalize",
            normalize,
            "min-max, or z-score (mean +- z_range std), to [0, 1]",
            {
                "method": Param(str, "minmax", choices=("minmax", "zscore"), doc="minmax or zscore"),
                "z_range": Param(float, 3.0, 0.5, 20.0, doc="zscore: standard deviations mapped to each end"),
            },
            maps_to_unit=True,
        ),
        StepSpec(
            "gamma",
            gamma,
            "power law x ** gamma",
            {"gamma": Param(float, 1.0, 0.1, 10.0, doc="exponent (<1 lifts the darks)")},
            needs_unit=True,
        ),
        StepSpec(
            "tone_curve",
            tone_curve,
            "sigmoid characteristic curve (film-like), 0 -> 0 and 1 -> 1",
            {
                "gain": Param(float, 6.0, 0.5, 50.0, doc="steepness of the sigmoid"),
                "midpoint": Param(float, 0.5, 0.0, 1.0, doc="input value at the steepest point"),
            },
            needs_unit=True,
        ),
        StepSpec(
            "clahe",
            clahe,
            "contrast-limited adaptive histogram equalisation, full float precision",
            {
                "clip_limit": Param(float, 2.0, 1.0, 100.0, doc="histogram clip, in multiples of the mean bin count"),
                "tile_grid": Param(int, 8, 1, 64, doc="tiles per side"),
                "bins": Param(int, 256, 16, 4096, doc="histogram bins (the clip limit is relative to them)"),
            },
            needs_unit=True,
        ),
        StepSpec(
            "unsharp_mask",
            unsharp_mask,
            "edge enhancement x + amount * (x - blur(x, sigma))",
            {
                "sigma": Param(float, 2.0, 0.1, 50.0, doc="blur standard deviation in pixels"),
                "amount": Param(float, 1.0, 0.0, 10.0, doc="weight of the detail added back"),
            },
            needs_unit=True,
        ),
        StepSpec(
            "gaussian_blur",
            gaussian_blur,
            "Gaussian smoothing",
            {"sigma": Param(float, 1.0, 0.1, 50.0, doc="standard deviation in pixels")},
        ),
        StepSpec("invert", invert, "1 - x (bone dark)", {}, needs_unit=True),
    )
}
