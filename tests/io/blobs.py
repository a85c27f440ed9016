"""Landmark-like test images for the reduced-decode tests (JPEG 2000 and JPEG): blobs, references, centroids."""

from __future__ import annotations

import numpy as np

from landmark_afl.data.letterbox import to_image_coords, to_input_coords

BLOBS = ((300.3, 200.7), (850.6, 640.2), (1000.1, 800.9))  # (x, y) original pixels
SIGMA = 12.0


def area_downsample(image: np.ndarray, f: int) -> np.ndarray:
    """Block mean over f x f blocks; the ragged last row / column repeats the edge (ceil(n / f) blocks)."""
    h, w = image.shape
    hr, wr = -(-h // f), -(-w // f)
    padded = np.pad(image.astype(np.float64), ((0, hr * f - h), (0, wr * f - w)), mode="edge")
    return padded.reshape(hr, f, wr, f).mean(axis=(1, 3))


def relative_errors(reduced: np.ndarray, full: np.ndarray, f: int) -> tuple[float, float]:
    """(mean, 99th percentile) of |reduced - area downsample of full| as a fraction of the full image's range."""
    ref = area_downsample(full, f)
    assert reduced.shape == ref.shape
    err = np.abs(reduced - ref) / float(np.ptp(full))
    return float(err.mean()), float(np.percentile(err, 99))


def blob_image(shape=(1001, 1203), dtype=np.uint16, base=500.0, peak=3000.0, ramp=0.0) -> np.ndarray:
    """Landmark-like Gaussian blobs (on a ramp of ``ramp`` across the width); odd sizes so that ceil(n / f) matters."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    img = base + ramp * xx / shape[1]
    for x, y in BLOBS:
        img = img + peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * SIGMA**2))
    return np.round(img).astype(dtype)


def identity(pixels, meta):
    """A protocol that changes nothing."""
    return pixels


def blob_centroids(prep) -> np.ndarray:
    """Each blob's intensity centroid in the prepared input, mapped back to original pixels (x, y)."""
    found = []
    win = int(4 * SIGMA * prep.scale.max()) + 2
    for xy in BLOBS:
        cx, cy = np.round(to_input_coords(np.asarray(xy), prep.scale)).astype(int)
        ys, xs = np.mgrid[cy - win : cy + win + 1, cx - win : cx + win + 1]
        patch = np.clip(prep.image[ys, xs] - np.median(prep.image), 0, None)
        centre = np.array([(patch * xs).sum(), (patch * ys).sum()]) / patch.sum()
        found.append(to_image_coords(centre, prep.scale))
    return np.array(found)
