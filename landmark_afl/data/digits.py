"""scikit-learn's bundled handwritten digits, made long-tailed: an offline classification benchmark.

``sklearn.datasets.load_digits`` holds 1797 real scans (8 x 8, 17 grey levels 0..16, 10 classes of 174-183
images; no download). The split, seeded by ``split_seed`` and stratified by class:

- test: ``test_per_class`` images of every class (balanced, 50 x 10 = 500 by default);
- val: ``val_per_class`` images of every class (balanced, 20 x 10 = 200), so that its top-1 accuracy is its
  balanced accuracy, the figure the table reports;
- train: long-tailed with the exponential profile of Cui et al. (2019) and Cao et al. (2019) (CIFAR-LT),
  ``n_c = n_max * r^(-c / (C - 1))`` for class c = 0..C-1 (the digit itself: 0 is the head, 9 the tail),
  rounded half up. With n_max = 100 and r = 50: 100, 65, 42, 27, 18, 11, 7, 5, 3, 2 images (280), so the
  imbalance ratio ``n_0 / n_9`` is exactly 50. The remaining images are not used.

Every class's images are permuted once with ``numpy.random.default_rng(split_seed)``; test, val and train take
consecutive slices of that order, so the three splits never overlap and the split is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

# Pixel statistics of all 1797 images after scaling to [0, 1] (x / 16).
DIGITS_MEAN = 0.3053
DIGITS_STD = 0.3760


@dataclass(frozen=True)
class DigitsSplit:
    """The arrays of one split.

    Attributes:
        images: float32 [N, 8, 8] in [0, 1].
        labels: int64 [N].
        ids: ``"digit_<index>"`` [N], the index into ``load_digits``.
    """

    images: np.ndarray
    labels: np.ndarray
    ids: list[str]


def long_tail_counts(n_max: int, imbalance_ratio: float, num_classes: int = 10) -> np.ndarray:
    """``n_c = round_half_up(n_max * r^(-c / (C - 1)))`` for c = 0..C-1, int64 [C].

    Raises:
        ValueError: r < 1, fewer than 2 classes, or a tail class that would round to no image.
    """
    if num_classes < 2:
        raise ValueError(f"a long tail needs at least 2 classes, got num_classes={num_classes}")
    if imbalance_ratio < 1:
        raise ValueError(f"imbalance_ratio must be >= 1 (1 = balanced), got {imbalance_ratio}")
    c = np.arange(num_classes)
    counts = np.floor(n_max * float(imbalance_ratio) ** (-c / (num_classes - 1)) + 0.5).astype(np.int64)
    if counts[-1] < 1:
        raise ValueError(
            f"n_max={n_max} with imbalance_ratio={imbalance_ratio} leaves the tail class {n_max / imbalance_ratio:.2f}"
            f" images; raise n_max to at least {int(np.ceil(imbalance_ratio / 2))} or lower the ratio"
        )
    return counts


def split_digits(
    n_max: int = 100,
    imbalance_ratio: float = 50.0,
    val_per_class: int = 20,
    test_per_class: int = 50,
    split_seed: int = 0,
) -> dict[str, DigitsSplit]:
    """The ``"train"`` (long-tailed), ``"val"`` and ``"test"`` (balanced) splits described in the module doc."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    classes, available = np.unique(labels, return_counts=True)
    train_counts = long_tail_counts(n_max, imbalance_ratio, len(classes))
    for name, value in (("val_per_class", val_per_class), ("test_per_class", test_per_class)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    need = test_per_class + val_per_class + n_max
    if need > available.min():
        raise ValueError(
            f"test_per_class + val_per_class + n_max = {test_per_class} + {val_per_class} + {n_max} = {need} images "
            f"per class, but the smallest digit class has {available.min()}; lower one of them"
        )
    rng = np.random.default_rng(split_seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c, n_train in zip(classes, train_counts, strict=True):
        order = rng.permutation(np.flatnonzero(labels == c))
        parts["test"].append(order[:test_per_class])
        parts["val"].append(order[test_per_class : test_per_class + val_per_class])
        start = test_per_class + val_per_class
        parts["train"].append(order[start : start + n_train])
    out = {}
    for name, chunks in parts.items():
        index = np.sort(np.concatenate(chunks))
        out[name] = DigitsSplit(images[index], labels[index], [f"digit_{i}" for i in index])
    return out


class DigitsDataset(Dataset):
    """Digits as ``{"image": float [1, 8, 8], "label": int, "id": str}``, normalised, optionally shifted.

    Args:
        split: the arrays of one split (``split_digits``).
        shift: training augmentation, a random translation by up to ``shift`` pixels in x and y (zero padding,
            then an 8 x 8 crop); 0 = none. No flips: a mirrored digit is another shape (or another digit).
        seed: seeds the shifts; epoch e draws from ``default_rng([seed, e])`` for all samples at once.

    Example:
        >>> ds = DigitsDataset(split_digits()["train"], shift=1)
        >>> ds.set_epoch(1)
        >>> len(ds), ds[0]["image"].shape, ds[0]["id"]
        (280, torch.Size([1, 8, 8]), 'digit_4')
    """

    def __init__(self, split: DigitsSplit, shift: int = 0, seed: int = 0) -> None:
        if split.images.ndim != 3 or split.images.shape[1:] != (8, 8):
            raise ValueError(f"images must be [N, 8, 8], got {list(split.images.shape)}")
        if not 0 <= shift < 8:
            raise ValueError(f"shift must be 0..7 pixels, got {shift}")
        self.split = split
        self.shift = int(shift)
        self.seed = seed
        self.images = (split.images - DIGITS_MEAN) / DIGITS_STD
        self.background = (0.0 - DIGITS_MEAN) / DIGITS_STD
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the crop offsets [N, 2] (0..2 * shift) of ``epoch``."""
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch])
        self.offsets = rng.integers(0, 2 * self.shift + 1, size=(len(self), 2))

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, i: int) -> dict:
        img = self.images[i]
        if self.shift:
            s = self.shift
            dy, dx = self.offsets[i]
            img = np.pad(img, s, constant_values=self.background)[dy : dy + 8, dx : dx + 8]
        x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None]
        return {"image": x, "label": int(self.split.labels[i]), "id": self.split.ids[i]}
