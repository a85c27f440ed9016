"""Topology extractor of AFL (paper, Appendix A.2): K heatmaps -> K x K planar and angular affinity matrices."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# On the CPU the masked maps are made in blocks of about this many bytes: a full-size temporary ([B, K, H, W],
# 37 MB at 4 x 36 x 256^2) is fresh memory on every call, and its page faults cost 16 ms against 2 ms for the
# threshold itself (measured, 1 thread); 2 MB blocks are reused by the allocator (4 ms for the whole batch).
_CPU_BLOCK_BYTES = 2**21


@torch.no_grad()
def topology_features(heatmaps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Condense heatmaps into planar and angular affinities between landmark centroids.

    For landmark k the pixels with response >= ``threshold`` form its mask. An empty mask means the landmark is
    absent: its row and column of both matrices are 0. Otherwise its centroid ``c_k`` is the response-weighted mean
    of the (x, y) = (column, row) pixel coordinates over the mask, and with ``g`` the mean centroid of the present
    landmarks, ``u = c_i - g``, ``v = c_j - g``:

        Mp[i, j] = 1 - ||c_i - c_j||_2 / sqrt(W^2 + H^2)
        Ma[i, j] = 0.5 + 0.5 * (u . v) / max(|u| |v|, 1e-6)

    No gradient flows through the extractor. The masked row and column marginals (the only O(H W) work) are summed
    in float32, over all B x K maps at once on a GPU and in blocks of whole maps on the CPU (fresh memory for one
    full-size temporary costs more than the arithmetic there). Everything from the centroids on is O(K^2) and done
    in float64 with explicit differences ``c_i - c_j``, so the result is exact to float32 rounding for any K
    (``torch.cdist`` switches to a matrix-multiply expansion for K > 25 that is off by ~1e-4 on the diagonal and
    on close pairs).

    Args:
        heatmaps: [B, K, H, W] heatmaps (targets or activated predictions).
        threshold: response threshold of the masks; must be > 0 so that an all-zero map is absent.

    Returns:
        [B, 2, K, K] float32: channel 0 is Mp, channel 1 is Ma.
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must have shape [B, K, H, W], got {tuple(heatmaps.shape)}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 (an all-zero heatmap must count as absent), got {threshold}")
    b, k, h, w = heatmaps.shape
    col_mass, row_mass = _masked_marginals(heatmaps.reshape(b * k, h, w), threshold)
    col_mass, row_mass = col_mass.view(b, k, w), row_mass.view(b, k, h)
    f64 = {"dtype": torch.float64, "device": heatmaps.device}
    mass = col_mass.sum(-1)  # [B, K]
    present = mass > 0
    safe_mass = torch.where(present, mass, torch.ones_like(mass))
    cx = (col_mass * torch.arange(w, **f64)).sum(-1) / safe_mass
    cy = (row_mass * torch.arange(h, **f64)).sum(-1) / safe_mass
    centroids = torch.stack([cx, cy], -1) * present[..., None]  # [B, K, 2]

    pair = (present[:, :, None] & present[:, None, :]).double()  # [B, K, K]
    diff = centroids[:, :, None, :] - centroids[:, None, :, :]  # [B, K, K, 2]
    planar = (1 - diff.square().sum(-1).sqrt() / math.sqrt(w**2 + h**2)) * pair

    count = present.sum(-1, keepdim=True).clamp_min(1).double()  # [B, 1]
    center = centroids.sum(1) / count  # [B, 2] mean over present landmarks
    offsets = (centroids - center[:, None, :]) * present[..., None]
    dots = (offsets[:, :, None, :] * offsets[:, None, :, :]).sum(-1)  # [B, K, K]
    norms = offsets.square().sum(-1).sqrt()
    denom = (norms[:, :, None] * norms[:, None, :]).clamp_min(1e-6)
    angular = (0.5 + 0.5 * dots / denom) * pair
    return torch.stack([planar, angular], 1).float()


def _masked_marginals(maps: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Column and row sums [N, W], [N, H] (float64) of ``m * (m >= threshold)`` over maps [N, H, W]."""
    n, h, w = maps.shape
    # F.threshold keeps x where x > below; for float32 x that is x >= float32(threshold) exactly
    below = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    block = max(1, _CPU_BLOCK_BYTES // (4 * h * w)) if maps.device.type == "cpu" else max(n, 1)
    cols, rows = [], []
    for part in maps.split(block):  # blocks of whole maps (memory reuse), not a loop over landmarks
        kept = F.threshold(part.float(), below, 0.0)
        cols.append(kept.sum(1))
        rows.append(kept.sum(2))
    return torch.cat(cols).double(), torch.cat(rows).double()
