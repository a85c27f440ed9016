"""The spacing rules, on real files and on DICOM written here with pydicom."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydicom.dataset import Dataset

from landmark_afl.io import is_dicom, read_image
from landmark_afl.io.spacing import dicom_spacing, itk_spacing
from tests.conftest import shared_path
from tests.io.synthetic import write_dicom


def _ds(**tags) -> Dataset:
    ds = Dataset()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return ds


def test_degenerate_pixel_spacing_is_not_used_real_file():
    _, meta = read_image(shared_path("dicom", "wg04_xray", "RG1_J2KI.dcm"))
    assert meta["spacing_mm"] is None and meta["spacing_source"] == "none"
    assert "0.000" in meta["spacing_note"] and "degenerate" in meta["spacing_note"]


def test_imager_pixel_spacing_only_real_file():
    _, meta = read_image(shared_path("dicom", "xray_misc", "JPEG2KLossless_1s_1f_u_16_16.dcm"))
    assert meta["spacing_mm"] == (0.4, 0.4) and meta["spacing_source"] == "ImagerPixelSpacing"
    assert meta["spacing_note"] == "detector plane, not corrected for magnification"


def test_magnification_factor_corrects_imager_spacing(tmp_path):
    pixels = np.arange(12, dtype=np.uint16).reshape(3, 4)
    path = write_dicom(
        tmp_path / "mag.dcm", pixels, ImagerPixelSpacing=[0.15, 0.12], EstimatedRadiographicMagnificationFactor=1.2
    )
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, pixels)
    assert meta["spacing_mm"] == pytest.approx((0.125, 0.1))
    assert meta["spacing_source"] == "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"


def test_file_without_extension_and_without_preamble(tmp_path):
    pixels = np.full((5, 6), 7, dtype=np.uint16)
    for name, preamble in (("IM0001", True), ("IM0002", False)):
        path = write_dicom(tmp_path / name, pixels, preamble=preamble, PixelSpacing=[0.2, 0.3])
        assert is_dicom(path)
        image, meta = read_image(path)
        assert meta["format"] == "dicom" and image.shape == (5, 6)
        assert meta["spacing_mm"] == (0.2, 0.3) and meta["spacing_source"] == "PixelSpacing"


def test_pixel_spacing_row_col_order_and_precedence():
    ds = _ds(PixelSpacing=[0.2, 0.3], ImagerPixelSpacing=[0.5, 0.5], EstimatedRadiographicMagnificationFactor=2.0)
    assert dicom_spacing(ds) == ((0.2, 0.3), "PixelSpacing", None)


@pytest.mark.parametrize("bad", [[0.0, 0.0], [-0.1, 0.1], [0.1], [float("nan"), 0.1]])
def test_degenerate_values_fall_through(bad):
    spacing, source, note = dicom_spacing(_ds(PixelSpacing=bad, ImagerPixelSpacing=[0.1, 0.1]))
    assert spacing == (0.1, 0.1) and source == "ImagerPixelSpacing"
    assert "degenerate" in note and "not corrected for magnification" in note
    assert dicom_spacing(_ds(PixelSpacing=bad))[0] is None


def test_degenerate_magnification_factor_is_ignored():
    spacing, source, note = dicom_spacing(
        _ds(ImagerPixelSpacing=[0.1, 0.1], EstimatedRadiographicMagnificationFactor=0.0)
    )
    assert spacing == (0.1, 0.1) and source == "ImagerPixelSpacing" and "degenerate" in note


def test_no_spacing():
    assert dicom_spacing(_ds()) == (None, "none", "no PixelSpacing or ImagerPixelSpacing in the header")


def test_itk_spacing_is_turned_into_row_col():
    assert itk_spacing((0.3, 0.2, 1.0)) == ((0.2, 0.3), "itk-header", None)
    assert itk_spacing((0.0, 0.2))[0] is None
    assert itk_spacing((math.inf, 0.2))[0] is None
