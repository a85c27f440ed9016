"""Loading a data set folder: the layout, absent landmarks, and one clear error per kind of bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from landmark_afl.data.dataset import DatasetError, fallback_splits, load_dataset

NAMES = ["sella", "nasion", "orbitale"]


def make_dataset(root: Path, csv_text: str, images=("a.png", "b.png", "sub/c.png"), **yaml_extra) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for key in images:
        path = root / "images" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.zeros((8, 10), np.uint8))
    (root / "dataset.yaml").write_text(yaml.safe_dump({"name": "tiny", "landmarks": NAMES, **yaml_extra}))
    (root / "landmarks.csv").write_text(csv_text)
    return root


H = "image,landmark,x,y\n"
GOOD_CSV = H + "a.png,sella,1.5,2\na.png,nasion,,\nsub/c.png,orbitale,9,7\n"


def test_load_good_dataset(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, GOOD_CSV, spacing_mm=0.25, flip_pairs=[["sella", "orbitale"]])
    ds = load_dataset(root)
    assert ds.name == "tiny" and ds.landmarks == tuple(NAMES)
    assert ds.images == ("a.png", "b.png", "sub/c.png")  # nested folders, forward slashes, sorted
    assert ds.spacing_mm == (0.25, 0.25)
    assert ds.flip_pairs == ((0, 2),)
    a = ds.coords("a.png")
    assert a.shape == (3, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a[0], [1.5, 2.0])
    assert np.isnan(a[1]).all()  # empty x,y -> absent
    assert np.isnan(a[2]).all()  # no row -> absent
    assert np.isnan(ds.coords("b.png")).all()
    np.testing.assert_array_equal(ds.coords("sub/c.png")[2], [9.0, 7.0])
    assert ds.image_path("sub/c.png") == root / "images" / "sub" / "c.png"


def test_spacing_row_col_and_explicit_splits(tmp_path: Path) -> None:
    splits = {"train": ["a.png", "b.png"], "val": ["sub/c.png"]}
    ds = load_dataset(make_dataset(tmp_path, GOOD_CSV, spacing_mm=[0.1, 0.2], splits=splits))
    assert ds.spacing_mm == (0.1, 0.2)
    assert ds.split("train") == ("a.png", "b.png") and ds.split("val") == ("sub/c.png",)
    assert ds.split("test") == ()  # a standard split the file does not list is empty
    with pytest.raises(KeyError, match="splits: train, val"):
        ds.split("test2")


@pytest.mark.parametrize(
    ("csv_text", "yaml_extra", "expected"),
    [
        ("file,name,x,y\na.png,sella,1,2\n", {}, r"landmarks.csv:1: header .* image,landmark,x,y"),
        (H + "a.png,sella,nan,2\n", {}, r"landmarks.csv:2: coordinates x='nan'"),
        (H + "a.png,sella,1,2\na.png,nasion,abc,2\n", {}, r"landmarks.csv:3: coordinates x='abc'"),
        (H + "a.png,sella,1,\n", {}, r"landmarks.csv:2: coordinates x='1', y=''"),
        (
            H + "a.png,nasoin,1,2\n",
            {},
            r"landmarks.csv:2: unknown landmark 'nasoin' \(did you mean 'nasion'",
        ),
        (H + "zz.png,sella,1,2\n", {}, r"landmarks.csv:2: image 'zz.png' not found under images/"),
        (
            H + "a.png,sella,1,2\na.png,sella,3,4\n",
            {},
            r"landmarks.csv:3: duplicate row .* first at line 2",
        ),
        (
            GOOD_CSV,
            {"splits": {"train": ["a.png", "gone.png"]}},
            r"split 'train' names 1 image\(s\) not found.*gone.png",
        ),
        (GOOD_CSV, {"flip_pairs": [["sella", "left_eye"]]}, r"flip pair .* unknown landmark"),
        (GOOD_CSV, {"spacing_mm": -1}, r"spacing_mm must be a positive number"),
        (GOOD_CSV, {"landmark": ["x"]}, r"unknown key 'landmark' \(did you mean 'landmarks'"),
    ],
)
def test_bad_input_names_file_row_and_fix(tmp_path: Path, csv_text: str, yaml_extra: dict, expected: str) -> None:
    root = make_dataset(tmp_path, csv_text, **yaml_extra)
    with pytest.raises(DatasetError, match=expected):
        load_dataset(root)


def test_every_problem_is_listed(tmp_path: Path) -> None:
    csv_text = "image,landmark,x,y\na.png,sella,nan,2\nzz.png,sella,1,2\na.png,bad,1,2\n"
    with pytest.raises(DatasetError) as info:
        load_dataset(make_dataset(tmp_path, csv_text))
    message = str(info.value)
    assert "3 problem(s)" in message
    for line in (2, 3, 4):
        assert f"landmarks.csv:{line}:" in message


def test_missing_files_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    root = make_dataset(tmp_path / "no_yaml", GOOD_CSV)
    (root / "dataset.yaml").unlink()
    with pytest.raises(DatasetError, match=r"dataset.yaml: missing: every data set needs a dataset.yaml"):
        load_dataset(root)
    root = make_dataset(tmp_path / "no_csv", GOOD_CSV)
    (root / "landmarks.csv").unlink()
    with pytest.raises(DatasetError, match=r"landmarks.csv: missing: write a CSV with the header image,landmark,x,y"):
        load_dataset(root)
    root = make_dataset(tmp_path / "empty", "image,landmark,x,y\n", images=())
    with pytest.raises(DatasetError, match=r"images: is empty \(no readable images\)"):
        load_dataset(root)


def test_fallback_split_is_deterministic_and_partitions() -> None:
    keys = [f"img{i:02d}.png" for i in range(10)]
    first, again = fallback_splits(keys), fallback_splits(list(reversed(keys)))
    assert first == again  # independent of the listing order
    assert [len(first[k]) for k in ("train", "val", "test")] == [8, 1, 1]
    assert sorted(first["train"] + first["val"] + first["test"]) == keys
    two = fallback_splits(keys[:2])
    assert [len(two[k]) for k in ("train", "val", "test")] == [1, 1, 0]  # small sets keep a val image
    assert fallback_splits(keys[:1]) == {"train": (keys[0],), "val": (keys[0],), "test": ()}


def test_dataset_without_splits_uses_fallback(tmp_path: Path) -> None:
    ds = load_dataset(make_dataset(tmp_path, GOOD_CSV))
    assert not ds.has_explicit_splits
    expected = fallback_splits(ds.images)
    assert {k: ds.split(k) for k in ("train", "val", "test")} == expected
    assert [len(expected[k]) for k in ("train", "val", "test")] == [2, 1, 0]
