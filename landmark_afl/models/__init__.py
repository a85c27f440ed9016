"""Landmark detection models."""

from landmark_afl.models.fpn import ModelConfig, PretrainedWeightsError, build_model

__all__ = ["ModelConfig", "PretrainedWeightsError", "build_model"]
