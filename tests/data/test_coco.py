"""COCO keypoints: loading the real sample (official and explicit layouts), detector boxes, the data path's AP
ceiling through pycocotools, and the errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.data.coco import CocoFormatError, flip_pairs_from_names, load_coco_persons, official_paths
from landmark_afl.data.keypoint_crop import TopDownDataset
from tests.conftest import shared_path

HRNET_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))


@pytest.fixture
def sample():
    folder = shared_path("coco_mpii_samples", "coco")
    return folder / "test_coco.json", folder


def test_ground_truth_persons_of_the_sample(sample):
    ann, images = sample
    raw = json.loads(ann.read_text())
    val = load_coco_persons(ann, images, training=False)
    train = load_coco_persons(ann, images, training=True)
    assert len(val) == 14  # no crowd, no zero-area box in the sample
    no_kps = sum(a["num_keypoints"] == 0 for a in raw["annotations"])
    assert len(train) == 14 - no_kps and train.skipped == {"no_keypoints": no_kps}
    assert val.flip_pairs == HRNET_FLIP_PAIRS
    first = raw["annotations"][0]
    kps = np.asarray(first["keypoints"], float).reshape(17, 3)
    np.testing.assert_allclose(val.keypoints[0][kps[:, 2] > 0], kps[kps[:, 2] > 0, :2])
    np.testing.assert_allclose(val.boxes[0], first["bbox"], atol=1e-6)  # inside the image: unchanged
    assert val.ids[0] == str(first["id"]) and val.image_ids[0] == first["image_id"]
    assert (
        val.visible == (np.stack([np.reshape(a["keypoints"], (17, 3))[:, 2] for a in raw["annotations"]]) > 0)
    ).all()


def test_flip_pairs_from_names_need_both_sides():
    assert flip_pairs_from_names(("nose", "left_eye", "right_eye", "left_tail")) == ((1, 2),)


def test_official_layout(sample, tmp_path):
    ann, images = sample
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    (root / "annotations" / "person_keypoints_val2017.json").write_text(ann.read_text())
    for jpg in images.glob("*.jpg"):
        (root / "val2017" / jpg.name).symlink_to(jpg)
    ann2, images2 = official_paths(root, "val")
    assert len(load_coco_persons(ann2, images2, training=False)) == 14
    with pytest.raises(ValueError, match="train, val|'train', 'val'"):
        official_paths(root, "test")


def test_detection_boxes_with_threshold(sample):
    ann, images = sample
    det_file = ann.parent / "test_coco_det_AP_H_56.json"
    dets = json.loads(det_file.read_text())
    persons = load_coco_persons(ann, images, training=False, person_boxes=det_file, box_score_threshold=0.5)
    expected = [d for d in dets if d["category_id"] == 1 and d["score"] >= 0.5]
    assert len(persons) == len(expected) > 0
    np.testing.assert_allclose(persons.box_scores, [d["score"] for d in expected])
    assert not persons.visible.any() and np.isnan(persons.keypoints).all()
    assert persons.skipped["below_score_threshold"] == len(dets) - len(expected)


def test_data_path_reaches_the_ap_ceiling(sample):
    """GT -> crop (real pixels read and warped) -> target heatmaps -> decode -> image -> pycocotools AP >= 0.95."""
    from landmark_afl.recipes.coco import CocoScorer
    from landmark_afl.tasks.keypoints import KeypointPredictions, KeypointTask

    ann, images = sample
    persons = load_coco_persons(ann, images, training=False)
    codec = GaussianHeatmapCodec((256, 192), sigma=2.0, stride=4)
    task = KeypointTask(nn.Identity(), codec, persons.flip_pairs, scorer=None)
    parts = {"xy": [], "peak": [], "index": [], "center": [], "scale": [], "box": []}
    for batch in DataLoader(TopDownDataset(persons, codec), batch_size=5):
        assert batch["image"].shape[1:] == (3, 256, 192) and batch["heatmaps"].shape[1:] == (17, 64, 48)
        xy, peak = task.decode(batch["heatmaps"], batch)
        values = (xy, peak, batch["index"], batch["center"], batch["scale"], batch["box_score"])
        for key, value in zip(parts, values, strict=True):
            parts[key].append(np.asarray(value))
    p = {k: np.concatenate(v) for k, v in parts.items()}
    preds = KeypointPredictions(p["index"], p["xy"], p["peak"], p["center"], p["scale"], p["box"], persons.image_ids)
    metrics = CocoScorer(ann)(preds, None)
    assert metrics["AP"] >= 0.95, metrics
    err = np.linalg.norm(p["xy"] - persons.keypoints, axis=-1)[persons.visible]
    assert np.median(err) < 0.05  # image pixels


def test_items_mask_unlabelled_keypoints(sample):
    ann, images = sample
    persons = load_coco_persons(ann, images, training=False)
    item = TopDownDataset(persons, GaussianHeatmapCodec((256, 192), sigma=2.0, stride=4))[3]
    assert item["target_weight"].tolist() == persons.visible[3].astype(float).tolist()
    assert torch.all(item["heatmaps"][~torch.from_numpy(persons.visible[3])] == 0)


# -- bad input ------------------------------------------------------------------------------------------------------
def _write(tmp_path, data, name="ann.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _tiny(tmp_path, boxes):
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    (images / "a.jpg").write_bytes(b"")
    anns = [
        {"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": box, "area": box[2] * box[3],
         "num_keypoints": 1, "keypoints": [20, 20, 2] + [0, 0, 0] * 16}
        for i, box in enumerate(boxes)
    ]  # fmt: skip
    cat = {"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)]}
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}], "annotations": anns}
    return _write(tmp_path, {**data, "categories": [cat]}), images


def test_json_without_keypoints_is_named(tmp_path):
    path = _write(
        tmp_path,
        {"images": [], "annotations": [{"id": 1, "bbox": [0, 0, 1, 1]}], "categories": [{"id": 1, "name": "person"}]},
        "instances_val2017.json",
    )
    with pytest.raises(CocoFormatError, match=r"instances_val2017\.json.*'keypoints'.*person_keypoints"):
        load_coco_persons(path, tmp_path, training=False)


def test_annotation_without_keypoints_field(tmp_path):
    path, images = _tiny(tmp_path, [[10, 10, 30, 40]])
    data = json.loads(path.read_text())
    del data["annotations"][0]["keypoints"]
    _write(tmp_path, data)
    with pytest.raises(CocoFormatError, match=r"ann\.json: annotation 1 has no 'keypoints'"):
        load_coco_persons(path, images, training=False)


def test_missing_images_are_listed(tmp_path):
    path, images = _tiny(tmp_path, [[10, 10, 30, 40]])
    (images / "a.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 image file\(s\).*a\.jpg.*images="):
        load_coco_persons(path, images, training=False)
    with pytest.raises(FileNotFoundError, match="image folder"):
        load_coco_persons(path, tmp_path / "nowhere", training=False)


def test_zero_area_boxes_are_skipped_and_counted(tmp_path):
    path, images = _tiny(tmp_path, [[10, 10, 30, 40], [10, 10, 0, 40], [120, 10, 5, 5]])  # zero width; outside
    persons = load_coco_persons(path, images, training=True)
    assert len(persons) == 1 and persons.skipped == {"zero_area_box": 2}


def test_only_zero_area_boxes_is_an_error(tmp_path):
    path, images = _tiny(tmp_path, [[10, 10, 0, 40]])
    with pytest.raises(CocoFormatError, match=r"ann\.json: no usable person instance \(1 zero_area_box\).*bbox"):
        load_coco_persons(path, images, training=True)


def test_bad_detection_file(tmp_path, sample):
    ann, images = sample
    bad = _write(tmp_path, {"annotations": []}, "dets.json")
    with pytest.raises(CocoFormatError, match=r"dets\.json is not in the COCO results format"):
        load_coco_persons(ann, images, training=False, person_boxes=bad)
    other = _write(tmp_path, [{"image_id": 5, "category_id": 1, "bbox": [0, 0, 9, 9], "score": 1.0}], "d2.json")
    with pytest.raises(CocoFormatError, match=r"d2\.json: no usable detection.*image_id"):
        load_coco_persons(ann, images, training=False, person_boxes=other)
