"""PCKh against a hand computation, the ground truth (100), and a port of HRNet's official evaluation code."""

from __future__ import annotations

import numpy as np
import pytest

from landmark_afl.metrics.pckh import mpii_pckh, normalized_errors

GROUPS = ("head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")


def hrnet_reference(pred, gt, missing, head_boxes, threshold=0.5):
    """HRNet MPIIDataset.evaluate on person-last arrays (pos_gt_src [16, 2, N], headboxes_src [2, 2, N])."""
    pos_pred, pos_gt = np.transpose(pred, [1, 2, 0]), np.transpose(gt, [1, 2, 0])
    headboxes = np.transpose(head_boxes, [1, 2, 0])
    jnt_visible = 1 - np.transpose(missing, [1, 0]).astype(int)
    uv_err = np.linalg.norm(pos_pred - pos_gt, axis=1)
    headsizes = np.linalg.norm(headboxes[1] - headboxes[0], axis=0) * 0.6
    scaled = np.multiply(uv_err / np.multiply(headsizes, np.ones((len(uv_err), 1))), jnt_visible)
    count = np.sum(jnt_visible, axis=1)

    def pck(thr):
        return 100.0 * np.sum((scaled <= thr) * jnt_visible, axis=1) / count

    p = np.ma.array(pck(threshold), mask=False)
    p.mask[6:8] = True
    c = np.ma.array(count, mask=False)
    c.mask[6:8] = True
    ratio = c / np.sum(c).astype(np.float64)
    table = {"head": p[9], "shoulder": 0.5 * (p[12] + p[13]), "elbow": 0.5 * (p[11] + p[14]),
             "wrist": 0.5 * (p[10] + p[15]), "hip": 0.5 * (p[2] + p[3]), "knee": 0.5 * (p[1] + p[4]),
             "ankle": 0.5 * (p[0] + p[5]), "mean": np.sum(p * ratio), "mean@0.1": np.sum(pck(0.1) * ratio)}  # fmt: skip
    return {k: float(v) for k, v in table.items()}


def _gt(n=4, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0, 400, (n, 16, 2))
    # head boxes 30 x 40 px: diagonal 50, head size 0.6 * 50 = 30 px; PCKh@0.5 tolerates 15 px, @0.1 3 px
    corner = rng.uniform(0, 300, (n, 2))
    boxes = np.stack([corner, corner + [30.0, 40.0]], 1)
    return gt, boxes


def test_ground_truth_scores_100():
    gt, boxes = _gt()
    missing = np.zeros((4, 16), bool)
    missing[0, 3] = missing[2, 9] = True
    table = mpii_pckh(gt, gt, missing, boxes)
    assert table == dict.fromkeys((*GROUPS, "mean", "mean@0.1"), 100.0)


def test_known_perturbation_matches_the_hand_computation():
    gt, boxes = _gt(n=2)
    pred = gt.copy()
    missing = np.zeros((2, 16), bool)
    pred[0, 9, 0] += 15.0  # head top exactly at the 15 px tolerance: correct (<=)
    pred[1, 9, 1] += 15.5  # just beyond: wrong
    pred[0, 0] += [9.0, 12.0]  # r_ankle 15 px: correct at 0.5, wrong at 0.1
    pred[1, 5] += [16.0, 0.0]  # l_ankle wrong
    pred[0, 10] += [2.0, 2.0]  # r_wrist 2.83 px: correct at 0.1 too
    pred[1, 10] += 100.0  # r_wrist far off ...
    missing[1, 10] = True  # ... but missing: excluded
    pred[0, 6] += 100.0  # pelvis wrong: not part of the mean or of any group
    table = mpii_pckh(pred, gt, missing, boxes)
    assert table["head"] == 50.0
    assert table["ankle"] == pytest.approx(0.5 * (100.0 + 50.0))  # r_ankle 2/2, l_ankle 1/2
    assert table["wrist"] == 100.0  # r_wrist 1/1 (the missing one left out), l_wrist 2/2
    assert table["shoulder"] == table["elbow"] == table["hip"] == table["knee"] == 100.0
    # mean over 14 joints x 2 persons - 1 missing = 27 joints; wrong: head top (p1), l_ankle (p1)
    assert table["mean"] == pytest.approx(100.0 * 25 / 27)
    # at 0.1 (3 px) also wrong: head top (p0, 15 px) and r_ankle (p0, 15 px); the 2.83 px wrist stays right
    assert table["mean@0.1"] == pytest.approx(100.0 * 23 / 27)


def test_matches_hrnet_evaluation_on_random_predictions():
    rng = np.random.default_rng(3)
    gt, boxes = _gt(n=50, seed=3)
    pred = gt + rng.normal(0, 10.0, gt.shape)
    missing = rng.random((50, 16)) < 0.15
    ours = mpii_pckh(pred, gt, missing, boxes)
    reference = hrnet_reference(pred, gt, missing, boxes)
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, rel=1e-12), key


def test_shapes_and_empty_head_boxes_are_rejected():
    gt, boxes = _gt(n=2)
    with pytest.raises(ValueError, match=r"head_boxes \[N, 2, 2\]"):
        normalized_errors(gt, gt, np.zeros((2, 16), bool), boxes[:1])
    boxes[1, 1] = boxes[1, 0]
    with pytest.raises(ValueError, match="person 1 has an empty head box"):
        normalized_errors(gt, gt, np.zeros((2, 16), bool), boxes)
