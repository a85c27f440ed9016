"""MPII Human Pose: the common annotation JSON (HRNet / mmpose) and the validation ground truth with head boxes.

Annotation file: a list of ``{"image": NAME, "center": [x, y], "scale": s, "joints": [[x, y] x 16],
"joints_vis": [16 x 0/1]}`` in MATLAB's 1-based pixel coordinates (HRNet ``annot/{train,valid}.json``, mmpose
``annotations/mpii_{train,val}.json``). ``scale`` is the person height / 200 px. As in HRNet and mmpose, the centre
moves down by ``15 * scale`` px (so the crop does not cut the legs), everything is shifted to 0-based pixels, and
the person box is the ``200 * scale`` px square around that centre (enlarged 1.25x and fitted to the input's aspect
ratio by the crop). A joint with ``joints_vis == 0`` has no target.

Head boxes (for PCKh): the official ``gt_valid.mat`` (``headboxes_src`` [2, 2, N], ``pos_gt_src`` [16, 2, N],
``jnt_missing`` [16, N], 1-based, in the order of the validation annotation file), read with scipy; or a JSON with
the same fields person-first: ``{"headboxes_src": [N][2][2] ((x1, y1), (x2, y2)), "pos_gt_src": [N][16][2],
"jnt_missing": [N][16]}`` (the last two optional: the annotation file's joints are used when absent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmark_afl.data.keypoint_crop import KeypointInstances

#: MPII's joint order (the official ``dataset_joints``).
JOINTS = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)  # fmt: skip
FLIP_PAIRS = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))
PIXEL_STD = 200.0


class MpiiFormatError(ValueError):
    """An MPII annotation or head-box file is not what the loader needs; the message names the file and the fix."""


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"MPII {what} {path} does not exist; give the file or the data folder")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise MpiiFormatError(f"MPII {what} {path} is not valid JSON ({err})") from err


def load_mpii(annotations: str | Path, images: str | Path) -> KeypointInstances:
    """Persons of an MPII annotation JSON, in 0-based pixels; entries without joints (the test set) get none.

    Raises:
        MpiiFormatError: an entry lacks image/center/scale or has the wrong number of joints.
        FileNotFoundError: the file, the image folder or one of its images is missing.
    """
    path, images = Path(annotations).expanduser(), Path(images).expanduser()
    entries = _read_json(path, "annotation file")
    if not isinstance(entries, list) or not entries:
        raise MpiiFormatError(
            f"{path} must be a non-empty JSON list of {{image, center, scale, joints, joints_vis}} (HRNet's "
            "annot/valid.json format)"
        )
    if not images.is_dir():
        raise FileNotFoundError(f"MPII image folder {images} (for {path.name}) does not exist; give images=DIR")
    k = len(JOINTS)
    n = len(entries)
    centers, scales = np.zeros((n, 2)), np.zeros(n)
    keypoints, visible = np.full((n, k, 2), np.nan), np.zeros((n, k), bool)
    for i, e in enumerate(entries):
        missing = [f for f in ("image", "center", "scale") if f not in e]
        if missing:
            raise MpiiFormatError(
                f"{path}: entry {i} lacks {', '.join(missing)}; each entry needs image, center, scale"
            )
        centers[i], scales[i] = e["center"], e["scale"]
        if "joints" in e:
            joints = np.asarray(e["joints"], np.float64)
            vis = np.asarray(e.get("joints_vis", np.ones(k)), np.float64) > 0
            if joints.shape != (k, 2) or vis.shape != (k,):
                raise MpiiFormatError(
                    f"{path}: entry {i} ({e['image']}) has joints {joints.shape} and joints_vis {vis.shape}, "
                    f"expected ({k}, 2) and ({k},): MPII has 16 joints"
                )
            visible[i] = vis
            keypoints[i] = np.where(vis[:, None], joints - 1.0, np.nan)
    if (scales <= 0).any():
        bad = int(np.flatnonzero(scales <= 0)[0])
        raise MpiiFormatError(f"{path}: entry {bad} has scale {scales[bad]}; scale is the person height / 200 (> 0)")
    centers[:, 1] += 15.0 * scales  # HRNet / mmpose: move the centre down so the crop keeps the feet
    centers -= 1.0  # 1-based (MATLAB) -> 0-based pixels
    side = scales * PIXEL_STD
    boxes = np.stack([centers[:, 0] - side / 2, centers[:, 1] - side / 2, side, side], -1)
    instances = KeypointInstances(
        image_paths=[images / e["image"] for e in entries],
        image_ids=[str(e["image"]) for e in entries],
        ids=[f"{e['image']}#{i}" for i, e in enumerate(entries)],
        boxes=boxes,
        keypoints=keypoints,
        visible=visible,
        box_scores=np.ones(n),
        keypoint_names=JOINTS,
        flip_pairs=FLIP_PAIRS,
    )
    instances.check_images(str(path))
    return instances


@dataclass
class HeadBoxes:
    """Validation ground truth for PCKh, in 0-based pixels (N persons, in the annotation file's order).

    Attributes:
        boxes: head boxes [N, 2, 2] ``((x1, y1), (x2, y2))``.
        joints: ground-truth joints [N, 16, 2], or None to use the annotation file's.
        missing: [N, 16] bool, True for joints to leave out, or None to use the annotation file's joints_vis.
        source: where they were read from.
    """

    boxes: np.ndarray
    joints: np.ndarray | None
    missing: np.ndarray | None
    source: str


def load_head_boxes(path: str | Path) -> HeadBoxes:
    """Read ``gt_valid.mat`` (scipy) or the equivalent JSON (module docstring); coordinates made 0-based."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".mat":
        if not path.is_file():
            raise FileNotFoundError(f"MPII head-box file {path} does not exist; give the official gt_valid.mat")
        from scipy.io import loadmat

        mat = loadmat(str(path))
        if "headboxes_src" not in mat:
            raise MpiiFormatError(
                f"{path} has no 'headboxes_src' (fields: {', '.join(k for k in mat if not k.startswith('__'))}); "
                "give MPII's gt_valid.mat, which holds headboxes_src, pos_gt_src and jnt_missing"
            )
        boxes = np.transpose(mat["headboxes_src"], (2, 0, 1))
        joints = np.transpose(mat["pos_gt_src"], (2, 0, 1)) if "pos_gt_src" in mat else None
        missing = np.transpose(mat["jnt_missing"], (1, 0)) if "jnt_missing" in mat else None
    else:
        data = _read_json(path, "head-box file")
        if not isinstance(data, dict) or "headboxes_src" not in data:
            raise MpiiFormatError(
                f"{path} has no 'headboxes_src': PCKh needs each person's head box; give gt_valid.mat or a JSON "
                '{"headboxes_src": [N][2][2], "pos_gt_src": [N][16][2], "jnt_missing": [N][16]}'
            )
        boxes = np.asarray(data["headboxes_src"], np.float64)
        joints = np.asarray(data["pos_gt_src"], np.float64) if "pos_gt_src" in data else None
        missing = np.asarray(data["jnt_missing"]) if "jnt_missing" in data else None
    boxes = np.asarray(boxes, np.float64)
    n = len(boxes)
    if boxes.shape != (n, 2, 2):
        raise MpiiFormatError(f"{path}: headboxes_src has shape {boxes.shape} per person-first, expected [N, 2, 2]")
    if joints is not None and joints.shape != (n, len(JOINTS), 2):
        raise MpiiFormatError(f"{path}: pos_gt_src has shape {joints.shape}, expected [{n}, 16, 2] person-first")
    if missing is not None and missing.shape != (n, len(JOINTS)):
        raise MpiiFormatError(f"{path}: jnt_missing has shape {missing.shape}, expected [{n}, 16] person-first")
    return HeadBoxes(
        boxes=boxes - 1.0,
        joints=None if joints is None else np.asarray(joints, np.float64) - 1.0,
        missing=None if missing is None else np.asarray(missing).astype(bool),
        source=str(path),
    )
