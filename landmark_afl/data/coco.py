"""COCO person keypoints: the official layout, ground-truth persons and detector boxes, as ``KeypointInstances``.

Layout (as published at cocodataset.org)::

    ROOT/annotations/person_keypoints_train2017.json
    ROOT/annotations/person_keypoints_val2017.json
    ROOT/train2017/*.jpg
    ROOT/val2017/*.jpg

or any annotation file with its image folder given explicitly (``annotations=FILE images=DIR``). The keypoint
names and the left/right flip pairs come from the file's person category (``left_x`` <-> ``right_x``).

Ground-truth persons (HRNet ``_load_coco_keypoint_annotations``, mmpose ``parse_data_info``): crowd annotations are
left out; the box is clipped to the image; a box with zero area after clipping is skipped and counted in
``skipped["zero_area_box"]`` (COCO train2017 has a few); for training, persons without a labelled keypoint
(``num_keypoints == 0``) are skipped and counted too. Detector boxes (``person_boxes=FILE``, the COCO results format
of e.g. ``COCO_val2017_detections_AP_H_56_person.json``) keep category 1 with a score at or above the threshold.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from landmark_afl.data.keypoint_crop import KeypointInstances

SPLITS = ("train", "val")


class CocoFormatError(ValueError):
    """A COCO annotation or results file is not what the loader needs; the message names the file and the fix."""


def official_paths(root: str | Path, split: str) -> tuple[Path, Path]:
    """(annotation file, image folder) of ``split`` in the official layout under ``root``."""
    if split not in SPLITS:
        raise ValueError(f"COCO split must be one of {SPLITS}, got {split!r}")
    root = Path(root).expanduser()
    return root / "annotations" / f"person_keypoints_{split}2017.json", root / f"{split}2017"


def read_json(path: str | Path, what: str):
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; give the path of the file or the data folder")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CocoFormatError(f"{what} {path} is not valid JSON ({err}); is the download complete?") from err


def person_category(data: dict, path: Path) -> tuple[int, tuple[str, ...]]:
    """The person category id and its keypoint names; a clear error when the file has no keypoints."""
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or key not in data:
            raise CocoFormatError(
                f"{path} has no {key!r} list: not a COCO annotation file; give person_keypoints_*.json"
            )
    cats = [c for c in data["categories"] if c.get("keypoints")]
    if not cats:
        raise CocoFormatError(
            f"{path}: no category carries a 'keypoints' list (categories: "
            f"{', '.join(str(c.get('name')) for c in data['categories'][:5])}): this looks like a detection file "
            "(instances_*.json); give the keypoint annotations person_keypoints_*.json"
        )
    persons = [c for c in cats if c.get("name") == "person"] or cats
    return int(persons[0]["id"]), tuple(persons[0]["keypoints"])


def flip_pairs_from_names(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Left/right pairs from keypoint names (``left_eye`` <-> ``right_eye``); for COCO (1,2), (3,4) ... (15,16)."""
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        if name.startswith("left_") and f"right_{name[5:]}" in index:
            pairs.append((i, index[f"right_{name[5:]}"]))
    return tuple(pairs)


def _clean_box(bbox, width: float, height: float) -> tuple[float, float, float, float] | None:
    """Box clipped to the image as mmpose does; None when nothing of positive area is left."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = np.clip(x, 0, width - 1), np.clip(y, 0, height - 1)
    x2, y2 = np.clip(x + w, 0, width - 1), np.clip(y + h, 0, height - 1)
    if not (x2 > x1 and y2 > y1):
        return None
    return float(x1), float(y1), float(x2 - x1), float(y2 - y1)


def load_coco_persons(
    annotations: str | Path,
    images: str | Path,
    training: bool,
    person_boxes: str | Path | None = None,
    box_score_threshold: float = 0.0,
) -> KeypointInstances:
    """Persons of a COCO keypoint file: ground-truth boxes, or a detector's boxes for validation.

    Args:
        annotations: a ``person_keypoints_*.json`` file.
        images: the folder of its images.
        training: skip persons without labelled keypoints (they give no target).
        person_boxes: a COCO results file of person detections to crop instead of the ground-truth boxes.
        box_score_threshold: detections scoring below it are left out.

    Raises:
        CocoFormatError: the file has no keypoints, malformed boxes, or no usable person.
        FileNotFoundError: the file or one of its images is missing.
    """
    path, images = Path(annotations).expanduser(), Path(images).expanduser()
    data = read_json(path, "COCO annotation file")
    cat_id, names = person_category(data, path)
    if not images.is_dir():
        raise FileNotFoundError(f"image folder {images} (for {path.name}) does not exist; give images=DIR")
    by_id = {int(im["id"]): im for im in data["images"]}
    if person_boxes is not None:
        instances = _detections(Path(person_boxes).expanduser(), by_id, images, names, box_score_threshold)
        source = f"{person_boxes} (images of {path})"
    else:
        instances = _ground_truth(data, path, cat_id, by_id, images, names, training)
        source = str(path)
    instances.check_images(source)
    return instances


def _ground_truth(data, path, cat_id, by_id, images, names, training) -> KeypointInstances:
    k = len(names)
    skipped: Counter = Counter()
    rows = []
    for ann in data["annotations"]:
        if int(ann.get("category_id", cat_id)) != cat_id:
            continue
        if ann.get("iscrowd", 0):
            skipped["crowd"] += 1
            continue
        kps = ann.get("keypoints")
        if kps is None or len(kps) != 3 * k:
            raise CocoFormatError(
                f"{path}: annotation {ann.get('id')} has {'no' if kps is None else len(kps)} 'keypoints' values, "
                f"expected 3 x {k} (x, y, v per keypoint); give a person_keypoints_*.json file"
            )
        image = by_id.get(int(ann["image_id"]))
        if image is None:
            raise CocoFormatError(
                f"{path}: annotation {ann.get('id')} names image_id {ann['image_id']} not in 'images'"
            )
        bbox = ann.get("bbox")
        if bbox is None or len(bbox) != 4:
            raise CocoFormatError(f"{path}: annotation {ann.get('id')} 'bbox' is {bbox!r}, expected [x, y, w, h]")
        box = _clean_box(bbox, image["width"], image["height"])
        if box is None or float(ann.get("area", 1.0)) <= 0:
            skipped["zero_area_box"] += 1
            continue
        kps = np.asarray(kps, np.float64).reshape(k, 3)
        if training and not (kps[:, 2] > 0).any():
            skipped["no_keypoints"] += 1
            continue
        rows.append((image, ann, box, kps))
    if not rows:
        why = ", ".join(f"{n} {reason}" for reason, n in skipped.items()) or "no person annotations"
        raise CocoFormatError(
            f"{path}: no usable person instance ({why}); boxes need a positive width and height inside the image "
            "(bbox = [x, y, w, h]) and, for training, at least one keypoint with v > 0"
        )
    kps = np.stack([r[3] for r in rows])
    visible = kps[..., 2] > 0
    return KeypointInstances(
        image_paths=[images / r[0]["file_name"] for r in rows],
        image_ids=[int(r[0]["id"]) for r in rows],
        ids=[str(r[1].get("id", i)) for i, r in enumerate(rows)],
        boxes=np.array([r[2] for r in rows], np.float64),
        keypoints=np.where(visible[..., None], kps[..., :2], np.nan),
        visible=visible,
        box_scores=np.ones(len(rows)),
        keypoint_names=names,
        flip_pairs=flip_pairs_from_names(names),
        skipped=dict(skipped),
    )


def _detections(path: Path, by_id: dict, images: Path, names, threshold: float) -> KeypointInstances:
    dets = read_json(path, "person_boxes file")
    if not isinstance(dets, list) or (dets and not all(isinstance(d, dict) and "bbox" in d for d in dets)):
        raise CocoFormatError(
            f"person_boxes file {path} is not in the COCO results format (a list of "
            "{'image_id', 'category_id', 'bbox': [x, y, w, h], 'score'}); give a detection results file"
        )
    skipped: Counter = Counter()
    rows = []
    for i, det in enumerate(dets):
        if int(det.get("category_id", 1)) != 1:
            skipped["not_person"] += 1
            continue
        if float(det.get("score", 1.0)) < threshold:
            skipped["below_score_threshold"] += 1
            continue
        image = by_id.get(int(det["image_id"]))
        if image is None:
            skipped["image_not_in_annotations"] += 1
            continue
        box = _clean_box(det["bbox"], image["width"], image["height"])
        if box is None:
            skipped["zero_area_box"] += 1
            continue
        rows.append((image, box, float(det.get("score", 1.0)), i))
    if not rows:
        raise CocoFormatError(
            f"person_boxes file {path}: no usable detection ({dict(skipped) or 'the list is empty'}); check that its "
            f"image_id values match the annotation file and lower box_score_threshold (now {threshold})"
        )
    k = len(names)
    return KeypointInstances(
        image_paths=[images / r[0]["file_name"] for r in rows],
        image_ids=[int(r[0]["id"]) for r in rows],
        ids=[f"det{r[3]}" for r in rows],
        boxes=np.array([r[1] for r in rows], np.float64),
        keypoints=np.full((len(rows), k, 2), np.nan),
        visible=np.zeros((len(rows), k), bool),
        box_scores=np.array([r[2] for r in rows]),
        keypoint_names=names,
        flip_pairs=flip_pairs_from_names(names),
        skipped=dict(skipped),
    )
