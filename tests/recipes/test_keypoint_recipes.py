"""The COCO and MPII recipes end to end on the real samples (one tiny epoch on the CPU through the generic trainer),
the task's loss and flip test against references, the data-path ceiling, and the errors for bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from landmark_afl.afl import AFLConfig
from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.engine.config import format_config_docs
from landmark_afl.engine.optim import OptimConfig
from landmark_afl.recipes import coco, mpii
from landmark_afl.recipes.train import train_recipe
from landmark_afl.tasks.keypoints import KeypointTask, joints_mse
from tests.conftest import shared_path

TINY = {"input_size": (64, 64), "encoder": "resnet18", "batch_size": 2, "device": "cpu"}


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def coco_cfg():
    folder = shared_path("coco_mpii_samples", "coco")
    ann = str(folder / "test_coco.json")
    return coco.CocoConfig(
        train_annotations=ann, train_images=str(folder), val_annotations=ann, val_images=str(folder),
        optim=OptimConfig(epochs=1, log_every=100), **TINY,
    )  # fmt: skip


@pytest.fixture
def mpii_cfg(tmp_path):
    folder = shared_path("coco_mpii_samples", "mpii")
    entries = json.loads((folder / "test_mpii.json").read_text())
    head = tmp_path / "heads.json"  # synthetic head boxes: 40 x 50 px around each head top (1-based, as the .mat)
    tops = np.array([e["joints"][9] for e in entries])
    head.write_text(json.dumps({"headboxes_src": np.stack([tops - [20, 10], tops + [20, 40]], 1).tolist()}))
    return mpii.MpiiConfig(
        train_annotations=str(folder / "test_mpii.json"), val_annotations=str(folder / "test_mpii.json"),
        images=str(folder), head_boxes=str(head), optim=OptimConfig(epochs=1, log_every=100), **TINY,
    )  # fmt: skip


def test_coco_trains_one_epoch_with_afl(coco_cfg, tmp_path):
    from landmark_afl.metrics.coco_keypoints import load_coco_gt

    run = tmp_path / "run"
    best = train_recipe(coco.RECIPE, coco_cfg, run)
    row = _rows(run / "metrics.csv")[0]
    for key in ("val_AP", "val_AP50", "val_AP75", "val_APM", "val_APL", "val_AR", "train_score_mean"):
        assert key in row and np.isfinite(float(row[key])), key
    results = json.loads((run / "val_keypoints.json").read_text())
    assert results and {"image_id", "category_id", "keypoints", "score"} <= set(results[0])
    load_coco_gt(coco_cfg.val_annotations).loadRes(results)  # valid COCO results for that ground truth
    records = _rows(run / "difficulty.csv")
    assert len(records) == 12 and {"score", "base_loss"} <= set(records[0])  # 12 persons with keypoints
    again = coco.RECIPE.evaluate(run, "val")
    assert again["AP"] == pytest.approx(best["val_AP"]) and again["AR"] == pytest.approx(best["val_AR"])


def test_mpii_trains_one_epoch_baseline(mpii_cfg, tmp_path):
    run = tmp_path / "run"
    best = train_recipe(mpii.RECIPE, dataclasses.replace(mpii_cfg, afl=AFLConfig(enabled=False)), run)
    row = _rows(run / "metrics.csv")[0]
    keys = ["val_PCKh", "val_PCKh@0.1", *(f"val_PCKh_{g}" for g in mpii.GROUP_KEYS)]
    assert all(k in row for k in keys) and 0 <= float(row["val_PCKh"]) <= 100
    preds = json.loads((run / "val_predictions.json").read_text())
    assert [p["image"] for p in preds] == [e["image"] for e in json.loads(open(mpii_cfg.val_annotations).read())]
    assert np.asarray(preds[0]["joints"]).shape == (16, 2)
    assert best["val_PCKh"] == pytest.approx(mpii.RECIPE.evaluate(run, "val")["PCKh"])


def test_coco_check_prints_the_ceiling(coco_cfg):
    text = coco.RECIPE.check(None, dataclasses.replace(coco_cfg, input_size=(256, 192)))
    codec_line = next(line for line in text.splitlines() if "codec decode" in line)
    assert float(re.search(r"AP ([\d.]+)", codec_line).group(1)) >= 0.95
    assert "14 persons" in text and "256x192" in text


def test_every_config_key_is_documented():
    for cfg in (coco.CocoConfig(), mpii.MpiiConfig()):
        assert "(undocumented)" not in format_config_docs(cfg)


# -- the task --------------------------------------------------------------------------------------------------------
def test_joints_mse_equals_simplebaseline_loss():
    """The batch mean of the per-sample loss is SimpleBaseline's JointsMSELoss (use_target_weight=True)."""
    rng = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 5, 8, 6, generator=rng), torch.rand(3, 5, 8, 6, generator=rng)
    weight = (torch.rand(3, 5, generator=rng) > 0.3).float()
    reference = 0.0
    for k in range(5):  # HRNet lib/core/loss.py, a loop over joints of MSELoss(reduction="mean")
        p, t = pred[:, k].reshape(3, -1), target[:, k].reshape(3, -1)
        reference += 0.5 * torch.nn.functional.mse_loss(p * weight[:, k : k + 1], t * weight[:, k : k + 1])
    assert joints_mse(pred, target, weight).mean() == pytest.approx(float(reference / 5), rel=1e-6)
    with pytest.raises(ValueError, match=r"\[B, K, H, W\].*\(3, 5\)"):
        joints_mse(pred, target[:, :4], weight)


def test_flip_test_is_flip_equivariant_and_needs_no_shift():
    codec = GaussianHeatmapCodec((64, 48), sigma=2.0, stride=4)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.AvgPool2d(4))
    task = KeypointTask(model, codec, ((0, 2),), scorer=None).eval()
    x = torch.randn(2, 3, 64, 48)
    flipped = task.heatmaps(x.flip(-1))
    assert torch.allclose(flipped, task.heatmaps(x).flip(-1)[:, [2, 1, 0]], atol=1e-6)
    # on the codec's pixel-centre grid, mirroring a heatmap is mirroring the input point: x -> W_in - 1 - x
    pts = torch.tensor([[[10.3, 20.7], [30.0, 41.2]]])
    xy, _ = codec.decode(codec.encode(pts).flip(-1))
    assert torch.allclose(xy, torch.stack([47 - pts[..., 0], pts[..., 1]], -1), atol=1e-3)


# -- bad input -------------------------------------------------------------------------------------------------------
def test_coco_without_data_names_the_layout():
    with pytest.raises(ValueError, match=r"data=ROOT.*person_keypoints_train2017\.json.*train_annotations=FILE"):
        coco.build(coco.CocoConfig())


def test_mpii_without_head_boxes_is_refused(mpii_cfg):
    with pytest.raises(ValueError, match=r"PCKh is refused: no head boxes for .*test_mpii\.json.*head_boxes=FILE"):
        mpii.build(dataclasses.replace(mpii_cfg, head_boxes=None))


def test_mpii_head_boxes_of_another_file(mpii_cfg, tmp_path):
    other = tmp_path / "three.json"
    other.write_text(json.dumps({"headboxes_src": [[[0, 0], [10, 10]]] * 3}))
    with pytest.raises(ValueError, match=r"3 head boxes, the validation file has 5 persons"):
        mpii.build(dataclasses.replace(mpii_cfg, head_boxes=str(other)))


def test_input_size_must_suit_the_fpn(coco_cfg):
    with pytest.raises(ValueError, match=r"divisible by 32"):
        coco.build(dataclasses.replace(coco_cfg, input_size=(64, 48)))


def test_batch_larger_than_the_data(mpii_cfg):
    with pytest.raises(ValueError, match=r"5 training persons is fewer than batch_size=8"):
        mpii.build(dataclasses.replace(mpii_cfg, batch_size=8))


def test_resume_checks_keypoints_and_input_size(mpii_cfg, tmp_path):
    from landmark_afl.engine.checkpoint import CheckpointError

    run = tmp_path / "run"
    train_recipe(mpii.RECIPE, mpii_cfg, run)
    with pytest.raises(CheckpointError, match=r"trained with codec .*64, 64.*resume with the same data and input_size"):
        train_recipe(mpii.RECIPE, dataclasses.replace(mpii_cfg, input_size=(96, 96)), run, resume=True)
    longer = dataclasses.replace(mpii_cfg, optim=dataclasses.replace(mpii_cfg.optim, epochs=2))
    train_recipe(mpii.RECIPE, longer, run, resume=True)
    assert [r["epoch"] for r in _rows(run / "metrics.csv")] == ["1", "2"]
