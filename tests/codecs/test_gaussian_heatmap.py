import math

import numpy as np
import pytest
import torch

from landmark_afl.codecs import GaussianHeatmapCodec, gaussian_heatmap


def test_subpixel_decoding_error_below_a_tenth_of_a_pixel():
    rng = np.random.default_rng(0)
    codec = GaussianHeatmapCodec((96, 128), sigma=2.5)
    pts = rng.uniform([3, 3], [124, 92], size=(4, 20, 2))
    xy, peak = codec.decode(codec.encode(pts))
    err = np.abs(xy.numpy() - pts).max()
    assert err < 0.1, err
    assert err < 1e-2  # the log-parabola is exact for a Gaussian: only float32 rounding remains
    assert torch.all(peak > 0.85)


def test_absent_landmark_gives_zero_map_and_zero_peak():
    codec = GaussianHeatmapCodec((32, 32), sigma=2.0)
    maps = codec.encode(np.array([[5.0, 6.0], [np.nan, np.nan]]))
    assert maps.shape == (2, 32, 32)
    assert maps[1].abs().sum() == 0
    assert maps[0].max().item() == pytest.approx(np.exp(-0.0), abs=1e-6)  # on a pixel centre: peak exactly 1
    _, peak = codec.decode(maps[None])
    assert peak[0, 1] == 0


def test_encode_matches_direct_formula_and_stride():
    codec = GaussianHeatmapCodec((64, 64), sigma=1.5, stride=4)
    assert codec.heatmap_size == (16, 16)
    pt = np.array([[21.0, 37.0]])
    maps = codec.encode(pt)[0].numpy()
    u, v = (21.0 + 0.5) / 4 - 0.5, (37.0 + 0.5) / 4 - 0.5
    yy, xx = np.mgrid[0:16, 0:16]
    expected = np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(maps, expected, atol=1e-6)
    xy, _ = codec.decode(torch.from_numpy(expected[None, None]).float())
    np.testing.assert_allclose(xy[0, 0].numpy(), pt[0], atol=0.1)


def test_border_peak_is_not_refined_and_shapes_are_checked():
    codec = GaussianHeatmapCodec((16, 16), sigma=1.0)
    maps = torch.zeros(1, 1, 16, 16)
    maps[0, 0, 0, 5] = 1.0
    xy, _ = codec.decode(maps)
    assert xy[0, 0].tolist() == [5.0, 0.0]
    with pytest.raises(ValueError, match=r"\[B, K, 16, 16\]"):
        codec.decode(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="divide"):
        GaussianHeatmapCodec((30, 30), stride=4)


def _old_encode(codec, landmarks):
    """``encode`` as it was before the window helpers: the maps must not change by a bit."""
    pts = torch.as_tensor(landmarks, dtype=torch.float32)
    h, w = codec.heatmap_size
    uv = (pts + 0.5) / codec.stride - 0.5
    present = torch.isfinite(uv).all(-1)
    uv = torch.where(present[..., None], uv, torch.zeros_like(uv))
    xs = torch.arange(w, dtype=torch.float32)
    ys = torch.arange(h, dtype=torch.float32)
    gx = torch.exp(-((xs - uv[..., 0:1]) ** 2) / (2 * codec.sigma**2))
    gy = torch.exp(-((ys - uv[..., 1:2]) ** 2) / (2 * codec.sigma**2))
    maps = gy[..., :, None] * gx[..., None, :]
    return maps * present[..., None, None].to(maps.dtype)


def _points(n, k, size, seed):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-6, max(size) * 1.1, size=(n, k, 2))
    pts[0, 1] = np.nan
    pts[-1, 2, 0] = np.nan
    pts[0, 3] = [-50.0, 1e30]
    return pts


def test_encode_is_unchanged_bit_for_bit():
    for size, sigma, stride in (((64, 96), 2.0, 1), ((128, 128), 3.0, 4), ((60, 40), 1.3, 2)):
        codec = GaussianHeatmapCodec(size, sigma=sigma, stride=stride)
        pts = _points(3, 11, size, seed=stride)
        assert torch.equal(codec.encode(pts), _old_encode(codec, pts))
        assert torch.equal(codec.encode(pts[0]), _old_encode(codec, pts[0]))


def test_window_values_are_the_encoded_values():
    codec = GaussianHeatmapCodec((64, 80), sigma=2.0, stride=2)
    pts = _points(2, 12, (64, 80), seed=5)
    maps = codec.encode(pts)
    h, w = codec.heatmap_size
    rows, cols, values = codec.window(pts, 4)
    assert rows.shape == cols.shape == (2, 12, 9) and values.shape == (2, 12, 9, 9)
    assert rows.dtype == cols.dtype == torch.int64 and values.dtype == torch.float32
    inside = ((rows >= 0) & (rows < h))[..., :, None] & ((cols >= 0) & (cols < w))[..., None, :]
    gathered = maps[
        torch.arange(2)[:, None, None, None],
        torch.arange(12)[None, :, None, None],
        rows.clamp(0, h - 1)[..., :, None],
        cols.clamp(0, w - 1)[..., None, :],
    ]
    assert torch.equal(torch.where(inside, values, 0.0), torch.where(inside, gathered, 0.0))
    assert values[0, 1].abs().sum() == 0 and values[1, 2].abs().sum() == 0  # absent: zero
    uv, present = codec.heatmap_coords(pts)
    assert present[0, 3] and not present[0, 1] and not present[1, 2]
    assert cols[0, 3, 4] == -5 and rows[0, 3, 4] == h + 4  # a far-away centre is clamped to just outside
    with pytest.raises(ValueError, match="half"):
        codec.window(pts, -1)


def test_support_radius():
    codec = GaussianHeatmapCodec((32, 32), sigma=2.0)
    assert codec.support_radius(0.5) == pytest.approx(2.0 * math.sqrt(2 * math.log(2)))
    assert codec.support_radius(1.0) == 0.0 and codec.support_radius(2.0) == 0.0
    r = codec.support_radius(0.3)
    maps = codec.encode(np.array([[15.3, 16.8]]))[0]
    ys, xs = torch.nonzero(maps >= 0.3, as_tuple=True)
    assert (xs.float() - 15.3).abs().max() <= r and (ys.float() - 16.8).abs().max() <= r
    with pytest.raises(ValueError, match="threshold"):
        codec.support_radius(0.0)


def test_decode_keeps_landmarks_inside_the_unpadded_region():
    from landmark_afl.data.letterbox import letterbox, letterbox_size

    codec = GaussianHeatmapCodec((64, 64), sigma=2.0)
    # a non-square image letterboxed into 64 x 64: it fills 64 rows x 40 columns, columns 40-63 are padding
    image = np.zeros((96, 60), np.float32)
    _, scale = letterbox(image, (64, 64))
    valid = letterbox_size(image.shape, (64, 64))
    assert valid == (64, 40)
    # landmark 0 has its strongest response in the padding, a weaker one near the right border of the image;
    # landmark 1 is well inside and must not move
    maps = codec.encode(torch.tensor([[[50.0, 20.0], [10.0, 30.0]]]))
    maps[0, 0] = 0.9 * maps[0, 0] + codec.encode(torch.tensor([[[38.6, 20.0]]]))[0, 0] * 0.5
    unrestricted, _ = codec.decode(maps)
    assert unrestricted[0, 0, 0] > 39.5  # in the padding: outside the image
    xy, peak = codec.decode(maps, torch.tensor([valid]))
    assert -0.5 <= xy[0, 0, 0] <= valid[1] - 0.5 and abs(xy[0, 0, 0] - 38.6) < 1.0
    assert torch.allclose(xy[0, 1], unrestricted[0, 1]) and peak[0, 0] < 0.9
    back = (xy[0, :, 0].numpy() + 0.5) / scale[0] - 0.5  # to the stored image's columns
    assert (back <= image.shape[1] - 0.5).all()


def test_soft_argmax_is_exact_on_gaussians_away_from_the_border():
    rng = np.random.default_rng(1)
    codec = GaussianHeatmapCodec((96, 128), sigma=2.5, refine="soft-argmax")
    pts = rng.uniform([9, 9], [118, 86], size=(4, 20, 2))  # the 8 px window (3 sigma) stays inside
    xy, peak = codec.decode(codec.encode(pts))
    assert np.abs(xy.numpy() - pts).max() < 2e-3
    parabola, parabola_peak = GaussianHeatmapCodec((96, 128), sigma=2.5).decode(codec.encode(pts))
    assert torch.equal(peak, parabola_peak)  # the detection peak is the argmax value either way


def test_soft_argmax_follows_the_mass_of_a_skewed_peak_and_the_parabola_its_mode():
    codec = GaussianHeatmapCodec((64, 64), sigma=2.0, refine="soft-argmax")
    # a strong mode at x = 30 with a broad shoulder to the right: the mass lies right of the mode
    maps = codec.encode(torch.tensor([[[30.0, 32.0]]])) + 0.8 * codec.encode(torch.tensor([[[33.0, 32.0]]]))
    soft, _ = codec.decode(maps)
    mode, _ = GaussianHeatmapCodec((64, 64), sigma=2.0).decode(maps)
    assert 30.0 < mode[0, 0, 0] < soft[0, 0, 0] < 33.0
    assert soft[0, 0, 1].item() == pytest.approx(32.0, abs=1e-3)


def test_soft_argmax_window_stays_inside_the_map_and_the_valid_region():
    codec = GaussianHeatmapCodec((32, 32), sigma=2.0, refine="soft-argmax")
    maps = torch.zeros(2, 1, 32, 32)
    maps[0, 0, 0, 5] = 1.0  # a lone pixel on the top border
    maps[1, 0] = codec.encode(torch.tensor([[19.0, 10.0]]))[0]  # a peak straddling the valid region's edge
    maps[1, 0, :, 20:] *= 4  # the padding (columns 20-31) holds larger values that must not pull it
    xy, _ = codec.decode(maps, torch.tensor([[32, 32], [32, 20]]))
    assert xy[0, 0].tolist() == [5.0, 0.0]
    # the window is cut at column 20: the parabola (from columns 18-20 inside) there, never the padding's pull
    assert xy[1, 0, 0] <= 19.0 and xy[1, 0, 0] > 17.5
    zero, peak = codec.decode(torch.zeros(1, 1, 32, 32))  # nothing positive: the argmax, no NaN
    assert torch.isfinite(zero).all() and peak[0, 0] == 0


def test_soft_argmax_near_a_border_uses_rows_symmetric_about_the_peak():
    """A tilted peak 2 rows from the top: its x centroid comes from rows -2..2 around the peak, as in the middle."""
    codec = GaussianHeatmapCodec((48, 48), sigma=2.0, refine="soft-argmax")
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")

    def tilted(cy: float, cx: float) -> torch.Tensor:  # x shifts with y: a rotated, elongated peak
        return torch.exp(-(((xx - cx) - 0.8 * (yy - cy)) ** 2) / 8 - (yy - cy) ** 2 / 8)[None, None]

    near, _ = codec.decode(tilted(2.0, 20.0))
    row, col = torch.tensor([[2]]), torch.tensor([[20]])
    flat = tilted(2.0, 20.0).reshape(1, 1, -1)
    soft, fits = gaussian_heatmap._soft_argmax(flat, 48, row, col, 48, 48, radius=6, power=3)
    assert fits[0, 0].tolist() == [True, False]  # x's window fits; y's is cut by the top border
    w = tilted(2.0, 20.0)[0, 0, 0:5, 14:27].clamp_min(0) ** 3  # rows 0-4 (2 either side), columns 20 +- 6
    expected = (w.sum(0) * torch.arange(14.0, 27.0)).sum() / w.sum()
    assert soft[0, 0, 0].item() == pytest.approx(expected.item(), abs=1e-4)
    assert near[0, 0, 0].item() == pytest.approx(expected.item(), abs=1e-4)


def test_refine_is_checked_and_saved_in_the_codec_config():
    codec = GaussianHeatmapCodec((32, 32), refine="soft-argmax")
    assert codec.config()["refine"] == "soft-argmax"
    assert GaussianHeatmapCodec(**codec.config()).refine == "soft-argmax"
    with pytest.raises(ValueError, match="soft-argmax"):
        GaussianHeatmapCodec((32, 32), refine="dark")


def test_soft_argmax_keeps_the_parabola_where_the_border_cuts_its_window():
    rng = np.random.default_rng(2)
    codec = GaussianHeatmapCodec((64, 64), sigma=3.0, refine="soft-argmax")  # a 9 px window
    pts = np.concatenate([rng.uniform(1, 8, size=(10, 2)), rng.uniform(56, 62, size=(10, 2))])[None]
    xy, _ = codec.decode(codec.encode(pts))
    assert np.abs(xy.numpy() - pts).max() < 1e-2  # as exact as the parabola next to the border


def test_argmax_is_the_first_maximum_in_row_major_order_as_a_flat_argmax():
    # maps of few levels (ties everywhere), views of a larger map (as the valid region gives), a NaN
    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        maps = torch.randint(0, 3 + trial % 4, (2, 3, 15, 11), generator=g).float()
        if trial % 3 == 0:
            maps = maps[:, :, :9, :7]
        if trial % 5 == 1:
            maps = maps.transpose(2, 3)  # the last dimension not contiguous
        if trial == 5:
            maps[1, 2, 4, 6] = float("nan")
        if trial == 7:
            maps[0, 1, 2, 3] = maps[0, 1, 5, 1] = float("nan")  # two NaN: the first counts
            maps[1, 0] = float("-inf")  # a map of -inf only
        peak, row, col = gaussian_heatmap._argmax_2d(maps)
        flat_peak, flat_idx = maps.flatten(2).max(-1)
        w = maps.shape[-1]
        assert torch.equal(row * w + col, flat_idx), trial
        torch.testing.assert_close(peak, flat_peak, rtol=0, atol=0, equal_nan=True)
