"""COCO keypoint evaluation: results JSON, rescoring, OKS-NMS and AP through pycocotools' COCOeval.

The post-processing is HRNet's ``COCODataset.evaluate`` (and mmpose's ``CocoMetric``): each person's score is the
mean confidence of its keypoints above ``keypoint_threshold`` (0.2) times its box score, then per image a greedy
OKS-NMS keeps persons whose OKS with every higher-scoring kept one is <= ``oks_threshold`` (0.9), the area of a
person being its crop area. Object keypoint similarity (cocodataset.org/#keypoints-eval), for persons a, b:

    OKS = mean_k exp(-d_k^2 / (2 * ((area_a + area_b) / 2) * (2 sigma_k)^2))

AP is pycocotools' ``COCOeval(iouType="keypoints")`` (``pip install pycocotools``, in the ``benchmarks`` extra).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: COCO's per-keypoint OKS sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
COCO_SIGMAS = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
    / 10.0
)
AP_KEYS = ("AP", "AP50", "AP75", "APM", "APL", "AR")


def rescore(keypoint_scores: np.ndarray, box_scores: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """Person scores [N]: mean of the keypoint scores [N, K] above ``threshold`` (0 when none) x box score [N]."""
    keypoint_scores = np.asarray(keypoint_scores, np.float64)
    above = keypoint_scores > threshold
    count = above.sum(-1)
    mean = np.where(count > 0, (keypoint_scores * above).sum(-1) / np.maximum(count, 1), 0.0)
    return mean * np.asarray(box_scores, np.float64)


def oks(
    reference: np.ndarray,
    others: np.ndarray,
    area_ref: float,
    areas: np.ndarray,
    sigmas: np.ndarray = COCO_SIGMAS,
) -> np.ndarray:
    """OKS [M] of one person's keypoints [K, 2] against M others [M, K, 2] (HRNet ``oks_iou``, no vis filter)."""
    variances = (2 * np.asarray(sigmas)) ** 2
    d2 = ((np.asarray(others) - np.asarray(reference)[None]) ** 2).sum(-1)  # [M, K]
    scale = (area_ref + np.asarray(areas, np.float64))[:, None] / 2 + np.spacing(1)
    return np.exp(-d2 / variances / scale / 2).mean(-1)


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    threshold: float = 0.9,
    sigmas: np.ndarray = COCO_SIGMAS,
) -> list[int]:
    """Greedy OKS non-maximum suppression of one image's persons (HRNet ``oks_nms``).

    Args:
        keypoints: [N, K, 2] in image pixels.
        scores: person scores [N].
        areas: person areas [N] (the crop area ``scale_w * scale_h``).
        threshold: a person is dropped when its OKS with a kept higher-scoring person is above it.

    Returns:
        Indices of the kept persons, highest score first.
    """
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must be [N, K, 2], got {keypoints.shape}")
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    areas = np.asarray(areas, np.float64)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        overlap = oks(keypoints[i], keypoints[rest], areas[i], areas[rest], sigmas)
        order = rest[overlap <= threshold]
    return keep


def keypoint_results(
    image_ids: Sequence[int],
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    box_scores: np.ndarray,
    areas: np.ndarray,
    keypoint_threshold: float = 0.2,
    oks_threshold: float = 0.9,
    category_id: int = 1,
    nms: bool = True,
) -> list[dict]:
    """Predictions of N persons -> the COCO results list, rescored and OKS-NMS'ed per image.

    Args:
        image_ids: COCO image id of each person [N].
        keypoints: [N, K, 2] in image pixels.
        keypoint_scores: [N, K] confidences (heatmap peaks).
        box_scores: [N] detector scores (1 for ground-truth boxes).
        areas: [N] crop areas used by OKS-NMS.
        keypoint_threshold: keypoints above it make the person's score.
        oks_threshold: OKS-NMS threshold.
        category_id: the person category.
        nms: apply OKS-NMS (HRNet does, also with ground-truth boxes).

    Returns:
        ``[{"image_id", "category_id", "keypoints": [x1, y1, s1, ...], "score"}, ...]``.
    """
    keypoints = np.asarray(keypoints, np.float64)
    keypoint_scores = np.asarray(keypoint_scores, np.float64)
    image_ids = np.asarray(image_ids)
    n = len(image_ids)
    if keypoints.shape[:1] != (n,) or keypoint_scores.shape != keypoints.shape[:2] or keypoints.shape[-1] != 2:
        raise ValueError(
            f"expected keypoints [N, K, 2] and keypoint_scores [N, K] for N={n} image ids, got "
            f"{keypoints.shape} and {keypoint_scores.shape}"
        )
    scores = rescore(keypoint_scores, box_scores, keypoint_threshold)
    results = []
    for image_id in dict.fromkeys(image_ids.tolist()):
        members = np.flatnonzero(image_ids == image_id)
        if nms:
            members = members[oks_nms(keypoints[members], scores[members], np.asarray(areas)[members], oks_threshold)]
        for i in members:
            triples = np.concatenate([keypoints[i], keypoint_scores[i, :, None]], -1)
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(category_id),
                    "keypoints": [round(float(v), 3) for v in triples.reshape(-1)],
                    "score": float(scores[i]),
                }
            )
    return results


def _pycocotools():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as err:
        raise ImportError(
            "COCO keypoint AP needs pycocotools: pip install pycocotools (or pip install 'landmark-afl[benchmarks]')"
        ) from err
    return COCO, COCOeval


def load_coco_gt(gt: str | Path | dict):
    """A pycocotools ``COCO`` object from a file or an already loaded dict (its prints captured)."""
    coco_cls, _ = _pycocotools()
    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(gt, dict):
            coco = coco_cls()
            coco.dataset = gt
            coco.createIndex()
        else:
            coco = coco_cls(str(gt))
    return coco


def coco_keypoint_ap(gt_json: str | Path | dict, results: list[dict] | str | Path, log: list | None = None) -> dict:
    """AP, AP50, AP75, APM, APL and AR of keypoint results against a ground-truth file (pycocotools COCOeval).

    Args:
        gt_json: the ground-truth annotation file (or its dict, or a pycocotools COCO object).
        results: the results list (``keypoint_results``) or a results JSON file.
        log: when a list, COCOeval's printed summary is appended to it (it is never printed).

    Returns:
        ``{"AP", "AP50", "AP75", "APM", "APL", "AR"}`` as fractions; all 0 when there are no results.
    """
    _, cocoeval_cls = _pycocotools()
    gt = gt_json if hasattr(gt_json, "loadRes") else load_coco_gt(gt_json)
    if isinstance(results, (str, Path)):
        results = json.loads(Path(results).read_text(encoding="utf-8"))
    if not results:
        return dict.fromkeys(AP_KEYS, 0.0)
    unknown = {r["image_id"] for r in results} - set(gt.getImgIds())
    if unknown:
        raise ValueError(
            f"{len(unknown)} result image_id(s) are not in the ground truth (e.g. {sorted(unknown)[:3]}); score the "
            "predictions against the annotation file of the same split"
        )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        dt = gt.loadRes([dict(r) for r in results])  # loadRes adds keys in place
        evaluator = cocoeval_cls(gt, dt, iouType="keypoints")
        evaluator.params.useSegm = None
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    if log is not None:
        log.append(buffer.getvalue())
    return {key: float(evaluator.stats[i]) for i, key in enumerate(AP_KEYS)}
