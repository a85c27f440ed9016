"""Rendering of the phantom: path lengths through the solids, then Beer-Lambert attenuation and a detector.

Each solid contributes a path length per pixel (the chord through a round capsule or an ellipsoid, analytic, so no
mesh is needed): soft tissue, cortical bone (the outer shell) and marrow (the inner part) are kept apart, bone
displaces soft tissue, and unions are approximated by the per-pixel maximum. The transmitted fraction
``exp(-sum(mu * length))`` goes through the collimator (a lead field with a soft edge), scatter (a wide blur of the
primary), the anode heel effect, detector blur, Poisson quantum noise and electronic noise, then the log transform
of a processed DX image (bone bright), scaled to 12 bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from landmark_afl.data.phantom_anatomy import Capsule, Ellipsoid

# Linear attenuation coefficients, 1/mm, at a hand-radiography spectrum (~50 keV effective).
MU_SOFT = 0.022
MU_CORTEX = 0.10
MU_MARROW = 0.045
MU_METAL = 0.9
COLLIMATOR_LEAK = 0.015


@dataclass(frozen=True)
class Placement:
    """mm -> pixel mapping of the hand: ``px = offset + scale * R(angle) @ (mirror * x, -y)``."""

    offset: tuple[float, float]
    scale: float  # pixels per mm, hand size included
    angle: float  # degrees
    mirror: bool
    width: float = 1.0

    def matrix(self) -> np.ndarray:
        a = np.deg2rad(self.angle)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        flip = np.diag([(-1.0 if self.mirror else 1.0) * self.width, -1.0])
        return self.scale * rot @ flip

    def apply(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) @ self.matrix().T + np.asarray(self.offset)


def _bbox(points: np.ndarray, pad: float, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    lo = np.floor(points.min(axis=0) - pad).astype(int)
    hi = np.ceil(points.max(axis=0) + pad).astype(int) + 1
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], shape[1]), min(hi[1], shape[0])
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _chord(r: np.ndarray, d2: np.ndarray) -> np.ndarray:
    return 2.0 * np.sqrt(np.maximum(r * r - d2, 0.0))


def add_capsule(outer: np.ndarray, inner: np.ndarray | None, cap: Capsule, place: Placement, mm_per_px: float):
    """Max-combine the path lengths (mm) of a capsule into ``outer`` (whole solid) and ``inner`` (marrow)."""
    p = place.apply(np.array([cap.p0, cap.p1]))
    s = place.scale
    r0, r1 = cap.r0 * s, cap.r1 * s
    box = _bbox(p, max(r0, r1) + 1, outer.shape)
    if box is None:
        return
    ys = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None]
    xs = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :]
    d = p[1] - p[0]
    n2 = max(float(d @ d), 1e-9)
    t = np.clip(((xs - p[0, 0]) * d[0] + (ys - p[0, 1]) * d[1]) / n2, 0.0, 1.0)
    d2 = (xs - p[0, 0] - t * d[0]) ** 2 + (ys - p[0, 1] - t * d[1]) ** 2
    r = r0 + t * (r1 - r0)
    chord = _chord(r, d2) * mm_per_px
    if cap.depth_cap is not None:
        chord = np.minimum(chord, cap.depth_cap * place.scale * mm_per_px)
    np.maximum(outer[box], chord, out=outer[box])
    if inner is not None:
        np.maximum(inner[box], _chord(r * (1.0 - cap.cortex), d2) * mm_per_px, out=inner[box])


def add_ellipsoid(outer: np.ndarray, inner: np.ndarray | None, ell: Ellipsoid, place: Placement, mm_per_px: float):
    """Max-combine the chord lengths (mm) of an ellipsoid into ``outer`` and its marrow into ``inner``."""
    m = place.matrix()
    c = place.apply(np.array([ell.centre]))[0]
    a = np.deg2rad(ell.angle)
    axes = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.diag([ell.a, ell.b])  # columns, mm
    axes_px = m @ axes  # in-plane axes in pixels (columns)
    inv = np.linalg.inv(axes_px)
    box = _bbox(np.array([c]), float(np.abs(axes_px).sum(axis=1).max()) + 1, outer.shape)
    if box is None:
        return
    ys = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None] - c[1]
    xs = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :] - c[0]
    u = inv[0, 0] * xs + inv[0, 1] * ys
    v = inv[1, 0] * xs + inv[1, 1] * ys
    q = u * u + v * v
    depth = ell.c * place.scale * mm_per_px
    np.maximum(outer[box], _chord(1.0, q) * depth, out=outer[box])
    if inner is not None:
        k = 1.0 - ell.cortex
        np.maximum(inner[box], _chord(k, q) * depth, out=inner[box])


def field_mask(shape: tuple[int, int], corners: np.ndarray, penumbra_px: float) -> np.ndarray:
    """Collimated field: 1 inside the polygon ``corners`` (x, y pixels), 0 outside, a blurred edge."""
    mask = np.zeros(shape, np.float32)
    cv2.fillPoly(mask, [np.round(corners * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    if penumbra_px > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), penumbra_px)
    return mask


@dataclass(frozen=True)
class Exposure:
    """Acquisition and processing settings of one image."""

    photons: float  # mean photons per pixel without object (quantum noise: fewer is noisier)
    bone_factor: float  # tube voltage: scales the bone attenuation (lower kV, more bone contrast)
    scatter: float  # scatter-to-primary fraction
    heel: tuple[float, float]  # heel-effect gradient across the image (x, y), relative
    blur_px: float  # detector / focal spot blur (sigma, pixels)
    electronic: float  # electronic noise (photons, sigma)
    gain: float  # stored value per unit of log attenuation
    offset: float  # stored value of the unattenuated beam


def render(
    soft: np.ndarray,
    cortex: np.ndarray,
    marrow: np.ndarray,
    metal: np.ndarray,
    field: np.ndarray,
    exposure: Exposure,
    rng: np.random.Generator,
) -> np.ndarray:
    """Path lengths (mm) -> 12-bit MONOCHROME2 stored values (uint16, bone bright)."""
    h, w = soft.shape
    tissue = np.maximum(soft - cortex - marrow, 0.0)
    mu = MU_SOFT * tissue + exposure.bone_factor * (MU_CORTEX * cortex + MU_MARROW * marrow) + MU_METAL * metal
    primary = np.exp(-mu) * (COLLIMATOR_LEAK + (1.0 - COLLIMATOR_LEAK) * field)
    sigma = 0.08 * max(h, w)
    scattered = cv2.GaussianBlur(primary, (0, 0), sigma) * exposure.scatter
    signal = primary + scattered
    yy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xx = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    signal = signal * (1.0 + exposure.heel[0] * xx + exposure.heel[1] * yy)
    if exposure.blur_px > 0:
        signal = cv2.GaussianBlur(signal, (0, 0), exposure.blur_px)
    counts = rng.poisson(np.maximum(signal * exposure.photons, 0.0)).astype(np.float32)
    counts += rng.normal(0.0, exposure.electronic, counts.shape).astype(np.float32)
    counts = cv2.GaussianBlur(counts, (0, 0), 0.5)  # detector cross-talk: noise is not white
    log_att = -np.log(np.maximum(counts, 0.5) / exposure.photons)
    stored = exposure.offset + exposure.gain * log_att
    return np.clip(np.round(stored), 0, 4095).astype(np.uint16)
