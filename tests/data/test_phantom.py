"""The synthetic hand phantom: real DICOM, deterministic, hard cases in known fractions, absent = cut off."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest

from landmark_afl.data.dataset import load_dataset
from landmark_afl.data.default import default_data_dir
from landmark_afl.data.phantom import HARD_FACTORS, HARD_FRACTIONS, generate_phantom, make_image
from landmark_afl.data.phantom_anatomy import DIGITS, LANDMARKS
from landmark_afl.io import read_image
from tests.data.conftest import SMALL


def _hardness(root: Path) -> list[dict[str, str]]:
    with (root / "hardness.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_layout_and_dicom_tags(small_phantom: Path) -> None:
    ds = load_dataset(small_phantom)
    assert len(ds.landmarks) == 36 == len(set(ds.landmarks))
    assert len(ds.images) == SMALL["n"]
    assert sorted(ds.split("train") + ds.split("val") + ds.split("test")) == list(ds.images)
    assert (len(ds.split("val")), len(ds.split("test"))) == (1, 1)
    photometric, syntaxes, uids = [], [], set()
    for key in ds.images:
        dcm = pydicom.dcmread(ds.image_path(key))
        assert dcm.Modality == "DX" and (dcm.BitsAllocated, dcm.BitsStored) == (16, 12)
        assert (dcm.Rows, dcm.Columns) == (SMALL["size"], SMALL["size"])
        assert "PixelSpacing" not in dcm and float(dcm.ImagerPixelSpacing[0]) > 0
        assert int(dcm.pixel_array.max()) <= 4095
        photometric.append(dcm.PhotometricInterpretation)
        syntaxes.append(dcm.file_meta.TransferSyntaxUID.name)
        uids.add(dcm.SOPInstanceUID)
    assert photometric.count("MONOCHROME1") == photometric.count("MONOCHROME2") == 3
    assert syntaxes.count("RLE Lossless") == 3 and syntaxes.count("Explicit VR Little Endian") == 3
    assert len(uids) == SMALL["n"]


def test_same_seed_same_bytes(small_phantom: Path, tmp_path: Path) -> None:
    again = generate_phantom(tmp_path / "again", **SMALL)
    for name in ("landmarks.csv", "dataset.yaml", "hardness.csv"):
        assert (again / name).read_bytes() == (small_phantom / name).read_bytes()
    for path in sorted((small_phantom / "images").iterdir()):
        assert (again / "images" / path.name).read_bytes() == path.read_bytes()
    other = generate_phantom(tmp_path / "other", **{**SMALL, "n": 2, "seed": SMALL["seed"] + 1})
    assert (other / "landmarks.csv").read_bytes() != (small_phantom / "landmarks.csv").read_bytes()


def test_bone_bright_for_both_photometric_interpretations(small_phantom: Path) -> None:
    ds = load_dataset(small_phantom)
    for key in ds.images:
        image, meta = read_image(ds.image_path(key))
        # the capitate centre is bone; the gap between the thumb and the index finger tips is air or soft tissue
        xy = ds.coords(key)
        cx, cy = np.round(xy[LANDMARKS.index("capitate")]).astype(int)
        bone = np.median(image[cy - 1 : cy + 2, cx - 1 : cx + 2])
        # pixels far from every landmark and inside the field: the darkest decile of the image is air
        assert bone > np.percentile(image, 10) + 300, (key, meta["photometric"])
        assert meta["spacing_source"] == "ImagerPixelSpacing"


def test_hard_fractions_and_hardness(small_phantom: Path) -> None:
    rows = _hardness(small_phantom)
    ds = load_dataset(small_phantom)
    assert [r["image"] for r in rows] == list(ds.images)
    for r in rows:  # n_absent matches the rows missing from landmarks.csv, and only cut-off images miss any
        n_absent = int(np.isnan(ds.coords(r["image"])[:, 0]).sum())
        assert int(r["n_absent"]) == n_absent and (n_absent > 0) == (r["cutoff"] == "1")
    for factor in HARD_FACTORS:
        assert sum(int(r[factor]) for r in rows) == round(HARD_FRACTIONS[factor] * SMALL["n"])
    for r in rows:
        hardness = float(r["hardness"])
        assert 0.0 <= hardness <= 1.0
        hard = any(int(r[f]) for f in HARD_FACTORS)
        assert (hardness >= 0.3) if hard else (hardness <= 0.1)  # weights: any factor >= 0.3, rotation <= 0.1


@pytest.mark.parametrize("index", [0, 1, 2])
def test_cutoff_landmarks_absent_exactly_outside_the_field(index: int) -> None:
    flags = {f: f == "cutoff" for f in HARD_FACTORS}
    img = make_image(index, seed=11, size=256, flags=flags)
    absent = np.flatnonzero(np.isnan(img.landmarks[:, 0]))
    assert len(absent) > 0
    # the absent landmarks are the distal end of exactly one digit
    assert any(list(absent) == sorted(chain[-len(absent) :]) for chain in DIGITS.values())
    # they lie in the collimated (lead-shadowed, bright) region: brighter than every present landmark
    pixels = img.pixels.astype(float)

    def value(x: float, y: float) -> float:
        c, r = int(round(x)), int(round(y))
        return float(np.median(pixels[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3]))

    present = [value(*p) for p in img.landmarks if np.isfinite(p).all()]
    untouched = make_image(index, seed=11, size=256, flags={f: False for f in HARD_FACTORS})
    assert not np.isnan(untouched.landmarks).any()  # without the cut-off factor every landmark is present
    np.testing.assert_array_equal(untouched.projected, img.projected)  # same hand, only the field differs
    for k in absent:
        assert value(*img.projected[k]) > max(present)


def test_default_data_dir_generates_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDMARK_AFL_CACHE", str(tmp_path / "cache"))
    first = default_data_dir(n=2, seed=0, size=128)
    assert first == tmp_path / "cache" / "phantom-v1-n2-s0-128"
    stamp = (first / "landmarks.csv").stat().st_mtime_ns
    assert default_data_dir(n=2, seed=0, size=128) == first
    assert (first / "landmarks.csv").stat().st_mtime_ns == stamp  # reused, not regenerated
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no temporary folder left behind
    assert len(load_dataset(first).images) == 2


def test_refuses_to_overwrite(small_phantom: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from landmark_afl.cli import main
    from landmark_afl.data.dataset import DatasetError

    with pytest.raises(DatasetError, match="not empty; choose another folder or pass --force"):
        generate_phantom(small_phantom, n=1, size=128)
    assert main(["data", "phantom", str(small_phantom), "--n", "1", "--size", "128"]) == 1
    assert "pass --force" in capsys.readouterr().err
    out = tmp_path / "cli"
    out.mkdir()
    (out / "old.txt").write_text("x")
    assert main(["data", "phantom", str(out), "--n", "2", "--size", "128", "--force"]) == 0
    assert not (out / "old.txt").exists() and len(load_dataset(out).images) == 2
    assert main(["data", "phantom", str(out), "--n", "0"]) == 2  # usage error
