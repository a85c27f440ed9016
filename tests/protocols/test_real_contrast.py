"""The contrast ordering higher > high > low > lower on real cephalograms, and sane output on a real CR DICOM."""

from __future__ import annotations

import numpy as np
import pytest

from landmark_afl.protocols import SHIPPED, contrast_measures, load_protocol
from tests.conftest import shared_path

CEPHALOGRAMS = ("001", "031", "062", "093", "124", "150")


def _read(path):
    from landmark_afl.io import read_image

    return read_image(path)


@pytest.fixture(scope="module")
def protocols():
    return [load_protocol(n) for n in SHIPPED]


@pytest.mark.parametrize("number", CEPHALOGRAMS)
def test_contrast_ordered_on_real_cephalograms(number, protocols):
    image, meta = _read(shared_path("isbi2015", "RawImage", "TrainingData", f"{number}.jpg"))
    measures = [contrast_measures(p(image, meta)) for p in protocols]
    for key in ("global_std", "local_std"):
        values = [m[key] for m in measures]
        assert values == sorted(values, reverse=True) and len(set(values)) == 4, f"{number}.jpg {key}: {values}"


def test_real_cr_dicom_monochrome1(protocols):
    """RG3_UNC: 10-bit CR, MONOCHROME1 (read_image inverts it), with a VOI window: every output is usable."""
    image, meta = _read(shared_path("dicom", "wg04_xray", "RG3_UNC.dcm"))
    assert meta.get("voi_window") is not None
    outs = {p.name: p(image, meta) for p in protocols}
    for name, out in outs.items():
        assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
        # not a binary image: at most 60 % of the pixels saturated (the unexposed collimator border is about half)
        saturated = np.mean((out <= 0.001) | (out >= 0.999))
        assert saturated < 0.6, f"{name}: {saturated:.0%} saturated"
        assert len(np.unique(out)) > 256, f"{name}: precision lost"
    measures = [contrast_measures(outs[n]) for n in SHIPPED]
    for key in ("global_std", "local_std"):
        values = [m[key] for m in measures]
        assert values == sorted(values, reverse=True), f"RG3_UNC {key}: {values}"
    # 'low' is the file's own VOI window, by the DICOM linear formula.
    c, w = meta["voi_window"]
    expected = np.clip((image.astype(np.float64) - (c - 0.5)) / (w - 1) + 0.5, 0, 1)
    np.testing.assert_allclose(outs["low"], expected, atol=1e-5)
