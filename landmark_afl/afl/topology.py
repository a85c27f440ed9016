"""Topology extractor of AFL (paper, Appendix A.2): K heatmaps -> K x K planar and angular affinity matrices.

``topology_features`` is the extractor of DESIGN.md on full-resolution heatmaps, the reference for any heatmaps.
``target_topology_features`` gives the same result for targets made by a ``GaussianHeatmapCodec`` from a small
window around each landmark, since a codec Gaussian is below the threshold outside it.

Both reduce each map to its masked column and row marginals (``m * (m >= threshold)`` summed over the rows and over
the columns), summed in float64 from the float32 responses. These sums are exact whatever the order of summation
for responses below 2^m and thresholds of at least 2^-e with m + e <= 14 (e.g. responses below 2 and thresholds
of at least 2^-13 = 1.2e-4) on maps of up to 2^16 rows and columns: a float32 value >= 2^-e is a multiple of
2^-(e + 23), and 2^16 of them below 2^m fit in float64's 53 bits. So the two functions, and the dense and the
row-pruned pass of the first, give the same float32 features bit for bit (elsewhere they differ by float64
rounding); everything after the marginals is the same code. The float32 sums before issue 10 were off by up to
~1e-5 (angular affinities).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from landmark_afl.codecs import GaussianHeatmapCodec

# On the CPU the masked maps are made in blocks of about this many bytes: a full-size temporary ([B, K, H, W],
# 37 MB at 4 x 36 x 256^2) is fresh memory on every call, and its page faults cost 16 ms against 2 ms for the
# threshold itself (measured, 1 thread); 2 MB blocks are reused by the allocator (4 ms for the whole batch).
_CPU_BLOCK_BYTES = 2**21
# On the CPU only the rows whose maximum reaches the threshold are masked and summed (a cheap max pass picks them),
# unless more than this fraction of all rows does (noisy early predictions): the dense pass is cheaper from
# about 45 % (measured, 1 thread, 4 x 36 x 256^2).
_PRUNE_MAX_FRACTION = 0.4


ACTIVATIONS = ("identity", "sigmoid")


@torch.no_grad()
def topology_features(heatmaps: torch.Tensor, threshold: float, activation: str | None = None) -> torch.Tensor:
    """Condense heatmaps into planar and angular affinities between landmark centroids.

    For landmark k the pixels with response >= ``threshold`` form its mask. An empty mask means the landmark is
    absent: its row and column of both matrices are 0. Otherwise its centroid ``c_k`` is the response-weighted mean
    of the (x, y) = (column, row) pixel coordinates over the mask, and with ``g`` the mean centroid of the present
    landmarks, ``u = c_i - g``, ``v = c_j - g``:

        Mp[i, j] = 1 - ||c_i - c_j||_2 / sqrt(W^2 + H^2)
        Ma[i, j] = 0.5 + 0.5 * (u . v) / max(|u| |v|, 1e-6)

    No gradient flows through the extractor. The masked row and column marginals (the only O(H W) work) are summed
    in float64 from the float32 responses, over all B x K maps at once on a GPU; on the CPU a max pass over the rows
    first picks those that reach the threshold (a few per map once the maps are peaks) and only they are masked and
    summed, in blocks (fresh memory for a full-size temporary costs more than the arithmetic there). Everything from
    the centroids on is O(K^2) and done in float64 with explicit differences ``c_i - c_j``, so the result is exact
    to float32 rounding for any K (``torch.cdist`` switches to a matrix-multiply expansion for K > 25 that is off by
    ~1e-4 on the diagonal and on close pairs).

    Args:
        heatmaps: [B, K, H, W] heatmaps (targets or activated predictions), or with ``activation`` the raw outputs.
        threshold: response threshold of the masks; must be > 0 so that an all-zero map is absent.
        activation: None or "identity": ``heatmaps`` are the maps; "sigmoid": the maps are ``sigmoid(heatmaps)``,
            the same features as ``topology_features(torch.sigmoid(heatmaps), threshold)`` bit for bit, but on the
            CPU the rows are picked on the raw outputs (sigmoid is monotonic) and only they are activated: a full
            sigmoid over 4 x 36 x 256^2 outputs costs ~20 ms (1 thread).

    Returns:
        [B, 2, K, K] float32: channel 0 is Mp, channel 1 is Ma.
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must have shape [B, K, H, W], got {tuple(heatmaps.shape)}")
    _check_threshold(threshold)
    activation = activation or "identity"
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be None or one of {ACTIVATIONS}, got {activation!r}")
    b, k, h, w = heatmaps.shape
    maps = heatmaps.reshape(b * k, h, w)
    if maps.device.type == "cpu":
        col_mass, row_mass = _pruned_marginals(maps, threshold, activation)
    else:
        col_mass, row_mass = _masked_marginals(_activate(maps, activation), threshold)
    return affinities_from_marginals(col_mass.view(b, k, w), row_mass.view(b, k, h))


@torch.no_grad()
def target_topology_features(
    landmarks: torch.Tensor,
    codec: GaussianHeatmapCodec,
    threshold: float,
    heatmaps: torch.Tensor | None = None,
) -> torch.Tensor:
    """``topology_features(codec.encode(landmarks), threshold)`` from a small window around each landmark.

    A codec Gaussian (peak 1, per-axis factors <= 1) reaches ``threshold`` only within ``codec.support_radius``
    of its centre along each axis, so its mask lies inside the window ``codec.window`` returns, whose outer ring is
    below the threshold; absent (NaN) landmarks, landmarks near or outside the border and the codec's stride are
    handled as ``encode`` handles them. The masked window is summed into the same marginals as the full-resolution
    extractor and goes through the same code from there, so the features are the same bit for bit wherever the
    window values are (see the module docstring): O(K (2r + 3)^2) work per image instead of O(K H W).

    Args:
        landmarks: [B, K, 2] landmarks in input pixels (x = column, y = row), NaN = absent: the ones the targets
            were encoded from.
        codec: the codec that encoded (or would encode) the targets.
        threshold: the mask threshold (as ``topology_features``), > 0.
        heatmaps: the target heatmaps [B, K, H, W] if they exist: the window values are then read from them, so
            they are the targets' own values bit for bit (whatever device or vectorisation encoded them), and if a
            mask reaches a window's outer ring (the heatmaps are not this codec's Gaussians of these landmarks)
            the full-resolution ``topology_features(heatmaps)`` is returned instead. Without them the codec
            evaluates its Gaussians in the windows (the values of ``encode`` on the same device).

    Returns:
        [B, 2, K, K] float32, as ``topology_features``.
    """
    _check_threshold(threshold)
    landmarks = torch.as_tensor(landmarks)
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2:
        raise ValueError(f"landmarks must have shape [B, K, 2], got {tuple(landmarks.shape)}")
    b, k, _ = landmarks.shape
    h, w = codec.heatmap_size
    if heatmaps is not None and tuple(heatmaps.shape) != (b, k, h, w):
        raise ValueError(
            f"heatmaps must be the codec's [B, K, H, W] = {(b, k, h, w)} maps of the landmarks, got "
            f"{tuple(heatmaps.shape)}"
        )
    half = math.floor(codec.support_radius(threshold) + 0.5 + 1e-3) + 1  # the ring lies beyond the support radius
    if 2 * half + 1 >= max(h, w):  # a window as large as the map: nothing to save
        return topology_features(codec.encode(landmarks) if heatmaps is None else heatmaps, threshold)
    if heatmaps is not None:
        landmarks = landmarks.to(heatmaps.device)
    rows, cols, values = codec.window(landmarks, half)  # [B, K, S], [B, K, S], [B, K, S, S]
    inside_r, inside_c = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    if heatmaps is not None:  # the targets' own values in the windows
        index = (rows[..., :, None] * w + cols[..., None, :]).view(b * k, -1)
        values = heatmaps.reshape(b * k, h * w).gather(1, index).view(values.shape)
    present = codec.heatmap_coords(landmarks)[1]  # as encode decides it (after the float32 cast)
    inside = inside_r[..., :, None] & inside_c[..., None, :] & present[..., None, None]
    kept = F.threshold(torch.where(inside, values.float(), 0.0), _below(threshold), 0.0)
    if heatmaps is not None:
        ring = torch.cat([kept[..., [0, -1], :].flatten(2), kept[..., [0, -1]].flatten(2)], -1)
        if bool((ring != 0).any()):  # a mask may reach beyond its window: not this codec's targets
            return topology_features(heatmaps, threshold)
    kept = kept.double()
    f64 = {"dtype": torch.float64, "device": kept.device}
    col_mass = torch.zeros(b, k, w, **f64).scatter_add_(-1, cols, kept.sum(-2))  # clamped duplicates add 0
    row_mass = torch.zeros(b, k, h, **f64).scatter_add_(-1, rows, kept.sum(-1))
    return affinities_from_marginals(col_mass, row_mass)


def affinities_from_marginals(col_mass: torch.Tensor, row_mass: torch.Tensor) -> torch.Tensor:
    """The affinities [B, 2, K, K] (float32) from the masked marginals: columns [B, K, W], rows [B, K, H].

    ``col_mass[b, k, x]`` is the sum of the masked responses of map (b, k) in column x, ``row_mass[b, k, y]`` in
    row y; a landmark with no mass is absent. Computed in float64 (see ``topology_features``).
    """
    b, k, w = col_mass.shape
    h = row_mass.shape[-1]
    col_mass, row_mass = col_mass.double(), row_mass.double()
    f64 = {"dtype": torch.float64, "device": col_mass.device}
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


def _check_threshold(threshold: float) -> None:
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 (an all-zero heatmap must count as absent), got {threshold}")


def _below(threshold: float) -> float:
    """The largest float32 below float32(threshold): ``F.threshold(x, below)`` keeps x >= float32(threshold)."""
    return float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))


def _activate(maps: torch.Tensor, activation: str, out: torch.Tensor | None = None) -> torch.Tensor:
    """The maps of raw outputs (in their own dtype, as ``HeatmapLoss.activate`` makes them)."""
    if activation == "identity":
        return maps if out is None else out.copy_(maps)
    return torch.sigmoid(maps, out=out)


def _pick_level(threshold: float, activation: str) -> float | None:
    """A level on the raw outputs below which no activated response reaches the threshold (None: pick all rows).

    For sigmoid it lies 0.01 below ``logit(threshold)``, far more than the float32 rounding of sigmoid there (and
    below ``logit(1 - 1e-5)`` for thresholds closer to 1, where the float32 sigmoid of a finite output can be 1).
    """
    if activation == "identity":
        return _below(threshold)
    if threshold < 1e-30:  # sigmoid's float32 values reach such thresholds at outputs near its underflow
        return None
    t = min(threshold, 1 - 1e-5)
    return math.log(t / (1 - t)) - 0.01


def _masked_marginals(
    maps: torch.Tensor, threshold: float, activation: str = "identity"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Column and row sums [N, W], [N, H] (float64) of ``m * (m >= threshold)`` over maps [N, H, W]: every pixel.

    With ``activation`` the maps are ``m = activation(maps)`` (CPU only; on a GPU the caller activates).
    """
    n, h, w = maps.shape
    below = _below(threshold)  # F.threshold keeps x where x > below; for float32 x that is x >= float32(threshold)
    if maps.device.type != "cpu":
        kept = F.threshold(maps.float(), below, 0.0)
        return kept.sum(1, dtype=torch.float64), kept.sum(2, dtype=torch.float64)
    f64 = {"dtype": torch.float64, "device": maps.device}
    cols, rows = torch.empty(n, w, **f64), torch.empty(n, h, **f64)
    block = max(1, _CPU_BLOCK_BYTES // (8 * h * w))
    buffer = torch.empty(min(block, n), h, w, **f64)  # one buffer for all blocks: no fresh memory per block
    activated = None if activation == "identity" else torch.empty(buffer.shape, dtype=maps.dtype)
    for start in range(0, n, block):  # blocks of whole maps, not a loop over landmarks
        part = maps[start : start + block]
        if activated is not None:
            part = _activate(part, activation, out=activated[: part.shape[0]])
        kept = buffer[: part.shape[0]].copy_(part)  # float32 -> float64 is exact; the comparison too
        torch.threshold_(kept, below, 0.0)
        torch.sum(kept, 1, out=cols[start : start + part.shape[0]])
        torch.sum(kept, 2, out=rows[start : start + part.shape[0]])
    return cols, rows


def _pruned_marginals(
    maps: torch.Tensor, threshold: float, activation: str = "identity"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``_masked_marginals`` over the rows whose maximum reaches the threshold only (the others add nothing).

    One max pass over the rows (a read) picks them, on the raw outputs with an ``activation`` (monotonic); NaN rows
    are kept, so that NaN responses count as they do in the dense pass. Falls back to the dense pass when more than
    ``_PRUNE_MAX_FRACTION`` of the rows are picked.
    """
    n, h, w = maps.shape
    level = _pick_level(threshold, activation)
    if level is None:
        return _masked_marginals(maps, threshold, activation)
    flat = maps.reshape(n * h, w)
    peaks = flat.amax(1).float()
    picked = ((peaks > level) | peaks.isnan()).nonzero().squeeze(1)
    if picked.numel() > _PRUNE_MAX_FRACTION * n * h:
        return _masked_marginals(maps, threshold, activation)
    below = _below(threshold)
    f64 = {"dtype": torch.float64, "device": maps.device}
    col_mass = torch.zeros(n, w, **f64)
    row_mass = torch.zeros(n * h, **f64)
    block = max(1, _CPU_BLOCK_BYTES // (8 * w))
    rows_in = torch.empty(min(block, picked.numel()), w, dtype=flat.dtype, device=flat.device)
    rows64 = torch.empty(rows_in.shape, **f64)
    for part in picked.split(block):  # blocks of rows, in two buffers: no fresh memory per block
        m = part.numel()
        selected = torch.index_select(flat, 0, part, out=rows_in[:m])
        if activation != "identity":
            selected = _activate(selected, activation, out=selected)
        kept = rows64[:m].copy_(selected)  # float32 -> float64 is exact; the comparison too
        torch.threshold_(kept, below, 0.0)
        row_mass.index_copy_(0, part, kept.sum(1))
        col_mass.index_add_(0, part // h, kept)
    return col_mass, row_mass.view(n, h)
