"""COCO keypoint metrics against independent references: hand-computed OKS/AP, pycocotools called directly, and a
hand example of OKS-NMS."""

from __future__ import annotations

import json

import numpy as np
import pytest

from landmark_afl.metrics.coco_keypoints import (
    AP_KEYS,
    COCO_SIGMAS,
    coco_keypoint_ap,
    keypoint_results,
    oks,
    oks_nms,
    rescore,
)
from tests.conftest import shared_path

pytest.importorskip("pycocotools")


def _one_person_gt(area: float = 10000.0) -> tuple[dict, np.ndarray]:
    xy = np.stack([np.linspace(100, 180, 17), np.linspace(50, 250, 17)], -1)
    kps = np.concatenate([xy, np.full((17, 1), 2.0)], -1).reshape(-1).tolist()
    ann = {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": area, "num_keypoints": 17,
           "bbox": [90, 40, 100, 220], "keypoints": kps}  # fmt: skip
    gt = {"images": [{"id": 7, "width": 400, "height": 300}], "annotations": [ann],
          "categories": [{"id": 1, "name": "person", "keypoints": [str(i) for i in range(17)]}]}  # fmt: skip
    return gt, xy


@pytest.mark.parametrize("shift", [0.0, 2.0, 5.0, 9.0])
def test_ap_of_a_known_offset_matches_the_hand_computation(shift):
    """One person, every keypoint moved by ``shift`` px: OKS by hand, AP = fraction of thresholds OKS reaches."""
    gt, xy = _one_person_gt(area=10000.0)
    pred = xy + [shift, 0.0]
    results = keypoint_results([7], pred[None], np.ones((1, 17)), np.ones(1), np.array([10000.0]))
    expected_oks = np.mean(np.exp(-(shift**2) / (2 * 10000.0 * (2 * COCO_SIGMAS) ** 2)))
    thresholds = np.linspace(0.5, 0.95, 10)
    ap = coco_keypoint_ap(gt, results)
    assert ap["AP"] == pytest.approx(np.mean(expected_oks >= thresholds))
    assert ap["AP50"] == pytest.approx(1.0 if expected_oks >= 0.5 else 0.0)
    assert ap["AP75"] == pytest.approx(1.0 if expected_oks >= 0.75 else 0.0)
    assert ap["APL"] == pytest.approx(ap["AP"]) and ap["APM"] == -1.0  # area 10000 > 96^2: a large person


def test_perturbed_sample_scores_exactly_pycocotools(tmp_path, capsys):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_file = shared_path("coco_mpii_samples", "coco", "test_coco.json")
    anns = json.loads(gt_file.read_text())["annotations"]
    rng = np.random.default_rng(0)
    kps = np.array([a["keypoints"] for a in anns], float).reshape(-1, 17, 3)
    offsets = rng.normal(0, 4.0, kps[..., :2].shape)  # known offsets in pixels
    scores = rng.uniform(0.3, 1.0, (len(anns), 17))
    areas = np.array([a["bbox"][2] * a["bbox"][3] for a in anns])
    results = keypoint_results([a["image_id"] for a in anns], kps[..., :2] + offsets, scores, np.ones(len(anns)), areas)
    ours = coco_keypoint_ap(gt_file, results)
    assert capsys.readouterr().out == ""  # COCOeval's prints are captured

    res_file = tmp_path / "res.json"
    res_file.write_text(json.dumps(results))
    coco = COCO(str(gt_file))
    ev = COCOeval(coco, coco.loadRes(str(res_file)), "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ours == {key: float(ev.stats[i]) for i, key in enumerate(AP_KEYS)}
    assert 0.2 < ours["AP"] < 0.95  # the perturbation matters, and is not fatal


def test_oks_matches_pycocotools_compute_oks():
    from pycocotools.cocoeval import COCOeval

    from landmark_afl.metrics.coco_keypoints import load_coco_gt

    gt, xy = _one_person_gt(area=5000.0)
    pred = xy + np.random.default_rng(1).normal(0, 3, xy.shape)
    coco = load_coco_gt(gt)
    results = keypoint_results([7], pred[None], np.ones((1, 17)), np.ones(1), np.array([5000.0]))
    ev = COCOeval(coco, coco.loadRes(results), "keypoints")
    ev.params.imgIds = [7]
    ev._prepare()
    reference = ev.computeOks(7, 1)[0, 0]
    written = np.reshape(results[0]["keypoints"], (17, 3))[:, :2]  # as written: rounded to 1e-3 px
    assert oks(xy, written[None], 5000.0, np.array([5000.0]))[0] == pytest.approx(reference, rel=1e-9)


def test_rescore_hand_example():
    kp = np.array([[0.1, 0.5, 0.9], [0.1, 0.2, 0.15]])
    np.testing.assert_allclose(rescore(kp, np.array([0.5, 0.8]), threshold=0.2), [0.35, 0.0])


def test_oks_nms_hand_example():
    base = np.stack([np.linspace(0, 160, 17), np.linspace(0, 300, 17)], -1)
    persons = np.stack([base, base + [1.0, 0.0], base + [40.0, 0.0]])  # A, B (A moved 1 px), C (40 px away)
    areas = np.full(3, 10000.0)
    # OKS(A, B) = mean exp(-1 / (2 * 10000 * (2 sigma)^2)) > 0.9; OKS(B, C) is far below
    assert oks(persons[1], persons[[0]], 10000.0, areas[:1])[0] > 0.99
    assert oks(persons[1], persons[[2]], 10000.0, areas[:1])[0] < 0.5
    assert oks_nms(persons, np.array([0.9, 0.95, 0.7]), areas, threshold=0.9) == [1, 2]
    assert oks_nms(persons, np.array([0.9, 0.95, 0.7]), areas, threshold=0.999) == [1, 0, 2]


def test_results_format_and_nms_per_image():
    xy = np.zeros((3, 17, 2)) + np.arange(17)[None, :, None] * 10
    res = keypoint_results([1, 1, 2], xy, np.full((3, 17), 0.5), np.array([1.0, 0.5, 1.0]), np.full(3, 1000.0))
    # persons 0 and 1 coincide in image 1: NMS keeps the higher score; image 2 keeps its only person
    assert [(r["image_id"], r["score"]) for r in res] == [(1, 0.5), (2, 0.5)]
    assert len(res[0]["keypoints"]) == 51 and res[0]["keypoints"][2] == 0.5 and res[0]["category_id"] == 1


def test_bad_input():
    gt, xy = _one_person_gt()
    with pytest.raises(ValueError, match=r"image_id\(s\) are not in the ground truth"):
        coco_keypoint_ap(gt, keypoint_results([99], xy[None], np.ones((1, 17)), np.ones(1), np.ones(1)))
    with pytest.raises(ValueError, match=r"keypoints \[N, K, 2\]"):
        keypoint_results([1, 2], xy[None], np.ones((1, 17)), np.ones(1), np.ones(1))
    assert coco_keypoint_ap(gt, []) == dict.fromkeys(AP_KEYS, 0.0)
