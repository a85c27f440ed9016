"""Landmark outcomes: detected-only figures against the challenge's every-present-landmark figures, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from landmark_afl.metrics.landmarks import landmark_outcomes, summarize_outcomes

# two images x three landmarks; spacing 0.1 mm / px; landmark 2 of image 1 is absent
GT = np.array([[[10.0, 10.0], [20.0, 20.0], [30.0, 30.0]], [[10.0, 10.0], [20.0, 20.0], [np.nan, np.nan]]])
PRED = GT.copy()
PRED[0, 0] += (3.0, 4.0)  # 5 px = 0.5 mm, detected
PRED[0, 1] += (0.0, 28.0)  # 2.8 mm, missed (peak below threshold)
PRED[0, 2] += (0.0, 0.0)  # detected, exact
PRED[1, 0] += (21.0, 28.0)  # 35 px = 3.5 mm, detected
PRED[1, 1] += (60.0, 80.0)  # 100 px = 10 mm, missed
PRED[1, 2] = (5.0, 5.0)  # absent landmark, detected: a false positive, never an error
PEAKS = np.array([[0.9, 0.2, 0.8], [0.7, 0.1, 0.6]])
SPACING = np.full((2, 2), 0.1)


def test_detected_only_and_every_present_landmark_figures():
    out = landmark_outcomes(PRED, PEAKS, GT, 0.5, SPACING)
    total = summarize_outcomes(out)
    assert (total["present"], total["detected"], total["false_negatives"], total["false_positives"]) == (5, 3, 2, 1)
    assert total["mre_mm"] == pytest.approx((0.5 + 0.0 + 3.5) / 3)  # detected only
    assert total["mre_all_mm"] == pytest.approx((0.5 + 2.8 + 0.0 + 3.5 + 10.0) / 5)  # the two misses count
    assert total["mre_all_px"] == pytest.approx((5 + 28 + 0 + 35 + 100) / 5)
    assert total["sdr"] == pytest.approx({"2": 200 / 3, "2.5": 200 / 3, "3": 200 / 3, "4": 100.0})
    assert total["sdr_all"] == pytest.approx({"2": 40.0, "2.5": 40.0, "3": 60.0, "4": 80.0})
    per = summarize_outcomes(out, axis=0)
    assert per["mre_all_mm"] == pytest.approx([2.0, 6.4, 0.0])
    assert per["mre_mm"][1] is None  # landmark 1 never detected: no detected-only error


def test_unknown_spacing_leaves_mm_empty_and_keeps_pixels():
    total = summarize_outcomes(landmark_outcomes(PRED, PEAKS, GT, 0.5))
    assert total["mre_all_mm"] is None and total["sdr_all"]["2"] is None
    assert total["mre_all_px"] == pytest.approx(33.6)
