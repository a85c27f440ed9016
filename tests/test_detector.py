"""The Python API: ``Detector.load(run)(image)`` gives the numbers ``predict`` writes."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import landmark_afl
from landmark_afl import Detector, Landmarks
from landmark_afl.cli import main
from tests.inference.real_inputs import LANDMARKS, make_real_folder, make_run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("detector")
    good, _ = make_real_folder(root / "in")
    return root, make_run(root), good


def test_the_api_gives_predicts_numbers_on_real_files(setup, tmp_path):
    root, run, good = setup
    out = tmp_path / "out"
    assert main(["predict", str(run), str(root / "in"), "--out", str(out), "--no-progress", "--amp", "off"]) in (0, 3)
    with (out / "results.csv").open(newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    detector = Detector.load(run, amp="off")
    assert detector.names == LANDMARKS and "fp32" in repr(detector)
    checked = 0
    for path in good:
        row = rows[str(path)]
        result = detector(path)
        assert isinstance(result, Landmarks) and result.shape == (int(row["rows"]), int(row["cols"]))
        for k, name in enumerate(LANDMARKS):
            assert result.xy[k, 0] == pytest.approx(float(row[f"{name}_x"]), abs=2e-3)
            assert result.xy[k, 1] == pytest.approx(float(row[f"{name}_y"]), abs=2e-3)
            assert result.peaks[k] == pytest.approx(float(row[f"{name}_peak"]), abs=1e-5)
            assert str(int(result.present[k])) == row[f"{name}_present"]
            if row[f"{name}_x_mm"]:
                assert result.xy_mm[k, 0] == pytest.approx(float(row[f"{name}_x_mm"]), abs=1e-3)
            else:
                assert result.xy_mm is None
        assert result.spacing_source == row["spacing_source"]
        checked += 1
    assert checked == len(good) >= 5


def test_an_array_a_spacing_and_a_threshold(setup):
    _, run, _ = setup
    detector = Detector.load(run, amp="off")
    pixels = np.random.default_rng(0).random((300, 240)).astype(np.float32) * 4000
    plain = detector(pixels)
    assert plain.path is None and plain.shape == (300, 240) and plain.xy_mm is None and plain.spacing_source == "none"
    assert ((plain.xy >= -0.5) & (plain.xy <= np.array([240, 300]) - 0.5)).all()
    with_mm = detector(pixels, spacing_mm=0.1, threshold=1e-6)
    np.testing.assert_allclose(with_mm.xy_mm, with_mm.xy * 0.1)
    assert (with_mm.present == (with_mm.peaks >= 1e-6)).all() and with_mm.spacing_source == "--spacing"
    assert with_mm.to_dict()["landmarks"][LANDMARKS[0]]["x_mm"] == pytest.approx(with_mm.xy_mm[0, 0])
    with pytest.raises(ValueError, match="2-D"):
        detector(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        detector(np.full((64, 64), np.nan))
    with pytest.raises(ValueError, match="spacing_mm"):
        detector(pixels, spacing_mm=0)
    with pytest.raises(ValueError, match="threshold"):
        detector(pixels, threshold=float("nan"))


def test_the_top_level_api_is_lazy_and_complete():
    assert landmark_afl.read_image.__module__ == "landmark_afl.io.reader"
    assert callable(landmark_afl.load_protocol)
    with pytest.raises(AttributeError):
        landmark_afl.no_such_name  # noqa: B018


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"landmark-afl {landmark_afl.__version__}"
