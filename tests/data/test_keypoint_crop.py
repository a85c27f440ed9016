"""The top-down crop: HRNet's affine transform, exact inverses, pixels and keypoints moving together, flips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.data.keypoint_crop import (
    CropAugment,
    KeypointInstances,
    TopDownDataset,
    affine_matrix,
    apply_affine,
    box_to_center_scale,
    crop_targets,
    flip_permutation,
    invert_affine,
)


def hrnet_affine(center, scale_px, rot, output_wh):
    """Reference: HRNet ``get_affine_transform`` (three points, cv2.getAffineTransform), scale in pixels."""

    def rotate(pt, rad):
        sn, cs = np.sin(rad), np.cos(rad)
        return np.array([pt[0] * cs - pt[1] * sn, pt[0] * sn + pt[1] * cs])

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]])

    src_w, (dst_w, dst_h) = scale_px[0], output_wh
    src = np.zeros((3, 2))
    dst = np.zeros((3, 2))
    src[0] = center
    src[1] = center + rotate([0, src_w * -0.5], np.pi * rot / 180)
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + np.array([0, dst_w * -0.5])
    src[2], dst[2] = third(src[0], src[1]), third(dst[0], dst[1])
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
def test_affine_matches_hrnet(rot):
    center, scale = np.array([312.5, 207.0]), np.array([150.0, 200.0])
    ours = affine_matrix(center, scale, rot, (256, 192))
    np.testing.assert_allclose(ours, hrnet_affine(center, scale, rot, (192, 256)), rtol=1e-5, atol=1e-3)


def test_box_to_center_scale_fits_aspect_and_pads():
    # a tall box (w/h < 0.75) is widened, a wide one heightened; then both grow by 1.25
    center, scale = box_to_center_scale(np.array([[10, 20, 30, 80], [0, 0, 90, 60]]), aspect_ratio=0.75)
    np.testing.assert_allclose(center, [[25, 60], [45, 30]])
    np.testing.assert_allclose(scale, [[60 * 1.25, 80 * 1.25], [90 * 1.25, 120 * 1.25]])


def test_inverse_is_exact_with_rotation_and_flip():
    rng = np.random.default_rng(0)
    center = rng.uniform(50, 500, (6, 2))
    scale = np.stack([rng.uniform(40, 300, 6)] * 2, -1) * [0.75, 1]
    rot, flip = rng.uniform(-90, 90, 6), np.array([0, 1, 0, 1, 1, 0], bool)
    fwd = affine_matrix(center, scale, rot, (256, 192), flip)
    inv = affine_matrix(center, scale, rot, (256, 192), flip, inverse=True)
    pts = rng.uniform(0, 600, (6, 17, 2))
    np.testing.assert_allclose(apply_affine(inv, apply_affine(fwd, pts)), pts, atol=1e-9)
    np.testing.assert_allclose(invert_affine(inv), fwd, atol=1e-12)
    # the centre lands on (W/2, H/2), mirrored to W - 1 - W/2 when flipped
    mapped = apply_affine(fwd, center[:, None])[:, 0]
    np.testing.assert_allclose(mapped[~flip], [[96, 128]] * int((~flip).sum()), atol=1e-9)
    np.testing.assert_allclose(mapped[flip], [[191 - 96, 128]] * int(flip.sum()), atol=1e-9)


def test_warp_moves_pixels_with_keypoints():
    image = np.zeros((300, 400), np.float32)
    point = np.array([230.0, 140.0])
    image[140, 230] = 1.0
    image = cv2.GaussianBlur(image, (0, 0), 3.0)  # a smooth blob centred on the point
    for rot, flip in ((0.0, False), (35.0, False), (-50.0, True)):
        m = affine_matrix(np.array([200.0, 150.0]), np.array([180.0, 240.0]), rot, (128, 96), flip)
        crop = cv2.warpAffine(image, m, (96, 128), flags=cv2.INTER_LINEAR)
        yy, xx = np.mgrid[:128, :96]
        centroid = np.array([(crop * xx).sum(), (crop * yy).sum()]) / crop.sum()
        np.testing.assert_allclose(centroid, apply_affine(m, point[None])[0], atol=0.05)


def test_flipped_crop_is_the_mirrored_crop():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    center, scale = np.array([150.0, 100.0]), np.array([120.0, 160.0])
    plain = cv2.warpAffine(image, affine_matrix(center, scale, 0.0, (64, 48)), (48, 64))
    flipped = cv2.warpAffine(image, affine_matrix(center, scale, 0.0, (64, 48), True), (48, 64))
    assert np.abs(flipped.astype(int) - plain[:, ::-1].astype(int)).max() <= 1


def test_flip_permutation_is_an_involution():
    perm = flip_permutation(((1, 2), (3, 4)), 6)
    assert perm.tolist() == [0, 2, 1, 4, 3, 5]
    assert perm[perm].tolist() == list(range(6))


def test_targets_weights_and_decoding():
    codec = GaussianHeatmapCodec((64, 48), sigma=2.0, stride=4)
    m = affine_matrix(np.array([24.0, 32.0]), np.array([48.0, 64.0]), 0.0, (64, 48))  # identity crop
    kps = np.array([[10.3, 20.7], [30.0, 50.0], [500.0, 500.0], [5.0, 5.0]])
    vis = np.array([True, True, True, False])
    maps, weight, xy = crop_targets(codec, kps, vis, m)
    assert maps.shape == (4, 16, 12)
    assert weight.tolist() == [1, 1, 0, 0]  # far outside the crop, or unlabelled: no target
    assert float(maps[2].max()) == 0 and float(maps[3].max()) == 0
    decoded, _ = codec.decode(maps[None])
    np.testing.assert_allclose(decoded[0, :2].numpy(), kps[:2], atol=1e-2)
    assert np.isnan(xy[2:]).all()


def _instances(path, n=3) -> KeypointInstances:
    kps = np.array([[[60.0, 40.0], [100.0, 40.0], [80.0, 90.0]]] * n) + np.arange(n)[:, None, None]
    return KeypointInstances(
        image_paths=[path] * n,
        image_ids=list(range(n)),
        ids=[f"p{i}" for i in range(n)],
        boxes=np.array([[40.0, 20.0, 80.0, 100.0]] * n),
        keypoints=kps,
        visible=np.array([[True, True, False]] * n),
        box_scores=np.ones(n),
        keypoint_names=("left_hand", "right_hand", "head"),
        flip_pairs=((0, 1),),
    )


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "img.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (150, 160, 3), dtype=np.uint8))
    return path


def test_dataset_item_and_per_epoch_determinism(image_file):
    codec = GaussianHeatmapCodec((64, 48), sigma=2.0, stride=4)
    ds = TopDownDataset(_instances(image_file), codec, CropAugment(), seed=3)
    ds.set_epoch(1)
    a, b = ds[1], ds[1]
    assert a["image"].shape == (3, 64, 48) and a["image"].dtype == torch.float32
    assert a["heatmaps"].shape == (3, 16, 12) and a["target_weight"][2] == 0
    assert torch.equal(a["image"], b["image"]) and a["rotation"] == b["rotation"]
    ds.set_epoch(2)
    c = ds[1]
    assert (c["rotation"], c["scale"].tolist(), c["flip"]) != (a["rotation"], a["scale"].tolist(), a["flip"])


def test_dataset_flip_swaps_pairs(image_file):
    codec = GaussianHeatmapCodec((64, 48), sigma=2.0, stride=4)
    inst = _instances(image_file)
    plain = TopDownDataset(inst, codec)[0]
    flipped = TopDownDataset(inst, codec, CropAugment(0.0, 0.0, 0.0, flip_prob=1.0))[0]
    assert flipped["flip"]
    # the left channel now holds the mirrored right keypoint, and the pixels are mirrored
    np.testing.assert_allclose(flipped["keypoints"][0, 0], 47 - plain["keypoints"][1, 0], atol=1e-4)
    np.testing.assert_allclose(flipped["keypoints"][0, 1], plain["keypoints"][1, 1], atol=1e-4)
    assert (flipped["image"] - plain["image"].flip(-1)).abs().max() < 0.05
