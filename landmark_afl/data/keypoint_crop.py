"""Top-down person crops for COCO and MPII: box -> (center, scale) -> affine crop -> Gaussian heatmap targets.

The geometry follows SimpleBaseline / HRNet (``get_affine_transform``) and mmpose (``get_warp_matrix``): a person
box ``(x, y, w, h)`` becomes a centre and a crop size with the aspect ratio of the network input, enlarged 1.25
times; one 2 x 3 similarity matrix ``M`` (uniform scale ``W_in / scale_w``, rotation, optional horizontal flip)
maps image pixels to input pixels; ``cv2.warpAffine`` applies the same ``M`` to the pixels that
``apply_affine`` applies to the keypoints, and its exact inverse maps decoded predictions back to the image.

Conventions: points are (x, y) = (column, row) in pixel-index coordinates of the array they live in; ``scale``
is the crop size ``(w, h)`` in image pixels (mmpose 1.x; HRNet stores it divided by 200); ``rotation`` is in
degrees, HRNet's sign (the person appears turned by ``-rotation`` in the crop). The crop centre ``center`` lands on
input point ``(W_in / 2, H_in / 2)`` as in HRNet. A flip mirrors the crop about its middle column,
``x' = W_in - 1 - x``, and swaps the keypoint channels of each left/right pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from landmark_afl.codecs import GaussianHeatmapCodec

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def box_to_center_scale(boxes: np.ndarray, aspect_ratio: float, padding: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes [N, 4] ``(x, y, w, h)`` -> centres [N, 2] and crop sizes [N, 2] ``(w, h)`` in pixels.

    The box is widened or heightened to ``aspect_ratio = W_in / H_in`` around its centre, then multiplied by
    ``padding`` (HRNet ``_xywh2cs`` with ``pixel_std`` left out).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x, y, w, h = boxes.T
    center = np.stack([x + 0.5 * w, y + 0.5 * h], -1)
    w_fit = np.where(w > aspect_ratio * h, w, h * aspect_ratio)
    h_fit = np.where(w > aspect_ratio * h, w / aspect_ratio, h)
    return center, np.stack([w_fit, h_fit], -1) * padding


def affine_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rotation: np.ndarray | float,
    output_size: tuple[int, int],
    flip: np.ndarray | bool = False,
    inverse: bool = False,
) -> np.ndarray:
    """Image -> input similarity transforms [..., 2, 3] (or their inverses), vectorised over leading dims.

    ``M = F @ [s R(-rotation) | t]`` with ``s = W_in / scale_w``, ``t`` placing ``center`` at ``(W_in/2, H_in/2)``
    and ``F`` the optional mirror ``x' = W_in - 1 - x``. Equal to HRNet's ``get_affine_transform(center,
    scale / 200, rotation, (W_in, H_in))`` when ``flip`` is False.

    Args:
        center: crop centres [..., 2] in image pixels.
        scale: crop sizes [..., 2] ``(w, h)`` in image pixels (only ``w`` sets the scale factor).
        rotation: degrees [...] (or a scalar).
        output_size: (H_in, W_in) of the network input.
        flip: whether to mirror each crop [...] (or a scalar).
        inverse: return input -> image instead.
    """
    center = np.asarray(center, np.float64)
    scale = np.asarray(scale, np.float64)
    if center.shape[-1] != 2 or scale.shape != center.shape:
        raise ValueError(f"center and scale must both be [..., 2], got {center.shape} and {scale.shape}")
    out_h, out_w = output_size
    theta = np.deg2rad(np.broadcast_to(np.asarray(rotation, np.float64), center.shape[:-1]))
    s = out_w / scale[..., 0]
    cos, sin = s * np.cos(theta), s * np.sin(theta)
    sign = np.where(np.broadcast_to(np.asarray(flip, bool), center.shape[:-1]), -1.0, 1.0)
    m = np.empty((*center.shape[:-1], 2, 3))
    m[..., 0, 0], m[..., 0, 1] = sign * cos, sign * sin
    m[..., 1, 0], m[..., 1, 1] = -sin, cos
    m[..., 0, 2] = sign * (0.5 * out_w - cos * center[..., 0] - sin * center[..., 1]) + (sign < 0) * (out_w - 1)
    m[..., 1, 2] = 0.5 * out_h + sin * center[..., 0] - cos * center[..., 1]
    return invert_affine(m) if inverse else m


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Exact inverse [..., 2, 3] of affine maps [..., 2, 3]."""
    lin = np.linalg.inv(matrix[..., :2])
    return np.concatenate([lin, -(lin @ matrix[..., 2:])], -1)


def apply_affine(matrix: np.ndarray | torch.Tensor, points: np.ndarray | torch.Tensor):
    """Affine maps [..., 2, 3] applied to points [..., K, 2] (NaN stays NaN); numpy or torch."""
    return points @ matrix[..., :2].swapaxes(-1, -2) + matrix[..., None, :, 2]


def flip_permutation(flip_pairs: tuple[tuple[int, int], ...], num_keypoints: int) -> np.ndarray:
    """Channel order [K] after a horizontal flip: ``maps[:, perm]`` swaps every left/right pair."""
    perm = np.arange(num_keypoints)
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return perm


def read_rgb(path: Path) -> np.ndarray:
    """uint8 RGB [H, W, 3] of an image file (EXIF orientation ignored, as COCO's annotations assume)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        why = "it does not exist" if not Path(path).exists() else "OpenCV cannot decode it"
        raise FileNotFoundError(f"cannot read image {path}: {why}; check the images folder of the data set")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass
class KeypointInstances:
    """The persons of one split, as arrays (N persons, K keypoints).

    Attributes:
        image_paths: image file of each person [N].
        image_ids: the data set's image id of each person [N] (COCO int, MPII file name).
        ids: a unique string per person [N] (annotation id or "image#i"), for difficulty records.
        boxes: person boxes [N, 4] ``(x, y, w, h)`` in image pixels.
        keypoints: [N, K, 2] in image pixels (NaN where not annotated).
        visible: [N, K] bool: labelled keypoints (COCO v > 0, MPII joints_vis 1), the ones that get a target.
        box_scores: detector score [N] (1 for ground-truth boxes).
        keypoint_names: the K names, in order.
        flip_pairs: left/right pairs of keypoint indices.
        skipped: reason -> number of annotations left out while loading.
    """

    image_paths: list[Path]
    image_ids: list
    ids: list[str]
    boxes: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    box_scores: np.ndarray
    keypoint_names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def check_images(self, source: str) -> None:
        """Raise FileNotFoundError listing the image files that are missing (checked once per file)."""
        missing = sorted({str(p) for p in set(self.image_paths) if not p.is_file()})
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} image file(s) named by {source} are missing, e.g. {', '.join(missing[:3])}; "
                "point images= (or the data folder) at the folder that holds them"
            )


@dataclass(frozen=True)
class CropAugment:
    """Random scale / rotation / flip of the crop (HRNet's ``JointsDataset`` recipe).

    Attributes:
        scale_factor: crop size times ``clip(1 + sf * N(0,1), 1 - sf, 1 + sf)``.
        rotation_factor: degrees ``clip(rf * N(0,1), -2 rf, 2 rf)``, applied with probability rotation_prob.
        rotation_prob: probability of rotating a sample.
        flip_prob: probability of a horizontal flip (with the data set's left/right pairs swapped).
    """

    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip_prob: float = 0.5

    def sample(self, rng: np.random.Generator) -> tuple[float, float, bool]:
        """(scale multiplier, rotation in degrees, flip) for one sample."""
        sf, rf = self.scale_factor, self.rotation_factor
        scale = float(np.clip(1 + sf * rng.standard_normal(), 1 - sf, 1 + sf))
        rotation = (
            float(np.clip(rf * rng.standard_normal(), -2 * rf, 2 * rf)) if rng.random() < self.rotation_prob else 0.0
        )
        return scale, rotation, bool(rng.random() < self.flip_prob)


def crop_targets(
    codec: GaussianHeatmapCodec, keypoints: np.ndarray, visible: np.ndarray, matrix: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Keypoints [..., K, 2] (image px) -> heatmaps [..., K, h, w], target weights [..., K], input coords [..., K, 2].

    A keypoint weighs 1 when labelled and its Gaussian reaches the heatmap (within 3 sigma, as HRNet); else 0,
    and its map is all zeros.
    """
    xy = apply_affine(matrix, np.where(visible[..., None], keypoints, np.nan))
    h, w = codec.heatmap_size
    uv = (xy + 0.5) / codec.stride - 0.5
    reach = 3 * codec.sigma
    inside = (uv[..., 0] > -reach) & (uv[..., 0] < w - 1 + reach) & (uv[..., 1] > -reach) & (uv[..., 1] < h - 1 + reach)
    weight = visible & inside
    xy = np.where(weight[..., None], xy, np.nan)
    return codec.encode(xy), torch.from_numpy(weight.astype(np.float32)), xy


class TopDownDataset(Dataset):
    """Torch data set of person crops with heatmap targets, for training or validation.

    Item ``i`` of epoch ``e`` is augmented with a generator seeded by ``(seed, e, i)`` (``set_epoch``), so a run
    is reproducible whatever the number of workers. Each item is a dict: ``image`` float32 [3, H, W] (ImageNet
    normalised RGB), ``heatmaps`` [K, H/s, W/s], ``target_weight`` [K], ``keypoints`` [K, 2] (input px, NaN
    without target), ``center`` [2], ``scale`` [2], ``rotation``, ``flip``, ``box_score``, ``image_id``, ``id``,
    ``index``.

    Args:
        instances: the persons of the split.
        codec: heatmap codec of the targets (its ``input_size`` is the crop size).
        augment: random augmentation, or None for validation.
        padding: box enlargement factor.
        seed: base seed of the augmentation.

    Example:
        >>> import numpy as np
        >>> center, scale = box_to_center_scale(np.array([[10.0, 20.0, 30.0, 80.0]]), aspect_ratio=0.75)
        >>> center.tolist(), scale.tolist()
        ([[25.0, 60.0]], [[75.0, 100.0]])
    """

    def __init__(
        self,
        instances: KeypointInstances,
        codec: GaussianHeatmapCodec,
        augment: CropAugment | None = None,
        padding: float = 1.25,
        seed: int = 0,
    ) -> None:
        self.instances = instances
        self.codec = codec
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        h, w = codec.input_size
        self.center, self.scale = box_to_center_scale(instances.boxes, w / h, padding)
        self.flip_perm = flip_permutation(instances.flip_pairs, instances.keypoints.shape[1])

    def __len__(self) -> int:
        return len(self.instances)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        inst = self.instances
        center, scale, rotation, flip = self.center[index], self.scale[index], 0.0, False
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            factor, rotation, flip = self.augment.sample(rng)
            scale = scale * factor
        matrix = affine_matrix(center, scale, rotation, self.codec.input_size, flip)
        image = read_rgb(inst.image_paths[index])
        h, w = self.codec.input_size
        crop = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR)
        keypoints, visible = inst.keypoints[index], inst.visible[index]
        if flip:
            keypoints, visible = keypoints[self.flip_perm], visible[self.flip_perm]
        heatmaps, weight, xy = crop_targets(self.codec, keypoints, visible, matrix)
        pixels = (crop.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return {
            "image": torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))),
            "heatmaps": heatmaps,
            "target_weight": weight,
            "keypoints": torch.from_numpy(xy.astype(np.float32)),
            "center": torch.from_numpy(center.astype(np.float64)),
            "scale": torch.from_numpy(np.asarray(scale, np.float64)),
            "rotation": float(rotation),
            "flip": flip,
            "box_score": float(inst.box_scores[index]),
            "image_id": inst.image_ids[index],
            "id": inst.ids[index],
            "index": index,
        }
