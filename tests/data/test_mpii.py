"""MPII: the common annotation JSON (real sample), HRNet's centre/scale convention, head boxes from .mat and JSON,
and the errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import savemat
from torch import nn
from torch.utils.data import DataLoader

from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.data.keypoint_crop import TopDownDataset
from landmark_afl.data.mpii import FLIP_PAIRS, JOINTS, MpiiFormatError, load_head_boxes, load_mpii
from tests.conftest import shared_path


@pytest.fixture
def sample():
    folder = shared_path("coco_mpii_samples", "mpii")
    return folder / "test_mpii.json", folder


def test_sample_follows_hrnet_conventions(sample):
    ann, images = sample
    raw = json.loads(ann.read_text())
    persons = load_mpii(ann, images)
    assert len(persons) == 5 and persons.keypoints.shape == (5, 16, 2)
    for i, e in enumerate(raw):
        # HRNet MPIIDataset._get_db: c[1] += 15 * s, then c -= 1 (1-based -> 0-based); the box is 200 s square
        side = 200 * e["scale"]
        center = np.array([e["center"][0] - 1, e["center"][1] + 15 * e["scale"] - 1])
        np.testing.assert_allclose(persons.boxes[i], [*(center - side / 2), side, side])
        vis = np.asarray(e["joints_vis"]) > 0
        np.testing.assert_array_equal(persons.visible[i], vis)
        np.testing.assert_allclose(persons.keypoints[i][vis], np.asarray(e["joints"])[vis] - 1)
        assert np.isnan(persons.keypoints[i][~vis]).all()
    assert persons.flip_pairs == FLIP_PAIRS and persons.keypoint_names[9] == "head_top"


def test_flip_pairs_are_left_right_names():
    for a, b in FLIP_PAIRS:
        assert JOINTS[a].replace("r_", "l_") == JOINTS[b]


def test_crop_round_trip_on_real_images(sample):
    """Crop at 256 x 256 (HRNet's 1.25 x scale x 200 box) -> targets -> decode -> image: the joints come back."""
    from landmark_afl.tasks.keypoints import KeypointTask

    ann, images = sample
    persons = load_mpii(ann, images)
    codec = GaussianHeatmapCodec((256, 256), sigma=2.0, stride=4)
    ds = TopDownDataset(persons, codec)
    np.testing.assert_allclose(ds.scale, np.stack([persons.boxes[:, 2]] * 2, -1) * 1.25)
    task = KeypointTask(nn.Identity(), codec, FLIP_PAIRS, scorer=None)
    batch = next(iter(DataLoader(ds, batch_size=5)))
    xy, _ = task.decode(batch["heatmaps"], batch)
    has_target = batch["target_weight"].numpy() > 0
    assert has_target.sum() >= 0.9 * persons.visible.sum()
    np.testing.assert_allclose(xy[has_target], persons.keypoints[has_target], atol=0.1)


def test_head_boxes_from_mat_and_json(tmp_path):
    rng = np.random.default_rng(0)
    n = 3
    boxes = rng.uniform(1, 100, (n, 2, 2))
    joints = rng.uniform(1, 500, (n, 16, 2))
    missing = rng.random((n, 16)) < 0.2
    mat = tmp_path / "gt_valid.mat"
    # the official layout: headboxes_src [2, 2, N], pos_gt_src [16, 2, N], jnt_missing [16, N], 1-based
    savemat(mat, {"headboxes_src": boxes.transpose(1, 2, 0), "pos_gt_src": joints.transpose(1, 2, 0),
                  "jnt_missing": missing.T.astype(np.uint8)})  # fmt: skip
    from_mat = load_head_boxes(mat)
    np.testing.assert_allclose(from_mat.boxes, boxes - 1)
    np.testing.assert_allclose(from_mat.joints, joints - 1)
    np.testing.assert_array_equal(from_mat.missing, missing)
    js = tmp_path / "heads.json"
    js.write_text(json.dumps({"headboxes_src": boxes.tolist()}))
    from_json = load_head_boxes(js)
    np.testing.assert_allclose(from_json.boxes, boxes - 1)
    assert from_json.joints is None and from_json.missing is None


# -- bad input ------------------------------------------------------------------------------------------------------
def test_file_without_head_boxes_is_named(tmp_path):
    js = tmp_path / "valid.json"
    js.write_text(json.dumps({"pos_gt_src": []}))
    with pytest.raises(MpiiFormatError, match=r"valid\.json has no 'headboxes_src'.*gt_valid\.mat"):
        load_head_boxes(js)
    mat = tmp_path / "other.mat"
    savemat(mat, {"pos_gt_src": np.zeros((16, 2, 1))})
    with pytest.raises(MpiiFormatError, match=r"other\.mat has no 'headboxes_src' \(fields: pos_gt_src\)"):
        load_head_boxes(mat)
    with pytest.raises(FileNotFoundError, match="gt_valid.mat"):
        load_head_boxes(tmp_path / "absent.mat")


def test_wrong_head_box_shape(tmp_path):
    js = tmp_path / "heads.json"
    js.write_text(json.dumps({"headboxes_src": [[1, 2, 3, 4]]}))
    with pytest.raises(MpiiFormatError, match=r"headboxes_src has shape \(1, 4\).*\[N, 2, 2\]"):
        load_head_boxes(js)


def test_bad_annotation_entries(tmp_path, sample):
    _, images = sample
    path = tmp_path / "train.json"
    path.write_text(json.dumps([{"image": "005808361.jpg", "center": [1, 2], "scale": 1.0, "joints": [[0, 0]] * 15}]))
    with pytest.raises(MpiiFormatError, match=r"train\.json: entry 0 .*\(15, 2\).*16 joints"):
        load_mpii(path, images)
    path.write_text(json.dumps([{"image": "005808361.jpg", "scale": 1.0}]))
    with pytest.raises(MpiiFormatError, match="entry 0 lacks center"):
        load_mpii(path, images)
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(MpiiFormatError, match="non-empty JSON list"):
        load_mpii(path, images)


def test_missing_images(tmp_path):
    (tmp_path / "images").mkdir()
    path = tmp_path / "valid.json"
    path.write_text(json.dumps([{"image": "gone.jpg", "center": [50, 50], "scale": 1.0}]))
    with pytest.raises(FileNotFoundError, match=r"gone\.jpg.*images="):
        load_mpii(path, tmp_path / "images")
