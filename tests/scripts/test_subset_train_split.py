"""scripts/subset_train_split.py: the train split cut to its first N images, val and test kept, no pixels copied."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from landmark_afl.data.dataset import load_dataset
from tests.scripts import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("subset_train_split")


def write_dataset(root: Path) -> Path:
    """6 images (train e, a, d, b; val c; test f) with 2 landmarks each."""
    (root / "images").mkdir(parents=True)
    rows = ["image,landmark,x,y"]
    for i, name in enumerate("abcdef"):
        cv2.imwrite(str(root / "images" / f"{name}.png"), np.full((16, 16), 40 * i, np.uint8))
        rows += [f"{name}.png,p,{i + 1},2", f"{name}.png,q,3,{i + 4}"]
    (root / "landmarks.csv").write_text("\n".join(rows) + "\n")
    spec = {"name": "tiny", "description": "six images", "landmarks": ["p", "q"], "spacing_mm": [0.5, 0.5],
            "splits": {"train": ["e.png", "a.png", "d.png", "b.png"], "val": ["c.png"], "test": ["f.png"]}}  # fmt: skip
    (root / "dataset.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def test_keeps_the_first_n_sorted_train_images_and_the_other_splits(script, tmp_path):
    source = write_dataset(tmp_path / "src")
    counts = script.subset_train_split(source, tmp_path / "small", 2)
    assert counts == {"train": 2, "val": 1, "test": 1}
    ds = load_dataset(tmp_path / "small")
    assert ds.split("train") == ("a.png", "b.png")
    assert ds.split("val") == ("c.png",) and ds.split("test") == ("f.png",)
    assert ds.landmarks == ("p", "q") and tuple(ds.spacing_mm) == (0.5, 0.5)
    np.testing.assert_array_equal(ds.coords("b.png"), [[2, 2], [3, 5]])
    assert (tmp_path / "small" / "images").is_symlink()  # the pixels are not copied
    assert "first 2 images" in yaml.safe_load((tmp_path / "small" / "dataset.yaml").read_text())["description"]


def test_refuses_a_size_out_of_range_and_an_existing_folder(script, tmp_path):
    source = write_dataset(tmp_path / "src")
    with pytest.raises(SystemExit, match="has 4 train images; give 1..4"):
        script.subset_train_split(source, tmp_path / "small", 5)
    assert not (tmp_path / "small").exists()
    (tmp_path / "small").mkdir()
    with pytest.raises(SystemExit, match="exists; give a new folder"):
        script.subset_train_split(source, tmp_path / "small", 2)


def test_a_data_set_without_splits_keeps_its_fallback_val_and_test(script, tmp_path):
    source = write_dataset(tmp_path / "src")
    spec = yaml.safe_load((source / "dataset.yaml").read_text())
    del spec["splits"]
    (source / "dataset.yaml").write_text(yaml.safe_dump(spec))
    before = load_dataset(source)
    script.subset_train_split(source, tmp_path / "small", 1)
    ds = load_dataset(tmp_path / "small")
    assert ds.split("train") == tuple(sorted(before.split("train")))[:1]
    assert ds.split("val") == before.split("val") and ds.split("test") == before.split("test")
