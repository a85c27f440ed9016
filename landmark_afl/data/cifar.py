"""CIFAR-100 (and CIFAR-10) in the official python layout, with the standard crop-and-flip augmentation.

Layout (as unpacked from ``cifar-100-python.tar.gz`` / ``cifar-10-python.tar.gz``; ``data`` may name the folder
itself or its parent)::

    cifar-100-python/{train, test, meta}                               keys: data, fine_labels, coarse_labels,
                                                                        filenames (meta: fine_label_names)
    cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}    keys: data, labels, filenames
                                                                        (meta: label_names)

``data`` is uint8 [N, 3072], each row the red, green then blue 32 x 32 planes. The pickles were written by Python 2:
read with ``encoding="latin1"`` their keys are ``str``, read with ``encoding="bytes"`` (or re-pickled from bytes)
``bytes``; both are accepted. Unpickling is restricted to plain containers and numpy arrays, so a stray pickle in
the folder cannot run code.

Augmentation (Zagoruyko and Komodakis, 2016; He et al., 2016): zero-pad 4 pixels, take a random 32 x 32 crop,
flip horizontally with probability 0.5; then normalise by the data set's channel mean and std. The draws for the
whole epoch come from ``numpy.random.default_rng([seed, epoch])`` in ``set_epoch``, so an epoch is the same
whatever the number of workers or the order of the samples.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

# Channel statistics of the training images, in [0, 1] (the values used across the CIFAR literature).
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class CifarFormatError(ValueError):
    """A folder is not the CIFAR layout that was asked for; the message says what was found and what to give."""


@dataclass(frozen=True)
class _Variant:
    name: str
    folder: str
    train: tuple[str, ...]
    test: str
    meta: str
    label_key: str
    names_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    archive: str


VARIANTS = {
    "cifar100": _Variant(
        "CIFAR-100", "cifar-100-python", ("train",), "test", "meta", "fine_labels", "fine_label_names", 100,
        CIFAR100_MEAN, CIFAR100_STD, "cifar-100-python.tar.gz",
    ),
    "cifar10": _Variant(
        "CIFAR-10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
        "batches.meta", "labels", "label_names", 10, CIFAR10_MEAN, CIFAR10_STD, "cifar-10-python.tar.gz",
    ),
}  # fmt: skip


def _layout(variant: _Variant) -> str:
    files = ", ".join((*variant.train, variant.test, variant.meta))
    return f"{variant.folder}/{{{files}}} (the python version of {variant.name}, unpacked from {variant.archive})"


class _SafeUnpickler(pickle.Unpickler):
    """Allows the few globals a CIFAR pickle needs (numpy array reconstruction), nothing that could run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR pickle")
        return super().find_class(module, name)


def _text(value) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def read_pickle(path: Path) -> dict:
    """One CIFAR pickle as a dict with ``str`` keys (``bytes`` keys and values of the Python 2 files decoded)."""
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(f, encoding="latin1").load()
    except Exception as err:  # noqa: BLE001 - unpickling raises many types for a file that is not a pickle
        raise CifarFormatError(f"{path} is not a readable CIFAR pickle ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict):
        raise CifarFormatError(f"{path} holds a {type(obj).__name__}, expected the dict of a CIFAR pickle")
    return {_text(k): v for k, v in obj.items()}


def _found(folder: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return "an empty folder"
    more = f", ... ({len(names)} entries)" if len(names) > 12 else ""
    return ", ".join(names[:12]) + more


def _has_files(folder: Path, variant: _Variant) -> bool:
    return all((folder / name).is_file() for name in (*variant.train, variant.test))


def resolve_cifar_dir(data: str | Path, dataset: str = "cifar100") -> Path:
    """The folder holding the pickles of ``dataset``, given that folder or its parent.

    Raises:
        CifarFormatError: the folder is the other CIFAR (named as such), a still-packed archive, or anything else
            (what was found is listed next to the layout expected).
    """
    if dataset not in VARIANTS:
        raise CifarFormatError(f"dataset must be one of {sorted(VARIANTS)}, got {dataset!r}")
    want = VARIANTS[dataset]
    other = next(v for k, v in VARIANTS.items() if k != dataset)
    root = Path(data).expanduser()
    if not root.is_dir():
        raise CifarFormatError(f"CIFAR data folder {root} does not exist; give the folder holding {_layout(want)}")
    for folder in (root, root / want.folder):
        if _has_files(folder, want):
            return folder
    for folder in (root, root / other.folder):
        if _has_files(folder, other):
            raise CifarFormatError(
                f"{folder} holds {other.name} ({', '.join((*other.train, other.test))}), but {want.name} was "
                f"asked for. Give the folder holding {_layout(want)}, or set dataset={_key(other)} to train on "
                f"{other.name}."
            )
    for archive in (want.archive, other.archive):
        if (root / archive).is_file():
            raise CifarFormatError(
                f"{root} holds the archive {archive}, not its contents; unpack it (tar xzf {root / archive} -C "
                f"{root}) and give {root}"
            )
    raise CifarFormatError(f"{root} is not a {want.name} folder: found {_found(root)}; expected {_layout(want)}")


def _key(variant: _Variant) -> str:
    return next(k for k, v in VARIANTS.items() if v is variant)


@dataclass(frozen=True)
class CifarSplit:
    """The arrays of one official split.

    Attributes:
        images: uint8 [N, 32, 32, 3] (H, W, RGB).
        labels: int64 [N] (the fine labels of CIFAR-100).
        ids: file names [N] as in the pickle (``filenames``).
        class_names: the C label names from ``meta``.
    """

    images: np.ndarray
    labels: np.ndarray
    ids: list[str]
    class_names: list[str]

    def subset(self, index: np.ndarray) -> CifarSplit:
        return CifarSplit(self.images[index], self.labels[index], [self.ids[i] for i in index], self.class_names)


def _read_batch(path: Path, variant: _Variant) -> tuple[np.ndarray, np.ndarray, list[str]]:
    d = read_pickle(path)
    if variant.label_key not in d:
        hint = ""
        if "labels" in d and "fine_labels" not in d:
            hint = " It has CIFAR-10's 'labels' key instead: is this CIFAR-10?"
        elif "fine_labels" in d:
            hint = " It has CIFAR-100's 'fine_labels' key instead: is this CIFAR-100?"
        raise CifarFormatError(
            f"{path} has keys {sorted(d)}, but {variant.name} pickles hold '{variant.label_key}'.{hint}"
        )
    missing = [k for k in ("data", "filenames") if k not in d]
    if missing:
        raise CifarFormatError(f"{path} lacks the key(s) {missing} of a {variant.name} pickle (has {sorted(d)})")
    data = np.asarray(d["data"])
    labels = np.asarray(d[variant.label_key], dtype=np.int64)
    ids = [_text(name) for name in d["filenames"]]
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CifarFormatError(
            f"{path}: 'data' must be uint8 [N, 3072] (3 x 32 x 32 per row), got {data.dtype} {list(data.shape)}"
        )
    if not (len(labels) == len(ids) == len(data)):
        raise CifarFormatError(
            f"{path}: {len(data)} images, {len(labels)} labels and {len(ids)} filenames; they must be equal"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= variant.num_classes):
        raise CifarFormatError(
            f"{path}: labels span {labels.min()}..{labels.max()}, {variant.name} has 0..{variant.num_classes - 1}"
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels, ids


def load_cifar(data: str | Path, split: str, dataset: str = "cifar100") -> CifarSplit:
    """Read the official ``"train"`` or ``"test"`` split of ``dataset`` from ``data`` (see the module doc)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test' (the official splits), got {split!r}")
    folder = resolve_cifar_dir(data, dataset)
    variant = VARIANTS[dataset]
    files = variant.train if split == "train" else (variant.test,)
    parts = [_read_batch(folder / name, variant) for name in files]
    names = [f"class_{i}" for i in range(variant.num_classes)]
    if (folder / variant.meta).is_file():
        meta = read_pickle(folder / variant.meta)
        if variant.names_key in meta and len(meta[variant.names_key]) == variant.num_classes:
            names = [_text(n) for n in meta[variant.names_key]]
    return CifarSplit(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        [i for p in parts for i in p[2]],
        names,
    )


def stratified_holdout(labels: np.ndarray, n_holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, holdout) with ``n_holdout`` samples drawn per class in proportion, seeded.

    Each class gives ``floor(n_holdout * n_c / N)`` samples, the remainder goes to the classes with the largest
    fractional parts (ties by class index); 5000 of CIFAR-100's 50 000 training images are 50 per class.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if not 0 < n_holdout < n:
        raise ValueError(f"val_split must be between 1 and {n - 1} (the training images), got {n_holdout}")
    classes, counts = np.unique(labels, return_counts=True)
    quota = n_holdout * counts / n
    take = np.floor(quota).astype(int)
    order = np.lexsort((classes, -(quota - take)))
    take[order[: n_holdout - take.sum()]] += 1
    if np.any(take >= counts):
        bad = classes[take >= counts][0]
        raise ValueError(f"val_split={n_holdout} would leave class {bad} with no training image; hold out fewer")
    rng = np.random.default_rng(seed)
    holdout = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    )
    keep = np.setdiff1d(np.arange(n), holdout)
    return keep, np.sort(holdout)


class CifarDataset(Dataset):
    """CIFAR images as ``{"image": float [3, 32, 32], "label": int, "id": str}``, normalised, optionally augmented.

    Args:
        split: the arrays (``load_cifar`` or a ``subset`` of it).
        mean, std: channel statistics in [0, 1] used to normalise.
        augment: 4-pixel zero-padded random crop and horizontal flip (training); off = the image as stored.
        seed: seeds the augmentation; epoch e draws from ``default_rng([seed, e])``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> split = CifarSplit(rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), np.arange(4), list("abcd"), [])
        >>> ds = CifarDataset(split, CIFAR100_MEAN, CIFAR100_STD, augment=True)
        >>> ds.set_epoch(1)
        >>> ds[0]["image"].shape, ds[0]["label"], ds[0]["id"]
        (torch.Size([3, 32, 32]), 0, 'a')
    """

    PAD = 4

    def __init__(self, split: CifarSplit, mean, std, augment: bool = False, seed: int = 0) -> None:
        if split.images.ndim != 4 or split.images.shape[1:] != (32, 32, 3):
            raise ValueError(f"images must be [N, 32, 32, 3], got {list(split.images.shape)}")
        self.split = split
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1) * 255
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1) * 255
        self.augment = augment
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the crop offsets [N, 2] (0..8) and flips [N] of ``epoch`` for all samples at once."""
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.split.labels)
        self.offsets = rng.integers(0, 2 * self.PAD + 1, size=(n, 2))
        self.flips = rng.random(n) < 0.5

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, i: int) -> dict:
        img = self.split.images[i].transpose(2, 0, 1)  # [3, 32, 32]
        if self.augment:
            p = self.PAD
            dy, dx = self.offsets[i]
            img = np.pad(img, ((0, 0), (p, p), (p, p)))[:, dy : dy + 32, dx : dx + 32]
            if self.flips[i]:
                img = img[:, :, ::-1]
        x = (img.astype(np.float32) - self.mean) / self.std
        image = torch.from_numpy(np.ascontiguousarray(x))
        return {"image": image, "label": int(self.split.labels[i]), "id": self.split.ids[i]}
