"""Topology extractor of AFL (paper, Appendix A.2): K heatmaps -> K x K planar and angular affinity matrices."""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def topology_features(heatmaps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Condense heatmaps into planar and angular affinities between landmark centroids.

    For landmark k the pixels with response >= ``threshold`` form its mask. An empty mask means the landmark is
    absent: its row and column of both matrices are 0. Otherwise its centroid ``c_k`` is the response-weighted mean
    of the (x, y) = (column, row) pixel coordinates over the mask, and with ``g`` the mean centroid of the present
    landmarks, ``u = c_i - g``, ``v = c_j - g``:

        Mp[i, j] = 1 - ||c_i - c_j||_2 / sqrt(W^2 + H^2)
        Ma[i, j] = 0.5 + 0.5 * (u . v) / max(|u| |v|, 1e-6)

    No gradient flows through the extractor.

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
    maps = heatmaps.float()
    _, _, h, w = maps.shape
    weights = torch.where(maps >= threshold, maps, torch.zeros((), dtype=maps.dtype, device=maps.device))
    mass = weights.sum(dim=(2, 3))  # [B, K]
    present = mass > 0
    xs = torch.arange(w, dtype=maps.dtype, device=maps.device)
    ys = torch.arange(h, dtype=maps.dtype, device=maps.device)
    safe_mass = torch.where(present, mass, torch.ones_like(mass))
    cx = (weights.sum(dim=2) * xs).sum(-1) / safe_mass
    cy = (weights.sum(dim=3) * ys).sum(-1) / safe_mass
    centroids = torch.stack([cx, cy], -1) * present[..., None]  # [B, K, 2]

    pair = (present[:, :, None] & present[:, None, :]).to(maps.dtype)  # [B, K, K]
    dist = torch.cdist(centroids, centroids)
    planar = (1 - dist / math.sqrt(w**2 + h**2)) * pair

    count = present.sum(-1, keepdim=True).clamp_min(1).to(maps.dtype)  # [B, 1]
    center = centroids.sum(1) / count  # [B, 2] mean over present landmarks
    offsets = (centroids - center[:, None, :]) * present[..., None]
    dots = offsets @ offsets.transpose(1, 2)
    norms = offsets.norm(dim=-1)
    denom = (norms[:, :, None] * norms[:, None, :]).clamp_min(1e-6)
    angular = (0.5 + 0.5 * dots / denom) * pair
    return torch.stack([planar, angular], 1)
