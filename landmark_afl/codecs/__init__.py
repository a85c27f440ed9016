"""Heatmap codecs: one object encodes training targets and decodes predictions, so the two cannot drift apart."""

from landmark_afl.codecs.gaussian_heatmap import GaussianHeatmapCodec

__all__ = ["GaussianHeatmapCodec"]
