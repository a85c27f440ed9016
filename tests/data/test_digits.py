"""Long-tailed digits: the documented imbalance profile, balanced val/test, disjoint seeded splits, the data set."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from landmark_afl.data.digits import DIGITS_MEAN, DIGITS_STD, DigitsDataset, long_tail_counts, split_digits


@pytest.fixture(scope="module")
def splits():
    return split_digits()


def test_training_split_follows_the_exponential_profile_with_ratio_50(splits):
    counts = np.bincount(splits["train"].labels, minlength=10)
    # n_c = n_max * r^(-c / (C - 1)), rounded half up, n_max = 100, r = 50 (the module docstring's table).
    assert counts.tolist() == [100, 65, 42, 27, 18, 11, 7, 5, 3, 2]
    assert counts[0] / counts[-1] == 50
    exact = 100 * 50.0 ** (-np.arange(10) / 9)
    assert np.all(np.abs(counts - exact) <= 0.5)
    assert np.all(np.diff(counts) < 0)


def test_val_and_test_are_balanced_and_splits_disjoint(splits):
    assert np.bincount(splits["test"].labels).tolist() == [50] * 10
    assert np.bincount(splits["val"].labels).tolist() == [20] * 10
    ids = [set(s.ids) for s in splits.values()]
    assert sum(len(i) for i in ids) == len(set.union(*ids)) == 280 + 200 + 500


def test_images_and_labels_are_the_bundled_scans(splits):
    bunch = load_digits()
    for split in splits.values():
        index = [int(i.split("_")[1]) for i in split.ids]
        np.testing.assert_array_equal(split.images, bunch.images[index] / 16)
        np.testing.assert_array_equal(split.labels, bunch.target[index])
    assert splits["train"].images.dtype == np.float32


def test_split_is_deterministic_by_seed(splits):
    again = split_digits(split_seed=0)
    other = split_digits(split_seed=1)
    for name in ("train", "val", "test"):
        assert again[name].ids == splits[name].ids
        assert other[name].ids != splits[name].ids
        assert np.array_equal(np.bincount(other[name].labels), np.bincount(splits[name].labels))


def test_other_profiles_and_bad_settings():
    assert long_tail_counts(100, 1.0).tolist() == [100] * 10
    assert long_tail_counts(100, 10.0, num_classes=2).tolist() == [100, 10]
    with pytest.raises(ValueError, match=">= 1"):
        long_tail_counts(100, 0.5)
    with pytest.raises(ValueError, match="raise n_max to at least 50"):
        long_tail_counts(10, 100.0)
    with pytest.raises(ValueError, match="smallest digit class has 174"):
        split_digits(n_max=150, val_per_class=20, test_per_class=50)
    with pytest.raises(ValueError, match="val_per_class must be at least 1"):
        split_digits(val_per_class=0)


def test_dataset_items_normalised_and_shift_deterministic(splits):
    plain = DigitsDataset(splits["train"])
    item = plain[5]
    assert item["image"].shape == (1, 8, 8) and isinstance(item["label"], int) and item["id"] == splits["train"].ids[5]
    np.testing.assert_allclose(
        item["image"][0].numpy() * DIGITS_STD + DIGITS_MEAN, splits["train"].images[5], atol=1e-6
    )

    a, b = DigitsDataset(splits["train"], shift=1, seed=3), DigitsDataset(splits["train"], shift=1, seed=3)
    a.set_epoch(4)
    b.set_epoch(4)
    assert all(np.array_equal(a[i]["image"], b[i]["image"]) for i in range(0, 280, 7))
    a.offsets[5] = (1, 1)  # the centre crop is the image
    np.testing.assert_array_equal(a[5]["image"], item["image"])
    a.offsets[5] = (0, 2)  # one row down, one column left; the border is background (0 before normalising)
    moved = a[5]["image"][0].numpy() * DIGITS_STD + DIGITS_MEAN
    np.testing.assert_allclose(moved[1:, :7], splits["train"].images[5][:7, 1:], atol=1e-6)
    np.testing.assert_allclose(moved[0], 0, atol=1e-6)
    np.testing.assert_allclose(moved[:, 7], 0, atol=1e-6)
    a.set_epoch(5)
    assert set(np.unique(a.offsets)) == {0, 1, 2}
    with pytest.raises(ValueError, match="shift must be 0..7"):
        DigitsDataset(splits["train"], shift=8)
