import math

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
