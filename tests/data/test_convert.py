"""Converters: ISBI 2015 cephalometric and the Digital Hand Atlas, on small synthetic layouts and the real data."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from landmark_afl.cli import main
from landmark_afl.data.check import check_dataset
from landmark_afl.data.convert_hand_atlas import convert_hand_atlas
from landmark_afl.data.convert_isbi2015 import LANDMARKS as ISBI_LANDMARKS
from landmark_afl.data.convert_isbi2015 import convert_isbi2015
from landmark_afl.data.dataset import DatasetError, load_dataset
from tests.conftest import shared_path


def _isbi_layout(root: Path) -> Path:
    """A tiny ISBI-like release: .bmp, .png and .jpg images, annotations with extra trailing lines."""
    for folder, name in (("TrainingData", "001.bmp"), ("TrainingData", "002.png"), ("Test1Data", "151.jpg")):
        (root / "RawImage" / folder).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "RawImage" / folder / name), np.full((40, 30), 128, np.uint8))
    for who, shift in (("senior", 0.0), ("junior", 2.0)):
        (root / "AnnotationsByMD" / f"400_{who}").mkdir(parents=True, exist_ok=True)
        for stem in ("001", "002", "151"):
            lines = [f"{k + shift:g},{2 * k + 1:g}" for k in range(19)] + ["3", "1", "junk line"]
            (root / "AnnotationsByMD" / f"400_{who}" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_isbi_synthetic_layout(tmp_path: Path) -> None:
    src = _isbi_layout(tmp_path / "src")
    report = convert_isbi2015(src, tmp_path / "dst")
    assert report.n_images == 3 and report.n_landmarks_written == 57
    ds = load_dataset(tmp_path / "dst")
    assert ds.landmarks == ISBI_LANDMARKS and ds.spacing_mm == (0.1, 0.1)
    assert ds.images == ("001.bmp", "002.png", "151.jpg")
    # the default val split: 10 % of the training images, at least one (the last by id), never a test image
    assert ds.split("train") == ("001.bmp",) and ds.split("val") == ("002.png",) and ds.split("test") == ("151.jpg",)
    expected = np.stack([np.arange(19) + 1.0, 2 * np.arange(19) + 1.0], axis=1)  # mean of k and k + 2
    np.testing.assert_allclose(ds.coords("002.png"), expected)
    assert check_dataset(tmp_path / "dst") == []

    convert_isbi2015(src, tmp_path / "senior", reference="senior", val_count=0)
    senior = load_dataset(tmp_path / "senior")
    np.testing.assert_allclose(senior.coords("001.bmp")[:, 0], np.arange(19))
    assert senior.split("train") == ("001.bmp", "002.png") and senior.split("val") == ()
    warnings = [p for p in check_dataset(tmp_path / "senior") if p.severity == "warning"]
    assert len(warnings) == 1 and "split 'val' is empty" in warnings[0].message and "never test" in warnings[0].message


def test_isbi_refuses_to_overwrite_and_bad_annotation(tmp_path: Path) -> None:
    src = _isbi_layout(tmp_path / "src")
    convert_isbi2015(src, tmp_path / "dst")
    with pytest.raises(DatasetError, match="not empty; choose another folder or pass --force"):
        convert_isbi2015(src, tmp_path / "dst")
    convert_isbi2015(src, tmp_path / "dst", reference="junior", force=True)
    assert load_dataset(tmp_path / "dst").coords("151.jpg")[0, 0] == 2.0
    (src / "AnnotationsByMD" / "400_junior" / "002.txt").write_text("1,2\n3,x\n")
    with pytest.raises(DatasetError, match=r"002.txt has 2 lines; the first 19"):
        convert_isbi2015(src, tmp_path / "other")
    assert not (tmp_path / "other").exists()  # nothing written when an annotation is bad
    assert main(["data", "convert", "isbi2015", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2


def test_isbi_real_data_mean_reference(tmp_path: Path) -> None:
    real = shared_path("isbi2015")
    src = tmp_path / "src"
    for folder, stem in (("TrainingData", "001"), ("TrainingData", "002"), ("Test1Data", "151")):
        (src / "RawImage" / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(real / "RawImage" / folder / f"{stem}.jpg", src / "RawImage" / folder)
        for who in ("senior", "junior"):
            (src / "AnnotationsByMD" / f"400_{who}").mkdir(parents=True, exist_ok=True)
            shutil.copy(real / "AnnotationsByMD" / f"400_{who}" / f"{stem}.txt", src / "AnnotationsByMD" / f"400_{who}")
    assert main(["data", "convert", "isbi2015", str(src), str(tmp_path / "dst")]) == 0
    ds = load_dataset(tmp_path / "dst")
    # by hand: 001.txt line 1 is "835,996" (senior) and "829,991" (junior) -> sella at (832, 993.5)
    senior = (real / "AnnotationsByMD" / "400_senior" / "001.txt").read_text().splitlines()[0]
    junior = (real / "AnnotationsByMD" / "400_junior" / "001.txt").read_text().splitlines()[0]
    hand = [(float(a) + float(b)) / 2 for a, b in zip(senior.split(","), junior.split(","), strict=True)]
    np.testing.assert_allclose(ds.coords("001.jpg")[0], hand)
    np.testing.assert_allclose(hand, [832.0, 993.5])
    assert ds.split("train") == ("001.jpg",) and ds.split("val") == ("002.jpg",) and ds.split("test") == ("151.jpg",)
    assert check_dataset(tmp_path / "dst") == []


def test_hand_atlas_real_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = shared_path("hand_xray")
    n_rows = sum(1 for line in (src / "setup" / "all.csv").read_text().splitlines() if line.strip())
    assert main(["data", "convert", "hand-atlas", str(src), str(tmp_path / "dst")]) == 0
    assert f"{n_rows - 9} CSV row(s) without an image skipped" in capsys.readouterr().out
    report = convert_hand_atlas(src, tmp_path / "again")
    assert report.n_images == 9 and len(report.skipped) == n_rows - 9
    ds = load_dataset(tmp_path / "dst")
    assert len(ds.images) == 9 and len(ds.landmarks) == 37 and ds.spacing_mm is None
    row = next(line for line in (src / "setup" / "all.csv").read_text().splitlines() if line.startswith("3167,"))
    values = [float(v) for v in row.split(",")[1:]]
    np.testing.assert_allclose(ds.coords("3167.mha"), np.reshape(values, (37, 2)))
    fold = src / "setup" / "cv_reduced" / "set1"
    images = set(ds.images)
    train, test = (
        sorted(f"{i.strip()}.mha" for i in (fold / f"{s}.txt").read_text().split() if f"{i.strip()}.mha" in images)
        for s in ("train", "test")
    )
    assert list(ds.split("test")) == test
    n_val = max(1, round(0.1 * len(train)))  # the default val split: the last 10 % of the fold's training images
    assert list(ds.split("val")) == train[-n_val:] and list(ds.split("train")) == train[:-n_val]
    assert check_dataset(tmp_path / "dst") == []
