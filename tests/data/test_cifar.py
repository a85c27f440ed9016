"""CIFAR reader: the official python layout written by the test, the wrong-folder errors, the split and augmentation."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from landmark_afl.data.cifar import (
    CIFAR100_MEAN,
    CIFAR100_STD,
    CifarDataset,
    CifarFormatError,
    load_cifar,
    resolve_cifar_dir,
    stratified_holdout,
)


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar100(root: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    """``root/cifar-100-python/{train,test,meta}`` with random images and the official keys.

    The training pickle has ``bytes`` keys and file names (as the Python 2 files read with ``encoding="bytes"``),
    the test pickle ``str`` ones (as read with ``encoding="latin1"``). Labels cycle through the 100 classes.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    train = {
        b"batch_label": b"training batch 1 of 1",
        b"filenames": [f"train_{i:05d}.png".encode() for i in range(n_train)],
        b"fine_labels": [i % 100 for i in range(n_train)],
        b"coarse_labels": [i % 20 for i in range(n_train)],
        b"data": rng.integers(0, 256, (n_train, 3072), dtype=np.uint8),
    }
    test = {
        "batch_label": "testing batch 1 of 1",
        "filenames": [f"test_{i:05d}.png" for i in range(n_test)],
        "fine_labels": [(7 * i) % 100 for i in range(n_test)],
        "coarse_labels": [(7 * i) % 20 for i in range(n_test)],
        "data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
    }
    _dump(folder / "train", train)
    _dump(folder / "test", test)
    _dump(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                            "coarse_label_names": [f"coarse{i}" for i in range(20)]})  # fmt: skip
    return folder


def write_cifar10(root: Path, per_batch: int = 20) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        _dump(folder / name, {b"batch_label": name.encode(), b"labels": [i % 10 for i in range(per_batch)],
                              b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                              b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]})  # fmt: skip
    _dump(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return folder


@pytest.fixture
def cifar100(tmp_path: Path) -> Path:
    return write_cifar100(tmp_path)


def test_reads_official_layout_from_the_folder_or_its_parent(cifar100):
    for given in (cifar100, cifar100.parent):
        assert resolve_cifar_dir(given) == cifar100
    train, test = load_cifar(cifar100.parent, "train"), load_cifar(cifar100, "test")
    raw = pickle.load(open(cifar100 / "train", "rb"), encoding="bytes")
    assert train.images.shape == (300, 32, 32, 3) and train.images.dtype == np.uint8
    # Each row is the red, green, blue 32 x 32 planes: pixel (y, x) of channel c is data[c * 1024 + y * 32 + x].
    i, y, x = 17, 5, 29
    assert [train.images[i, y, x, c] for c in range(3)] == [raw[b"data"][i, c * 1024 + y * 32 + x] for c in range(3)]
    assert train.labels.tolist() == raw[b"fine_labels"] and train.labels.dtype == np.int64
    assert train.ids[:2] == ["train_00000.png", "train_00001.png"]  # bytes decoded
    assert test.ids[3] == "test_00003.png" and test.labels[3] == 21
    assert train.class_names[:2] == ["fine0", "fine1"] and len(train.class_names) == 100


def test_cifar10_given_for_cifar100_is_named(tmp_path):
    folder = write_cifar10(tmp_path)
    for given in (tmp_path, folder):
        with pytest.raises(CifarFormatError, match=r"holds CIFAR-10 .* but CIFAR-100 was asked for.*dataset=cifar10"):
            load_cifar(given, "train", "cifar100")
    assert len(load_cifar(tmp_path, "train", "cifar10").labels) == 100  # 5 batches of 20, when asked for


def test_cifar100_given_for_cifar10_is_named(cifar100):
    with pytest.raises(CifarFormatError, match=r"holds CIFAR-100 .* but CIFAR-10 was asked for.*dataset=cifar100"):
        load_cifar(cifar100, "train", "cifar10")


def test_cifar10_pickles_under_cifar100_names_are_named(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        _dump(folder / name, {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1], "filenames": ["a", "b"]})
    with pytest.raises(CifarFormatError, match=r"fine_labels.*is this CIFAR-10\?"):
        load_cifar(tmp_path, "train")


def test_other_folder_lists_what_was_found_and_the_layout(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("x")
    with pytest.raises(CifarFormatError, match=r"found images/, labels.csv; expected cifar-100-python/\{train, test"):
        load_cifar(tmp_path, "train")
    with pytest.raises(CifarFormatError, match="does not exist"):
        load_cifar(tmp_path / "nope", "train")


def test_packed_archive_asks_to_unpack(tmp_path):
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(CifarFormatError, match="unpack it"):
        load_cifar(tmp_path, "train")


def test_bad_arrays_are_refused(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _dump(folder / "test", {"data": np.zeros((2, 3072), np.uint8), "fine_labels": [0, 1], "filenames": ["a", "b"]})
    _dump(folder / "train", {"data": np.zeros((2, 1024), np.uint8), "fine_labels": [0, 1], "filenames": ["a", "b"]})
    with pytest.raises(CifarFormatError, match=r"uint8 \[N, 3072\].*\[2, 1024\]"):
        load_cifar(tmp_path, "train")
    _dump(folder / "train", {"data": np.zeros((2, 3072), np.uint8), "fine_labels": [0, 100], "filenames": ["a", "b"]})
    with pytest.raises(CifarFormatError, match=r"labels span 0\.\.100"):
        load_cifar(tmp_path, "train")


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_unpickling_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _dump(folder / "train", {"data": _Exploit()})
    _dump(folder / "test", {"data": _Exploit()})
    with pytest.raises(CifarFormatError, match=r"not allowed"):
        load_cifar(tmp_path, "train")
    assert not (tmp_path / "pwned").exists()


def test_stratified_holdout_is_proportional_disjoint_and_seeded():
    labels = np.repeat(np.arange(10), 50)
    keep, held = stratified_holdout(labels, 100, seed=0)
    assert np.bincount(labels[held]).tolist() == [10] * 10
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == 500
    assert np.array_equal(held, stratified_holdout(labels, 100, seed=0)[1])
    assert not np.array_equal(held, stratified_holdout(labels, 100, seed=1)[1])
    uneven = np.array([0] * 60 + [1] * 30 + [2] * 10)
    _, held = stratified_holdout(uneven, 10, seed=0)
    assert np.bincount(uneven[held]).tolist() == [6, 3, 1]
    with pytest.raises(ValueError, match="between 1 and 99"):
        stratified_holdout(uneven, 100, seed=0)
    with pytest.raises(ValueError, match="no training image"):
        stratified_holdout(np.array([0, 0, 0, 1]), 3, seed=0)


def _denorm(x):
    return x.numpy() * (np.array(CIFAR100_STD)[:, None, None] * 255) + np.array(CIFAR100_MEAN)[:, None, None] * 255


def test_dataset_normalises_and_augments_as_crop_of_padded_image(cifar100):
    split = load_cifar(cifar100, "train")
    plain = CifarDataset(split, CIFAR100_MEAN, CIFAR100_STD, augment=False)
    item = plain[3]
    original = split.images[3].transpose(2, 0, 1).astype(np.float64)
    assert item["image"].shape == (3, 32, 32) and item["label"] == 3 and item["id"] == "train_00003.png"
    np.testing.assert_allclose(_denorm(item["image"]), original, atol=1e-3)

    aug = CifarDataset(split, CIFAR100_MEAN, CIFAR100_STD, augment=True, seed=0)
    aug.offsets[3], aug.flips[3] = (4, 4), False  # the centre crop of the padded image is the image
    np.testing.assert_allclose(_denorm(aug[3]["image"]), original, atol=1e-3)
    aug.flips[3] = True
    np.testing.assert_allclose(_denorm(aug[3]["image"]), original[:, :, ::-1], atol=1e-3)
    aug.offsets[3], aug.flips[3] = (0, 1), False  # 4 rows of padding on top, 3 columns on the left
    shifted = _denorm(aug[3]["image"])
    np.testing.assert_allclose(shifted[:, :4], 0, atol=1e-3)
    np.testing.assert_allclose(shifted[:, :, :3], 0, atol=1e-3)
    np.testing.assert_allclose(shifted[:, 4:, 3:], original[:, :28, :29], atol=1e-3)


def test_augmentation_is_deterministic_per_epoch(cifar100):
    split = load_cifar(cifar100, "train")
    a = CifarDataset(split, CIFAR100_MEAN, CIFAR100_STD, augment=True, seed=5)
    b = CifarDataset(split, CIFAR100_MEAN, CIFAR100_STD, augment=True, seed=5)
    a.set_epoch(2)
    b.set_epoch(1)
    b.set_epoch(2)
    assert all(np.array_equal(a[i]["image"], b[i]["image"]) for i in (0, 7, 299))
    first = [a[i]["image"].clone() for i in range(20)]
    a.set_epoch(3)
    assert sum(not np.array_equal(x, a[i]["image"]) for i, x in enumerate(first)) >= 15
    assert set(np.unique(a.offsets)) == set(range(9)) and 0.4 < a.flips.mean() < 0.6
