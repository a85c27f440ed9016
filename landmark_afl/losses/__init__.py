"""Per-sample base losses for heatmaps (the L[b] that AFL re-weights)."""

from landmark_afl.losses.heatmap import HEATMAP_LOSSES, HeatmapLoss, heatmap_loss

__all__ = ["HEATMAP_LOSSES", "HeatmapLoss", "heatmap_loss"]
