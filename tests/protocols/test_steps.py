"""Each protocol step against an independent reference (numpy by hand, scipy, OpenCV's 8-bit CLAHE)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from landmark_afl.protocols import STEPS
from landmark_afl.protocols.clahe import clahe_float, tile_tables


def run(name: str, x: np.ndarray, meta: dict | None = None, **params) -> np.ndarray:
    spec = STEPS[name]
    full = {k: p.default for k, p in spec.params.items()} | params
    out = spec.func(np.array(x, dtype=np.float32, copy=True), meta or {}, **full)
    assert out.dtype == np.float32 and out.shape == x.shape
    return out


@pytest.fixture
def raw12() -> np.ndarray:
    """A smooth 12-bit 'radiograph' with noise, 300 x 400 (small enough for exact percentiles)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:400]
    body = 3000 * np.exp(-(((xx - 200) / 120.0) ** 2)) + 400 * np.sin(yy / 15.0)
    return (body + rng.normal(0, 40, body.shape)).clip(0, 4095).astype(np.float32)


def test_percentile_window_matches_numpy(raw12):
    lo, hi = np.percentile(raw12, [2, 98])
    expected = np.clip((raw12 - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(run("percentile_window", raw12, lo=2.0, hi=98.0), expected, atol=1e-5)


def test_percentile_window_width_scale_widens_around_centre(raw12):
    lo, hi = np.percentile(raw12, [1, 99])
    c, w = (lo + hi) / 2, (hi - lo) * 2.0
    expected = np.clip((raw12 - (c - w / 2)) / w, 0, 1)
    np.testing.assert_allclose(run("percentile_window", raw12, lo=1.0, hi=99.0, width_scale=2.0), expected, atol=1e-5)


def test_percentile_window_subsample_close_to_full_percentiles():
    """Large images use a grid subsample for the percentiles; the window edges stay within 0.5 % of the range."""
    rng = np.random.default_rng(1)
    big = ndimage.gaussian_filter(rng.normal(size=(2400, 1935)), 20).astype(np.float32) * 1e4 + 2000
    lo, hi = np.percentile(big, [1, 99])
    expected = np.clip((big - lo) / (hi - lo), 0, 1)
    assert np.abs(run("percentile_window", big, lo=1.0, hi=99.0) - expected).max() < 0.005


def test_voi_window_uses_dicom_linear_function():
    x = np.arange(0, 1024, dtype=np.float32).reshape(32, 32)
    c, w = 300.0, 201.0
    # DICOM PS3.3 C.11.2.1.2 by hand: y = ((x - (c - 0.5)) / (w - 1) + 0.5), clipped to [0, 1].
    expected = np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0, 1)
    out = run("voi_window", x, {"voi_window": (c, w)})
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out[x == 200].item() == pytest.approx(0.0025, abs=1e-6)  # (200 - 299.5) / 200 + 0.5
    assert out[x == 300].item() == pytest.approx(0.5025, abs=1e-6)
    wide = run("voi_window", x, {"voi_window": (c, w)}, width_scale=2.0)
    np.testing.assert_allclose(wide, np.clip((x - (c - 0.5)) / (2 * (w - 1)) + 0.5, 0, 1), atol=1e-6)


@pytest.mark.parametrize("meta", [{}, {"voi_window": None}, {"voi_window": (100.0, 0.0)}, {"voi_window": "bad"}])
def test_voi_window_falls_back_to_percentile_window(raw12, meta):
    expected = run("percentile_window", raw12, lo=0.5, hi=99.5)
    np.testing.assert_array_equal(run("voi_window", raw12, meta, lo=0.5, hi=99.5), expected)


def test_normalize_minmax_and_zscore(raw12):
    mn, mx = raw12.min(), raw12.max()
    np.testing.assert_allclose(run("normalize", raw12, method="minmax"), (raw12 - mn) / (mx - mn), atol=1e-5)
    m, s = raw12.astype(np.float64).mean(), raw12.astype(np.float64).std()
    expected = np.clip((raw12 - m) / (2 * 2.0 * s) + 0.5, 0, 1)
    np.testing.assert_allclose(run("normalize", raw12, method="zscore", z_range=2.0), expected, atol=1e-5)


def test_gamma_by_hand():
    x = np.linspace(0, 1, 101, dtype=np.float32).reshape(1, -1)
    np.testing.assert_allclose(run("gamma", x, gamma=0.5), np.sqrt(x), atol=1e-6)
    np.testing.assert_allclose(run("gamma", x, gamma=2.2), x.astype(np.float64) ** 2.2, atol=1e-6)


def test_tone_curve_by_hand():
    x = np.linspace(0, 1, 201, dtype=np.float32).reshape(1, -1)
    g, m = 6.0, 0.4
    s = 1 / (1 + np.exp(-g * (x.astype(np.float64) - m)))
    s0, s1 = 1 / (1 + np.exp(g * m)), 1 / (1 + np.exp(-g * (1 - m)))
    out = run("tone_curve", x, gain=g, midpoint=m)
    np.testing.assert_allclose(out, (s - s0) / (s1 - s0), atol=1e-6)
    assert out[0, 0] == pytest.approx(0, abs=1e-6) and out[0, -1] == pytest.approx(1, abs=1e-6)
    assert np.all(np.diff(out[0]) > 0)


@pytest.mark.parametrize("sigma", [0.8, 2.0, 5.0])
def test_gaussian_blur_and_unsharp_match_scipy(raw12, sigma):
    x = raw12 / 4095.0
    ref = ndimage.gaussian_filter(x.astype(np.float64), sigma, mode="mirror", truncate=4.0)
    np.testing.assert_allclose(run("gaussian_blur", x, sigma=sigma), ref, atol=2e-5)
    np.testing.assert_allclose(run("unsharp_mask", x, sigma=sigma, amount=0.7), x + 0.7 * (x - ref), atol=3e-5)


def test_invert():
    x = np.linspace(0, 1, 50, dtype=np.float32).reshape(5, 10)
    np.testing.assert_allclose(run("invert", x), 1 - x, atol=1e-7)


@pytest.mark.parametrize("clip", [1.6, 2.0, 4.0])
def test_clahe_reproduces_opencv_8bit(clip):
    """On 8-bit input with 256 bins, the float CLAHE equals OpenCV's 8-bit CLAHE up to OpenCV's integer rounding.

    Tiles of 120 x 160 px make OpenCV's integer clip count (clip * 19200 / 256) exact for these clip limits.
    """
    rng = np.random.default_rng(2)
    field = ndimage.gaussian_filter(rng.normal(size=(960, 1280)), 24)
    img8 = np.clip((field - field.min()) / np.ptp(field) * 200 + rng.normal(0, 6, field.shape) + 20, 0, 255)
    img8 = img8.astype(np.uint8)
    ref = cv2.createCLAHE(clipLimit=clip, tileGridSize=(8, 8)).apply(img8).astype(np.float64) / 255
    out = clahe_float(img8.astype(np.float32) / 255, clip_limit=clip, tile_grid=8, bins=256)
    diff = np.abs(out - ref)
    assert diff.mean() < 1.0 / 255 and diff.max() < 2.5 / 255


def _tile_tables_one_by_one(x, clip_limit, ny, nx, bins):
    """The tables computed tile by tile, with numpy's histogram: the definition tile_tables must keep exactly."""
    h, w = x.shape
    ye = np.linspace(0, h, ny + 1).round().astype(int)
    xe = np.linspace(0, w, nx + 1).round().astype(int)
    index = ((x * np.float32(bins - 1)) + np.float32(0.5)).astype(np.uint16)
    tables = np.empty((ny, nx, bins))
    for ty in range(ny):
        for tx in range(nx):
            tile = index[ye[ty] : ye[ty + 1], xe[tx] : xe[tx + 1]]
            hist = np.bincount(tile.ravel(), minlength=bins).astype(np.float64)
            limit = max(clip_limit * tile.size / bins, 1.0)
            excess = float(np.maximum(hist - limit, 0.0).sum())
            hist = np.minimum(hist, limit) + excess / bins
            tables[ty, tx] = np.cumsum(hist) / tile.size
    return tables


@pytest.mark.parametrize("shape", [(256, 256), (301, 217), (7, 5), (64, 3), (1200, 960)])
@pytest.mark.parametrize("clip", [1.0, 1.5, 3.0])
@pytest.mark.parametrize(("grid", "bins"), [(8, 256), (3, 16), (16, 4096)])  # (16, 4096): over 65 536 pairs
def test_clahe_tile_tables_equal_the_tile_by_tile_definition(shape, clip, grid, bins):
    """One histogram of (tile, bin) pairs, clipped and accumulated at once, gives the same bits as one tile at a
    time (odd tile sizes too, the values 0 and 1 included)."""
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    x = ndimage.gaussian_filter(rng.random(shape), 2).astype(np.float32)
    x = (x - x.min()) / np.ptp(x)
    ny, nx = min(grid, shape[0]), min(grid, shape[1])
    expected = _tile_tables_one_by_one(x, clip, ny, nx, bins)
    np.testing.assert_array_equal(tile_tables(x, clip, ny, nx, bins), expected)


def test_clahe_keeps_12bit_precision():
    """A 12-bit ramp keeps thousands of output levels (8-bit CLAHE, like albumentations', gives at most 256)."""
    ramp = np.tile(np.arange(4096, dtype=np.float32) / 4095, (128, 1))
    out = run("clahe", ramp, clip_limit=2.0, tile_grid=4)
    assert len(np.unique(out)) > 3000
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_clahe_equalises_a_low_contrast_image():
    rng = np.random.default_rng(3)
    x = (0.45 + 0.1 * ndimage.gaussian_filter(rng.random((256, 256)), 4)).astype(np.float32)
    out = run("clahe", x, clip_limit=4.0, tile_grid=4)
    assert out.std() > 2 * x.std()
