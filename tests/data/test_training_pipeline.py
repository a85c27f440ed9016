"""Letterbox, augmentation and the training data set: the landmarks always move with the image."""

from __future__ import annotations

import numpy as np
import pytest

from landmark_afl.data.augment import AugmentConfig, Augmenter, hflip
from landmark_afl.data.letterbox import letterbox, to_image_coords, to_input_coords


def _spots(shape, points):
    image = np.zeros(shape, np.float32)
    for x, y in points:
        image[int(y), int(x)] = 1.0
    return image


def test_letterbox_keeps_aspect_and_maps_pixel_centres_both_ways():
    image = np.random.default_rng(0).random((300, 200)).astype(np.float32)
    out, scale = letterbox(image, (128, 128))
    assert out.shape == (128, 128) and out[:, 86:].max() == 0  # 200 * 128/300 = 85.3 -> 85 columns, then padding
    np.testing.assert_allclose(scale, [85 / 200, 128 / 300])
    pts = np.array([[0.0, 0.0], [199.0, 299.0], [np.nan, np.nan]])
    back = to_image_coords(to_input_coords(pts, scale), scale)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    # the centre of a bright block lands where the mapped centre says (an independent check through cv2.resize)
    block = np.zeros((300, 200), np.float32)
    block[140:160, 90:110] = 1.0
    small, s = letterbox(block, (128, 128))
    ys, xs = np.nonzero(small > 0.5)
    np.testing.assert_allclose([xs.mean(), ys.mean()], to_input_coords(np.array([99.5, 149.5]), s), atol=0.6)


@pytest.mark.parametrize("seed", range(5))
def test_augmented_landmarks_follow_their_bright_pixels(seed):
    pts = np.array([[20.0, 30.0], [50.0, 12.0], [40.0, 50.0], [np.nan, np.nan]])
    image = _spots((64, 64), pts[:3])
    aug = Augmenter(AugmentConfig(rotate=20, scale=0.1, translate=0.05, brightness=0, contrast=0, noise=0, p_affine=1))
    out, moved = aug(image, pts, seed=seed)
    assert np.isnan(moved[3]).all()  # absent stays absent
    for x, y in moved[:3]:
        if 2 <= x < 62 and 2 <= y < 62:
            window = out[int(round(y)) - 2 : int(round(y)) + 3, int(round(x)) - 2 : int(round(x)) + 3]
            assert window.max() > 0.1, (x, y)
    again, moved_again = aug(image, pts, seed=seed)
    np.testing.assert_array_equal(again, out)  # seeded per call: reproducible
    np.testing.assert_array_equal(moved_again, moved)


def test_flip_swaps_declared_pairs():
    pts = np.array([[10.0, 5.0], [30.0, 5.0], [20.0, 9.0]])
    image = _spots((16, 40), pts)
    flipped, fpts = hflip(image, pts, ((0, 1),))
    np.testing.assert_allclose(fpts, [[9.0, 5.0], [29.0, 5.0], [19.0, 9.0]])  # left is now where right was mirrored
    for x, y in fpts:
        assert flipped[int(y), int(x)] == 1.0
    no_pairs = Augmenter(AugmentConfig(flip=1.0, rotate=0, scale=0, translate=0, brightness=0, contrast=0, noise=0))
    _, same = no_pairs(image, pts, seed=0)
    np.testing.assert_allclose(same, pts)  # without flip pairs there is no flip
