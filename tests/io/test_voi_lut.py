"""The file's own VOI (meta["voi"], the ``voi_window`` protocol step) against pydicom's ``apply_voi_lut``.

The reference is pydicom on the stored values: ``apply_modality_lut`` then ``apply_voi_lut`` (PS3.3 C.11.2), its
output range scaled to [0, 1] (for a window: the range pydicom's own LINEAR_EXACT gives for values far outside it;
for a LUT: ``2**bits - 1``), and ``1 - y`` for MONOCHROME1 (the display inversion, bone bright).
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut, apply_windowing
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from landmark_afl.io import read_image
from landmark_afl.io.dicom_pixels import apply_voi
from landmark_afl.protocols import STEPS
from tests.conftest import shared_path


def _step(image: np.ndarray, meta: dict, **params) -> np.ndarray:
    spec = STEPS["voi_window"]
    full = {k: p.default for k, p in spec.params.items()} | params
    out = spec.func(np.array(image, dtype=np.float32, copy=True), meta, **full)
    assert out.dtype == np.float32 and out.shape == image.shape
    return out


def _window_range(ds: Dataset) -> tuple[float, float]:
    """pydicom's own output range of a windowing operation on ``ds`` (y_min, y_max), measured, not re-derived."""
    probe = copy.deepcopy(ds)
    probe.VOILUTFunction = "LINEAR_EXACT"
    probe.WindowCenter, probe.WindowWidth = 0.0, 1.0
    y = apply_windowing(np.array([-1e30, 1e30]), probe)
    return float(y[0]), float(y[1])


def pydicom_display(ds: Dataset) -> np.ndarray:
    """The independent reference: pydicom's VOI on the modality output, scaled to [0, 1], MONOCHROME1 inverted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v = apply_modality_lut(ds.pixel_array, ds)
        if ds.get("VOILUTSequence"):
            # pydicom 3.0 indexes an 8-bit table through a uint8 array, so inputs beyond first + 255 wrap around
            # instead of taking the last entry (PS3.3 C.11.2.1.1); clamping them first gives the standard's result
            n, first = int(ds.VOILUTSequence[0].LUTDescriptor[0]) or 65536, int(ds.VOILUTSequence[0].LUTDescriptor[1])
            v = np.clip(v, first, first + n - 1)
        y = apply_voi_lut(v, ds).astype(np.float64)
    if ds.get("VOILUTSequence"):
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        y = y / (2**bits - 1)
    else:
        y_min, y_max = _window_range(ds)
        y = (y - y_min) / (y_max - y_min)
    return 1.0 - y if ds.PhotometricInterpretation == "MONOCHROME1" else y


def _dataset(stored: np.ndarray, *, photometric="MONOCHROME2", bits=12, signed=False, **elements) -> Dataset:
    """A small secondary-capture DICOM holding ``stored`` (uint16 / int16) and the given elements."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, int(signed)
    ds.PixelData = stored.astype(np.int16 if signed else np.uint16).tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def _lut_item(entries: np.ndarray, first: int, bits: int, vr: str = "US") -> Dataset:
    item = Dataset()
    item.add(DataElement(0x00283002, "SS" if first < 0 else "US", [len(entries) % 65536, first, bits]))
    if vr == "OW":
        item.add(DataElement(0x00283006, "OW", entries.astype("<u2").tobytes()))
    else:
        item.add(DataElement(0x00283006, "US", [int(v) for v in entries]))
    return item


def _ramp(bits=12, signed=False, shape=(48, 64)) -> np.ndarray:
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return np.linspace(lo, hi, shape[0] * shape[1]).round().reshape(shape)


def _read(ds: Dataset, tmp_path) -> tuple[np.ndarray, dict, Dataset]:
    path = tmp_path / f"{generate_uid()}.dcm"
    ds.save_as(path, enforce_file_format=True)
    image, meta = read_image(path)
    return image, meta, pydicom.dcmread(path)


def _s_curve(n: int, bits: int) -> np.ndarray:
    t = np.linspace(-4, 4, n)
    return np.round((2**bits - 1) / (1 + np.exp(-t))).astype(np.int64)


SYNTHETIC = {
    "linear": dict(WindowCenter=1500.0, WindowWidth=801.0),
    "linear default, rescaled": dict(WindowCenter=-200.0, WindowWidth=1200.0, RescaleSlope=0.5, RescaleIntercept=-1024),
    "linear exact": dict(WindowCenter=1500.0, WindowWidth=800.5, VOILUTFunction="LINEAR_EXACT"),
    "sigmoid": dict(WindowCenter=2100.0, WindowWidth=900.0, VOILUTFunction="SIGMOID"),
    "sigmoid rescaled": dict(
        WindowCenter=300.0, WindowWidth=700.0, VOILUTFunction="SIGMOID", RescaleSlope=2.0, RescaleIntercept=-1000.0
    ),
    "sigmoid, second window ignored": dict(
        WindowCenter=[2100.0, 500.0], WindowWidth=[900.0, 100.0], VOILUTFunction="SIGMOID"
    ),
}


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("case", sorted(SYNTHETIC))
def test_synthetic_windows_equal_pydicom(case, photometric, tmp_path):
    image, meta, ds = _read(_dataset(_ramp(), photometric=photometric, **SYNTHETIC[case]), tmp_path)
    expected = pydicom_display(ds)
    out = _step(image, meta)
    voi = meta["voi"]
    if photometric == "MONOCHROME1" and voi["function"] == "LINEAR":
        # the one documented difference: the LINEAR window mirrored onto inverted pixels sits one modality unit off
        # (1 / (w - 1) of the output), kept so that MONOCHROME1 protocol outputs do not change
        step = 1.0 / (voi["width"] - 1.0)
        assert np.abs(out - expected).max() <= step + 1e-5
        assert np.abs(out - expected).max() >= step / 2  # the offset is real (not a tolerance that hides a bug)
    else:
        np.testing.assert_allclose(out, expected, rtol=0, atol=2e-6)
    assert voi["function"] == str(ds.get("VOILUTFunction") or "LINEAR")
    assert voi["inverted"] == (photometric == "MONOCHROME1")
    json.dumps(voi)  # JSON-friendly


LUTS = {
    "16-bit S curve from 100, US": dict(entries=_s_curve(3800, 16), first=100, bits=16, vr="US"),
    "12-bit S curve from 500, OW": dict(entries=_s_curve(2000, 12), first=500, bits=12, vr="OW"),
    "8-bit table": dict(entries=_s_curve(256, 8), first=1024, bits=8, vr="US"),
}


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("case", sorted(LUTS))
def test_synthetic_voi_lut_sequence_equals_pydicom(case, photometric, tmp_path):
    lut = LUTS[case]
    item = _lut_item(lut["entries"], lut["first"], lut["bits"], lut["vr"])
    ds = _dataset(_ramp(), photometric=photometric, VOILUTSequence=Sequence([item]))
    image, meta, ds = _read(ds, tmp_path)
    np.testing.assert_allclose(_step(image, meta), pydicom_display(ds), rtol=0, atol=1e-6)
    voi = meta["voi"]
    assert voi["function"] == "LUT" and voi["lut_first"] == lut["first"] and voi["lut_bits"] == lut["bits"]
    assert list(voi["lut"]) == lut["entries"].tolist()
    json.dumps(voi)
    below, above = ds.pixel_array < lut["first"], ds.pixel_array >= lut["first"] + len(lut["entries"])
    assert below.any() and above.any()  # both clamps are exercised
    display = _step(image, meta)
    if photometric == "MONOCHROME1":
        display = 1.0 - display
    scale = 2 ** lut["bits"] - 1
    np.testing.assert_allclose(display[below], lut["entries"][0] / scale, atol=1e-6)
    np.testing.assert_allclose(display[above], lut["entries"][-1] / scale, atol=1e-6)


def test_signed_pixels_with_a_negative_first_input(tmp_path):
    stored = _ramp(12, signed=True)
    item = _lut_item(_s_curve(3000, 12), -1500, 12)
    image, meta, ds = _read(_dataset(stored, signed=True, VOILUTSequence=Sequence([item])), tmp_path)
    assert meta["voi"]["lut_first"] == -1500
    np.testing.assert_allclose(_step(image, meta), pydicom_display(ds), rtol=0, atol=1e-6)


def test_lut_is_preferred_to_the_window_as_pydicom_does(tmp_path):
    item = _lut_item(_s_curve(4096, 16), 0, 16)
    ds = _dataset(_ramp(), WindowCenter=100.0, WindowWidth=50.0, VOILUTSequence=Sequence([item]))
    image, meta, ds = _read(ds, tmp_path)
    assert meta["voi"]["function"] == "LUT"
    np.testing.assert_allclose(_step(image, meta), pydicom_display(ds), rtol=0, atol=1e-6)


def test_unknown_function_is_the_default_linear(tmp_path):
    image, meta, _ = _read(_dataset(_ramp(), WindowCenter=1500.0, WindowWidth=801.0, VOILUTFunction="CURVY"), tmp_path)
    assert meta["voi"]["function"] == "LINEAR" and "CURVY" in meta["voi"]["source"]
    reference = _dataset(_ramp(), WindowCenter=1500.0, WindowWidth=801.0)
    np.testing.assert_allclose(_step(image, meta), pydicom_display(reference), atol=2e-6)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_sigmoid_width_scale_is_a_wider_window(photometric, tmp_path):
    elements = dict(WindowCenter=2100.0, WindowWidth=900.0, VOILUTFunction="SIGMOID")
    image, meta, _ = _read(_dataset(_ramp(), photometric=photometric, **elements), tmp_path)
    _, _, wide = _read(_dataset(_ramp(), photometric=photometric, **(elements | {"WindowWidth": 2250.0})), tmp_path)
    np.testing.assert_allclose(_step(image, meta, width_scale=2.5), pydicom_display(wide), atol=2e-6)


def test_lut_width_scale_stretches_the_input_axis_by_hand(tmp_path):
    entries, first = _s_curve(2000, 12), 500
    item = _lut_item(entries, first, 12)
    image, meta, ds = _read(_dataset(_ramp(), VOILUTSequence=Sequence([item])), tmp_path)
    middle = first + (len(entries) - 1) / 2
    v = ds.pixel_array.astype(np.float64)
    idx = np.clip(np.rint(middle + (v - middle) / 2.0), first, first + len(entries) - 1).astype(int) - first
    np.testing.assert_allclose(_step(image, meta, width_scale=2.0), entries[idx] / 4095.0, atol=1e-6)


def test_lut_on_non_integer_values_takes_the_nearest_entry():
    voi = dict(function="LUT", lut_first=10, lut_bits=8, lut=tuple(range(0, 250, 10)), inverted=False)
    voi["value_range"] = (0.0, 255.0)
    x = np.array([[9.0, 10.4, 10.6, 12.5, 100.0]], np.float32)
    expected = np.array([[0, 0, 10, 20, 240]]) / 255.0  # below the table: entry 0; 12.5 rounds to even (12)
    np.testing.assert_allclose(apply_voi(x, voi), expected, atol=1e-7)


def test_colour_images_have_no_exact_voi():
    _, meta = read_image(shared_path("dicom", "pydicom_edge", "SC_rgb_small_odd.dcm"))
    assert meta["voi"] is None


def test_files_without_voi_keep_the_percentile_fallback(tmp_path):
    image, meta, _ = _read(_dataset(_ramp()), tmp_path)
    assert meta["voi"] is None and meta["voi_window"] is None
    expected = STEPS["percentile_window"].func(image.copy(), meta, lo=1.0, hi=99.0, width_scale=1.0)
    np.testing.assert_array_equal(_step(image, meta, lo=1.0, hi=99.0), expected)


def test_real_voi_lut_sequence_file_equals_pydicom():
    """pydicom's vlut_04.dcm: 8-bit MONOCHROME2 with a 256-entry 16-bit VOI LUT (the only such file in the data)."""
    path = shared_path("dicom", "pydicom_edge", "vlut_04.dcm")
    image, meta = read_image(path)
    assert meta["voi"]["function"] == "LUT" and len(meta["voi"]["lut"]) == 256
    np.testing.assert_allclose(_step(image, meta), pydicom_display(pydicom.dcmread(path)), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "parts",
    [
        ("pydicom_edge", "MR_small.dcm"),
        ("pydicom_edge", "693_J2KI.dcm"),
        ("xray_misc", "JPEG2KLossless_1s_1f_u_16_16.dcm"),
        ("pydicom_edge", "CR_tiny_CR1_6154.dcm"),
        ("wg04_xray", "RG3_UNC.dcm"),
    ],
)
def test_real_linear_windows_equal_pydicom(parts):
    """Real files with a LINEAR window; MONOCHROME1 ones (CR_tiny, RG3) within the documented one-unit offset."""
    path = shared_path("dicom", *parts)
    ds = pydicom.dcmread(path)
    image, meta = read_image(path)
    assert meta["voi"]["function"] == "LINEAR"
    tolerance = 1.0 / (meta["voi"]["width"] - 1.0) + 1e-5 if meta["voi"]["inverted"] else 2e-6
    assert np.abs(_step(image, meta) - pydicom_display(ds)).max() <= tolerance
