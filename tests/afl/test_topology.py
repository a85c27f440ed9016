import math

import numpy as np
import pytest
import torch

from landmark_afl.afl import topology_features


def _maps_with_blobs(h, w, blobs):
    """K maps, each either None (empty) or a list of (row, col, value) pixels."""
    maps = torch.zeros(1, len(blobs), h, w)
    for k, pixels in enumerate(blobs):
        for r, c, v in pixels or []:
            maps[0, k, r, c] = v
    return maps


def test_matches_hand_computation_with_absent_landmark():
    h, w = 10, 20
    blobs = [
        [(2, 3, 1.0)],  # centroid (3, 2)
        [(5, 10, 0.9), (5, 12, 0.6), (9, 0, 0.2)],  # below-threshold pixel ignored: x = (10*.9+12*.6)/1.5 = 10.8
        None,  # absent
        [(8, 18, 0.7)],  # (18, 8)
    ]
    feats = topology_features(_maps_with_blobs(h, w, blobs), threshold=0.5)
    assert feats.shape == (1, 2, 4, 4)
    c = {0: (3.0, 2.0), 1: (10.8, 5.0), 3: (18.0, 8.0)}
    diag = math.sqrt(w**2 + h**2)
    g = tuple(sum(v[i] for v in c.values()) / 3 for i in range(2))
    for i in range(4):
        for j in range(4):
            if i not in c or j not in c:
                assert feats[0, 0, i, j] == 0 and feats[0, 1, i, j] == 0
                continue
            d = math.dist(c[i], c[j])
            assert feats[0, 0, i, j].item() == pytest.approx(1 - d / diag, abs=1e-5)
            u = (c[i][0] - g[0], c[i][1] - g[1])
            v = (c[j][0] - g[0], c[j][1] - g[1])
            cos = (u[0] * v[0] + u[1] * v[1]) / max(math.hypot(*u) * math.hypot(*v), 1e-6)
            assert feats[0, 1, i, j].item() == pytest.approx(0.5 + 0.5 * cos, abs=1e-5)


def test_all_absent_gives_zeros_and_batch_is_independent():
    maps = torch.zeros(2, 3, 8, 8)
    maps[1, 0, 2, 2] = 1.0
    maps[1, 1, 6, 6] = 1.0
    feats = topology_features(maps, 0.5)
    assert torch.count_nonzero(feats[0]) == 0
    single = topology_features(maps[1:], 0.5)
    assert torch.equal(feats[1:], single)
    # two present landmarks opposite each other around their mean: angular affinity 0 off the diagonal
    assert feats[1, 1, 0, 1].item() == pytest.approx(0.0, abs=1e-6)


def test_no_gradient_and_bad_threshold():
    maps = torch.rand(2, 3, 8, 8, requires_grad=True)
    assert not topology_features(maps, 0.5).requires_grad
    with pytest.raises(ValueError, match="threshold must be > 0"):
        topology_features(maps, 0.0)
    with pytest.raises(ValueError, match=r"\[B, K, H, W\]"):
        topology_features(torch.rand(3, 8, 8), 0.5)


def _reference_topology(maps: np.ndarray, threshold: float) -> np.ndarray:
    """DESIGN.md's extractor in float64 numpy, one landmark and one pair at a time (an independent reference)."""
    maps = maps.astype(np.float64)
    b_count, k_count, h, w = maps.shape
    out = np.zeros((b_count, 2, k_count, k_count))
    diag = math.sqrt(w**2 + h**2)
    for b in range(b_count):
        centroids = {}
        for k in range(k_count):
            rows, cols = np.nonzero(maps[b, k] >= threshold)
            if len(rows):
                v = maps[b, k, rows, cols]
                centroids[k] = np.array([(v * cols).sum() / v.sum(), (v * rows).sum() / v.sum()])
        if not centroids:
            continue
        g = np.mean(list(centroids.values()), axis=0)
        for i, ci in centroids.items():
            for j, cj in centroids.items():
                out[b, 0, i, j] = 1 - math.hypot(*(ci - cj)) / diag
                u, v = ci - g, cj - g
                out[b, 1, i, j] = 0.5 + 0.5 * float(u @ v) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-6)
    return out


def _gaussian_maps(k: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Two images of K sub-pixel Gaussians (sigma 2.5), a few absent, and pairs of landmarks 0.1-1 px apart."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(2, k, 2, generator=g) * torch.tensor([w - 8.0, h - 8.0]) + 4
    centres[:, 1::4] = centres[:, 0::4][:, : centres[:, 1::4].shape[1]] + torch.rand(2, 1, 2, generator=g)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    d2 = (xs - centres[..., 0, None, None]) ** 2 + (ys - centres[..., 1, None, None]) ** 2
    maps = torch.exp(-d2 / (2 * 2.5**2))
    maps[0, 2] = 0.0  # absent
    maps[1, k - 1] = 0.3  # below threshold everywhere: absent
    return maps


@pytest.mark.parametrize("k", [5, 19, 36, 68])
def test_matches_float64_reference_for_any_k(k):
    h, w = 224, 256
    maps = _gaussian_maps(k, h, w, seed=k)
    feats = topology_features(maps, 0.5)
    ref = _reference_topology(maps.numpy(), 0.5)
    assert feats.dtype == torch.float32 and feats.shape == (2, 2, k, k)
    np.testing.assert_allclose(feats.numpy(), ref, rtol=0, atol=1e-5)
    present = [i for i in range(k) if i != 2]
    assert np.all(feats[0, 0].numpy()[present, present] == 1.0)  # a landmark is at distance 0 from itself


def test_mask_is_response_at_or_above_threshold_exactly():
    t = np.float32(0.3)  # not a binary fraction: the comparison must be made on the float32 value
    below = np.nextafter(t, np.float32(0))
    maps = _maps_with_blobs(8, 8, [[(1, 1, float(t))], [(2, 5, float(below))], [(4, 4, 1.0), (6, 6, float(t))]])
    feats = topology_features(maps, 0.3)
    present = feats[0, 0].diagonal() > 0
    assert present.tolist() == [True, False, True]
    # landmark 2's centroid includes the pixel at exactly the threshold: x = (4 * 1 + 6 * t) / (1 + t)
    cx = (4 + 6 * float(t)) / (1 + float(t))
    d = math.hypot(cx - 1, cx - 1)
    assert feats[0, 0, 0, 2].item() == pytest.approx(1 - d / math.sqrt(128), abs=1e-6)


def test_cpu_blocks_give_the_same_result_as_one_pass(monkeypatch):
    import landmark_afl.afl.topology as topology

    maps = _gaussian_maps(19, 64, 96, seed=3)
    monkeypatch.setattr(topology, "_CPU_BLOCK_BYTES", 1)  # one map per block
    one_map = topology_features(maps, 0.5)
    monkeypatch.setattr(topology, "_CPU_BLOCK_BYTES", 2**40)  # all maps in one block
    torch.testing.assert_close(one_map, topology_features(maps, 0.5), rtol=0, atol=1e-7)
