import numpy as np
import pytest
import torch

from landmark_afl.codecs import GaussianHeatmapCodec


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
