"""pydicom's edge-case files: rescale, LUTs, encodings, multi-frame, colour, and every broken file."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut, apply_modality_lut

from landmark_afl.io import META_KEYS, ImageReadError, read_image
from tests.conftest import shared_path


def _edge(name: str):
    return shared_path("dicom", "pydicom_edge", name)


@pytest.mark.parametrize("name", ["CR_tiny_CR1_6154.dcm", "CR_tiny_CR2_6247.dcm", "CR_tiny_CR3_6278.dcm"])
def test_rescale_then_monochrome1_inversion_by_hand(name):
    """Stored s (12 bits, slope 0.684, intercept 200): out = (0*0.684+200) + (4095*0.684+200) - (s*0.684+200)."""
    path = _edge(name)
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    image, meta = read_image(path)
    lo, hi = 200.0, 4095 * 0.684 + 200.0
    np.testing.assert_allclose(image, lo + hi - (stored * 0.684 + 200.0), rtol=0, atol=1e-3)
    assert meta["steps"][1:] == ["rescale: stored * 0.684 + 200", "invert (MONOCHROME1): out = 3200.98 - v"]
    # window centre 1600 is in rescaled units; mirrored like the pixels
    assert meta["voi_window"] == pytest.approx((lo + hi - 1600.0, 2800.0))
    assert meta["spacing_source"] == "ImagerPixelSpacing"
    assert meta["spacing_note"] == "detector plane, not corrected for magnification"


def test_modality_lut_sequence():
    path = _edge("mlut_18.dcm")
    ds = pydicom.dcmread(path)
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, apply_modality_lut(ds.pixel_array, ds).astype(np.float32))
    assert meta["steps"][1].startswith("modality LUT sequence")


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
)
def test_encodings_equal_explicit_little_endian(name):
    reference, _ = read_image(_edge("MR_small.dcm"))
    image, meta = read_image(_edge(name))
    np.testing.assert_array_equal(image, reference)
    assert meta["voi_window"] == (600.0, 1600.0)


def test_deflated():
    path = _edge("image_dfl.dcm")
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, pydicom.dcmread(path).pixel_array)
    assert meta["transfer_syntax"] == "1.2.840.10008.1.2.1.99"


@pytest.mark.parametrize("name", ["emri_small.dcm", "emri_small_big_endian.dcm"])
def test_multi_frame_gives_first_frame(name):
    path = _edge(name)
    frames = pydicom.dcmread(path).pixel_array
    image, meta = read_image(path)
    assert frames.shape[0] == meta["n_frames"] == 10 and meta["frame_used"] == 0
    np.testing.assert_array_equal(image, frames[0])


@pytest.mark.parametrize(
    "name", ["SC_rgb_rle.dcm", "SC_rgb_small_odd.dcm", "ExplVR_BigEnd.dcm", "SC_rgb_jpeg_dcmtk.dcm"]
)
def test_colour_becomes_luma(name):
    path = _edge(name)
    rgb = pydicom.dcmread(path).pixel_array.astype(np.float64)  # pydicom converts YBR to RGB
    rgb = rgb[0] if rgb.ndim == 4 else rgb
    image, _ = read_image(path)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(image, expected, atol=1e-3)


def test_multi_frame_ybr_colour():
    image, meta = read_image(_edge("examples_ybr_color.dcm"))
    assert image.shape == (240, 320) and meta["n_frames"] == 30
    assert meta["photometric"] == "YBR_FULL_422"


def test_palette_colour_first_frame():
    path = _edge("OBXXXX1A_rle_2frame.dcm")
    ds = pydicom.dcmread(path)
    rgb = apply_color_lut(ds.pixel_array[0], ds).astype(np.float64)
    image, meta = read_image(path)
    np.testing.assert_allclose(image, rgb @ np.array([0.299, 0.587, 0.114]), rtol=1e-6, atol=0.01)
    assert meta["n_frames"] == 2


def test_voi_lut_sequence_window_is_reported_not_applied():
    path = _edge("vlut_04.dcm")
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, pydicom.dcmread(path).pixel_array)
    assert meta["voi_source"] == "VOILUTSequence (input range)"
    assert meta["voi_window"] is not None


def test_meta_keys_and_no_patient_data():
    image, meta = read_image(_edge("CT_small.dcm"))
    assert set(META_KEYS) <= set(meta)
    assert meta["original_shape"] == image.shape == (128, 128)
    assert meta["sop_instance_uid"] and meta["study_instance_uid"] and meta["series_instance_uid"]
    assert meta["modality"] == "CT"
    text = repr(meta)
    ds = pydicom.dcmread(_edge("CT_small.dcm"), stop_before_pixels=True)
    assert str(ds.PatientName) not in text and str(ds.PatientID) not in text


@pytest.mark.parametrize(
    "folder, name, cause",
    [
        ("pydicom_edge", "MR_truncated.dcm", "truncated"),
        ("pydicom_edge", "CR_header_only_chrKoreanMulti.dcm", "no pixel data"),
        ("pydicom_edge", "no_meta.dcm", "the content is not DICOM"),  # shifted by one byte: nothing parses
        ("pydicom_edge", "meta_missing_tsyntax.dcm", "no file meta"),
    ],
)
def test_broken_files_raise_clear_error(folder, name, cause):
    path = shared_path("dicom", folder, name)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert name in message and cause in message and "Fix:" in message
    assert info.value.path == path


def test_no_codec_error_is_clear_and_chained(monkeypatch):
    """When neither pydicom nor SimpleITK decodes the pixels: ImageReadError naming the codec fix, chained."""
    import landmark_afl.io.itk as itk_module

    def fail(ds, path):
        raise ImageReadError(path, "GDCM failed")

    monkeypatch.setattr(itk_module, "decode_dicom_with_sitk", fail)
    path = shared_path("dicom", "wg04_xray", "XA1_JPLY.dcm")
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert "XA1_JPLY.dcm" in message and "JPEG Extended" in message and "libjpeg" in message
    assert info.value.__cause__ is not None


def test_file_without_file_meta_is_read_with_the_guessed_encoding(tmp_path):
    """An old-style file (no preamble, no file meta, implicit VR): encoding guessed by pydicom, pixels read."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "CR", 3, 4, 1
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    stored = np.arange(12, dtype="<u2").reshape(3, 4)
    ds.PixelData = stored.tobytes()
    path = tmp_path / "old_style"
    ds.save_as(path, implicit_vr=True, little_endian=True)
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, 4095 - stored)
    assert meta["transfer_syntax"] == "1.2.840.10008.1.2"
