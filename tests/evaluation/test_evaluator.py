"""The evaluator against hand-made heatmaps with a known number of misses, and the threshold sweep's properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.data.dataset import load_dataset
from landmark_afl.data.letterbox import to_input_coords
from landmark_afl.evaluation.evaluator import predict_images, summarize_result
from landmark_afl.losses import HeatmapLoss
from landmark_afl.metrics.sweep import threshold_sweep
from landmark_afl.protocols import load_protocol
from landmark_afl.tasks.landmark import LandmarkTask
from tests.evaluation.fixtures import LANDMARKS, StubModel, write_dataset

INPUT = (64, 64)


def _stub_task(dataset, images, amplitude: np.ndarray, fp_amplitude: np.ndarray, batch_size: int) -> LandmarkTask:
    """Gaussians at the ground truth scaled by ``amplitude`` [N, K]; absent landmarks get a blob of ``fp_amplitude``."""
    codec = GaussianHeatmapCodec(INPUT, sigma=2.0)
    scale = np.array([INPUT[1] / 128, INPUT[0] / 128])
    maps = []
    for i, key in enumerate(images):
        gt = to_input_coords(dataset.coords(key), scale)
        absent = ~np.isfinite(gt).all(-1)
        gt[absent] = [20.0, 30.0]  # where a spurious response appears
        amp = np.where(absent, fp_amplitude[i], amplitude[i])
        maps.append(codec.encode(gt) * torch.as_tensor(amp, dtype=torch.float32)[:, None, None])
    model = StubModel(torch.stack(maps), batch_size)
    return LandmarkTask(model, codec, HeatmapLoss("mse")).eval()


def test_known_misses_and_false_positives_are_counted_exactly(tmp_path):
    root, coords = write_dataset(tmp_path / "ds", n=5)
    dataset = load_dataset(root)
    images = dataset.split("test")
    rng = np.random.default_rng(3)
    amplitude = rng.choice([0.2, 0.45, 0.55, 0.9], size=(len(images), len(LANDMARKS)))
    fp_amplitude = np.array([[0, 0, 0, 0.8], [0, 0, 0, 0.3]] + [[0] * 4] * 3)  # image 0: FP, image 1: not
    task = _stub_task(dataset, images, amplitude, fp_amplitude, batch_size=2)
    result = predict_images(task, dataset, images, load_protocol("high"), batch_size=2)
    summary = summarize_result(result, 0.5, LANDMARKS)

    present = np.array([np.isfinite(coords[k]).all(-1) for k in images])
    expected_fn = present & (amplitude < 0.5)
    assert summary["false_negatives"] == int(expected_fn.sum()) > 0
    assert summary["false_positives"] == 1
    assert summary["present"] == int(present.sum()) == 5 * 4 - 2
    assert summary["present"] == summary["detected"] + summary["false_negatives"]
    for j, entry in enumerate(summary["per_landmark"]):
        assert entry["landmark"] == LANDMARKS[j]
        assert entry["false_negatives"] == int(expected_fn[:, j].sum())
        assert entry["present"] == entry["detected"] + entry["false_negatives"]
    assert sum(e["false_negatives"] for e in summary["per_landmark"]) == summary["false_negatives"]
    assert sum(e["false_positives"] for e in summary["per_landmark"]) == summary["false_positives"]
    # the decoded positions of detected landmarks are the ground truth (exact Gaussians): ~0 mm error, spacing known
    assert summary["error_unit"] == "mm"
    assert summary["mre_mm"] < 0.05
    assert summary["sdr"]["2"] == 100.0
    # the peak is the highest grid sample of the sub-pixel Gaussian: just below its amplitude
    ratio = result.peaks[present] / amplitude[present]
    assert (ratio <= 1 + 1e-6).all() and (ratio > 0.9).all()


def test_unreadable_image_is_recorded_not_fatal(tmp_path):
    root, _ = write_dataset(tmp_path / "ds", n=3)
    (root / "images" / "img01.png").write_bytes(b"not a png")
    dataset = load_dataset(root)
    images = dataset.split("test")
    amplitude = np.ones((2, 4))
    task = _stub_task(dataset, [k for k in images if k != "img01.png"], amplitude, np.zeros((2, 4)), batch_size=8)
    result = predict_images(task, dataset, images, load_protocol("high"), batch_size=8)
    assert result.images == ["img00.png", "img02.png"]
    assert [k for k, _ in result.failed] == ["img01.png"]


def test_unknown_spacing_reports_pixels(tmp_path):
    root, _ = write_dataset(tmp_path / "ds", n=2, spacing_mm=None)
    dataset = load_dataset(root)
    images = dataset.split("test")
    task = _stub_task(dataset, images, np.ones((2, 4)), np.zeros((2, 4)), batch_size=8)
    summary = summarize_result(predict_images(task, dataset, images, load_protocol("high")), 0.5, LANDMARKS)
    assert summary["error_unit"] == "px"
    assert summary["mre_mm"] is None and summary["sdr"]["2"] is None
    assert summary["mre_px"] < 0.1


@pytest.mark.parametrize("seed", range(5))
def test_sweep_false_negatives_never_decrease_with_the_threshold(seed):
    rng = np.random.default_rng(seed)
    peaks = rng.normal(0.5, 0.4, (7, 11))
    present = rng.random((7, 11)) > 0.2
    thresholds = np.sort(rng.uniform(-0.5, 1.5, 40))
    sweep = threshold_sweep(peaks, present, thresholds)
    fn, fp = np.array(sweep["false_negatives"]), np.array(sweep["false_positives"])
    assert (np.diff(fn) >= 0).all() and (np.diff(fp) <= 0).all()
    for t, thr in enumerate(thresholds):  # an element-wise count as the reference
        assert fn[t] == sum(p and v < thr for p, v in zip(present.ravel(), peaks.ravel(), strict=True))
        assert fp[t] == sum(not p and v >= thr for p, v in zip(present.ravel(), peaks.ravel(), strict=True))
    assert sweep["present"] == present.sum() and sweep["absent"] == (~present).sum()


def test_sweep_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        threshold_sweep(np.zeros((2, 3)), np.zeros((3, 2), bool))
