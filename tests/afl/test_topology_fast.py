"""The fast paths of the topology extractor against the full-resolution reference.

``target_topology_features`` (the targets' features from a window around each landmark) and the row-pruned CPU pass
of ``topology_features`` (with or without a fused sigmoid) must give what the dense full-resolution extractor gives
on the same maps, bit for bit, and the landmark task's AFL step must not change when its targets' features come
from the landmarks.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import landmark_afl.afl.topology as topology
from landmark_afl.afl import (
    AdversarialFocalLoss,
    AFLConfig,
    TopologyCritic,
    target_topology_features,
    topology_features,
)
from landmark_afl.codecs import GaussianHeatmapCodec
from tests.afl.test_topology import _reference_topology


def _dense(maps: torch.Tensor, threshold: float) -> torch.Tensor:
    """The full-resolution extractor with the dense pass over every pixel (no row pruning)."""
    b, k, h, w = maps.shape
    col, row = topology._masked_marginals(maps.reshape(b * k, h, w), threshold)
    return topology.affinities_from_marginals(col.view(b, k, w), row.view(b, k, h))


def _old_topology(maps: torch.Tensor, threshold: float) -> torch.Tensor:
    """The extractor before the fast paths: float32 marginals, then the same float64 affinities."""
    b, k, h, w = maps.shape
    below = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    kept = torch.nn.functional.threshold(maps.float(), below, 0.0)
    return topology.affinities_from_marginals(kept.sum(2).double(), kept.sum(3).double())


def _landmarks(b: int, k: int, h: int, w: int, stride: int, sigma: float, seed: int) -> torch.Tensor:
    """Landmarks in input pixels: most inside, some near or over the border, far away, absent or half-NaN."""
    g = torch.Generator().manual_seed(seed)
    size = torch.tensor([w * stride, h * stride], dtype=torch.float32)
    pts = torch.rand(b, k, 2, generator=g) * size
    margin = 2 * sigma * stride
    pts[:, 0] = torch.tensor([-0.4, 0.3 * float(size[1])])  # just left of the image, its Gaussian partly inside
    pts[:, 1] = size - 0.5 + torch.rand(2, generator=g) * margin  # over the bottom-right corner
    pts[:, 2] = torch.tensor([-3.0 * margin, 5.0])  # far outside: an all-zero map
    pts[:, 3] = torch.tensor([float("nan"), float("nan")])  # absent
    pts[:, 4, 1] = float("nan")  # half NaN: absent too
    pts[:, 5] = torch.tensor([0.0, 0.0])  # on the first pixel centre
    pts[:, 6] = torch.tensor([1e30, -1e30])  # huge but finite
    pts[:, 7] = pts[:, 8] + 0.3  # two landmarks a fraction of a pixel apart
    pts[1:, 9] = torch.tensor([float("inf"), 3.0])
    return pts


@pytest.mark.parametrize("k", [19, 36])
@pytest.mark.parametrize(
    ("input_size", "sigma", "stride"),
    [((64, 96), 1.0, 1), ((128, 128), 2.0, 1), ((96, 64), 3.0, 1), ((256, 256), 3.0, 1), ((128, 96), 5.5, 1),
     ((256, 192), 2.5, 4), ((128, 128), 1.5, 2)],
)  # fmt: skip
def test_target_features_from_landmarks_equal_the_full_resolution_reference(k, input_size, sigma, stride):
    codec = GaussianHeatmapCodec(input_size, sigma=sigma, stride=stride)
    h, w = codec.heatmap_size
    pts = _landmarks(3, k, h, w, stride, sigma, seed=k + int(10 * sigma))
    maps = codec.encode(pts)
    for threshold in (0.5, 0.3, 0.9, 0.05):
        ref = _dense(maps, threshold)
        assert torch.equal(topology_features(maps, threshold), ref)
        from_maps = target_topology_features(pts, codec, threshold, heatmaps=maps)
        from_codec = target_topology_features(pts, codec, threshold)
        assert from_maps.dtype == torch.float32 and from_maps.shape == (3, 2, k, k)
        assert torch.equal(from_maps, ref), (threshold, (from_maps - ref).abs().max())
        assert torch.equal(from_codec, ref), (threshold, (from_codec - ref).abs().max())
        # the float64 reference within the float32 rounding of the result (the old float32 marginals: ~1e-5)
        np.testing.assert_allclose(from_maps.numpy(), _reference_topology(maps.numpy(), threshold), rtol=0, atol=6e-8)
        torch.testing.assert_close(from_maps, _old_topology(maps, threshold), rtol=0, atol=1e-4)
    present = ref[:, 0].diagonal(dim1=1, dim2=2) > 0
    assert not present[:, [2, 3, 4, 6]].any() and present[:, [0, 5, 7, 8]].all()


def test_target_features_take_the_landmarks_per_image_as_the_data_set_encodes_them():
    """The data set encodes each image's float64 landmarks; the batch carries them as float32."""
    codec = GaussianHeatmapCodec((128, 160), sigma=3.0)
    rng = np.random.default_rng(0)
    items = [rng.uniform(-5, 165, size=(19, 2)) for _ in range(4)]
    items[2][[3, 11]] = np.nan
    maps = torch.stack([codec.encode(p) for p in items])
    pts = torch.stack([torch.from_numpy(p.astype(np.float32)) for p in items])
    assert torch.equal(target_topology_features(pts, codec, 0.5, heatmaps=maps), topology_features(maps, 0.5))


def test_targets_that_are_not_the_codecs_fall_back_to_the_full_resolution_extractor():
    codec = GaussianHeatmapCodec((64, 64), sigma=2.0)
    pts = _landmarks(2, 10, 64, 64, 1, 2.0, seed=1)
    wider = GaussianHeatmapCodec((64, 64), sigma=4.0).encode(pts)  # masks reach beyond the sigma-2 windows
    assert torch.equal(target_topology_features(pts, codec, 0.5, heatmaps=wider), _dense(wider, 0.5))
    # a window as large as the map: the full-resolution extractor
    small = GaussianHeatmapCodec((16, 16), sigma=4.0)
    pts = torch.tensor([[[3.0, 4.0], [12.5, 9.0], [float("nan"), 1.0]]])
    maps = small.encode(pts)
    assert torch.equal(target_topology_features(pts, small, 0.2, heatmaps=maps), _dense(maps, 0.2))
    assert torch.equal(target_topology_features(pts, small, 0.2), _dense(maps, 0.2))
    with pytest.raises(ValueError, match=r"\[B, K, H, W\]"):
        target_topology_features(pts, small, 0.2, heatmaps=maps[:, :2])
    with pytest.raises(ValueError, match=r"\[B, K, 2\]"):
        target_topology_features(pts[0], small, 0.2)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        target_topology_features(pts, small, 0.0)


def _prediction_maps(kind: str, shape: tuple, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    b, k, h, w = shape
    if kind == "peaks":  # a trained model's: Gaussian peaks and a little noise
        codec = GaussianHeatmapCodec((h, w), sigma=2.5)
        pts = torch.rand(b, k, 2, generator=g) * torch.tensor([w, h])
        return 0.9 * codec.encode(pts) + 0.08 * torch.rand(shape, generator=g)
    if kind == "noise":  # reaching the threshold in most rows: the dense pass
        return torch.rand(shape, generator=g) ** 4
    maps = 0.4 * torch.rand(shape, generator=g)  # a few scattered pixels and one NaN map
    maps[0, 1, 3, 5] = 0.7
    maps[1, 2, h - 1, :] = 0.55
    maps[0, 3, 7, 9] = float("nan")
    return maps


@pytest.mark.parametrize("kind", ["peaks", "noise", "scattered"])
@pytest.mark.parametrize("shape", [(2, 19, 64, 96), (2, 36, 128, 128)])
def test_row_pruned_pass_equals_the_dense_pass(kind, shape):
    maps = _prediction_maps(kind, shape, seed=shape[1])
    for threshold in (0.5, 0.3):
        fast = topology_features(maps, threshold)
        torch.testing.assert_close(fast, _dense(maps, threshold), rtol=0, atol=0, equal_nan=True)  # bit for bit
        torch.testing.assert_close(fast, _old_topology(maps, threshold), rtol=0, atol=2e-5, equal_nan=True)
    if kind == "scattered":
        assert torch.isnan(fast[0]).any() and not torch.isnan(fast[1]).any()  # NaN responses count as before
    half = maps.bfloat16()  # autocast outputs: the same features as from their float32 values
    torch.testing.assert_close(topology_features(half, 0.5), _dense(half.float(), 0.5), rtol=0, atol=0, equal_nan=True)


def test_rows_are_pruned_in_blocks_and_fall_back_to_the_dense_pass(monkeypatch):
    maps = _prediction_maps("peaks", (2, 19, 64, 96), seed=3)
    expected = _dense(maps, 0.5)
    monkeypatch.setattr(topology, "_CPU_BLOCK_BYTES", 1)  # one row (and one map) per block
    assert torch.equal(topology_features(maps, 0.5), expected)
    monkeypatch.setattr(topology, "_CPU_BLOCK_BYTES", 2**21)
    monkeypatch.setattr(topology, "_PRUNE_MAX_FRACTION", 0.0)  # always the dense pass
    assert torch.equal(topology_features(maps, 0.5), expected)


@pytest.mark.parametrize("threshold", [0.5, 0.05, 0.9, 1 - 1e-7, 1.0, 1.5, 1e-35])
@pytest.mark.parametrize("kind", ["peaks", "noise"])
def test_fused_sigmoid_equals_activating_first(kind, threshold):
    g = torch.Generator().manual_seed(7)
    maps = _prediction_maps(kind, (2, 19, 64, 96), seed=11)
    raw = torch.logit(maps.clamp(1e-6, 1 - 1e-6)) + 0.01 * torch.randn(maps.shape, generator=g)
    raw[0, 0, 5, :3] = torch.tensor([20.0, 40.0, -100.0])  # sigmoid 1.0 in float32, and 0
    fused = topology_features(raw, threshold, activation="sigmoid")
    assert torch.equal(fused, _dense(torch.sigmoid(raw), threshold))
    assert torch.equal(topology_features(raw, threshold, activation="identity"), topology_features(raw, threshold))
    with pytest.raises(ValueError, match="activation"):
        topology_features(raw, threshold, activation="softmax")


# ---- the AFL step: the targets' features from the landmarks change nothing ---------------------------------------


def _task(loss_name: str, afl_cfg: AFLConfig, k: int = 19):
    from landmark_afl.losses import HeatmapLoss
    from landmark_afl.tasks.landmark import LandmarkTask

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, k, 3, padding=1))
    with torch.no_grad():  # outputs that reach the threshold in some rows and not others
        model[2].bias.fill_(0.3 if loss_name == "wmse" else -0.2)
    return LandmarkTask(model, GaussianHeatmapCodec((48, 64), sigma=2.0), HeatmapLoss(loss_name), afl=afl_cfg)


def _batch(task, k: int = 19) -> dict:
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(4, k, 2, generator=g) * torch.tensor([70.0, 54.0]) - 3  # some over the border
    pts[1, 4] = float("nan")
    pts[2, :3] = float("nan")
    return {
        "image": torch.rand(4, 1, 48, 64, generator=g),
        "heatmaps": torch.stack([task.codec.encode(p) for p in pts]),
        "landmarks": pts,
        "image_id": list("abcd"),
    }


def _old_afl_step(task, batch):
    """The AFL step before the fast paths: activate, then the extractor on the activated maps and on the targets."""
    threshold = task.afl.cfg.threshold
    old = AdversarialFocalLoss(task.afl.critic, lambda m: topology_features(m, threshold), task.afl.cfg)
    old.optimizer.load_state_dict(task.afl.optimizer.state_dict())
    raw = task.model(batch["image"])
    per_landmark = task.afl.cfg.per_landmark
    loss = task.loss(raw, batch["heatmaps"], reduction="landmark" if per_landmark else None)
    return old(task.loss.activate(raw.detach()), batch["heatmaps"], loss)


@pytest.mark.parametrize("loss_name", ["wmse", "bce"])
@pytest.mark.parametrize(
    "afl_cfg",
    [AFLConfig(), AFLConfig(critic_center=True), AFLConfig(per_landmark=True, threshold=0.3, normalize_weights=True)],
    ids=["paper", "centred", "per-landmark"],
)
def test_afl_step_is_identical_with_targets_from_landmarks(loss_name, afl_cfg):
    runs = {}
    for path in ("landmarks", "heatmaps", "old"):
        task = _task(loss_name, afl_cfg).train()
        batch = _batch(task)
        torch.manual_seed(123)  # the gradient penalty's interpolation weights
        if path == "old":
            out = _old_afl_step(task, batch)
            loss, scores = out["loss"], out["scores"]
        else:
            task.targets_from_landmarks = path == "landmarks"
            out = task(batch)
            loss, scores = out["loss"], out["records"]["score"]
        loss.backward()
        runs[path] = (loss.detach(), scores, copy.deepcopy(task.afl.critic.state_dict()), task.model[0].weight.grad)
    for path in ("heatmaps", "old"):
        loss, scores, critic, grad = runs[path]
        assert torch.equal(runs["landmarks"][0], loss), path
        assert torch.equal(runs["landmarks"][1], scores), path
        assert runs["landmarks"][2].keys() == critic.keys()
        for key, value in critic.items():
            assert torch.equal(runs["landmarks"][2][key], value), (path, key)  # the critic update
        assert torch.equal(runs["landmarks"][3], grad), path
    # the step did something: the scores are not saturated and the critic moved
    assert 0 < float(runs["landmarks"][1].mean()) < 1
    fresh = _task(loss_name, afl_cfg).afl.critic.state_dict()
    assert any(not torch.equal(fresh[key], value) for key, value in runs["landmarks"][2].items())


def test_afl_takes_given_features_and_checks_their_shape():
    critic = TopologyCritic()
    afl = AdversarialFocalLoss(critic, lambda m: topology_features(m, 0.5)).eval()
    pred, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    loss = torch.tensor([1.0, 2.0])
    expected = afl(pred, target, loss)
    real, fake = topology_features(target, 0.5), topology_features(pred, 0.5)
    for given in (
        afl(pred, target, loss, real_features=real),
        afl(pred, target, loss, fake_features=fake),
        afl(pred, target, loss, real_features=real, fake_features=fake),
    ):
        assert torch.equal(expected["loss"], given["loss"]) and torch.equal(expected["scores"], given["scores"])
    with pytest.raises(ValueError, match="targets' features"):
        afl(pred, target, loss, real_features=torch.zeros(2, 2, 4, 4))
