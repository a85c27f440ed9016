"""FPN heatmap detector from segmentation-models-pytorch (smp).

The default encoder is ``resnet18``: on 2 CPU cores it has the fastest training step of the smp encoders measured
(0.52 s for 4 images at 256 px, NOTES.md), half the activation memory of efficientnet-b0 at 512 px, and plain
BatchNorm/ReLU layers that export cleanly to ONNX. Any smp encoder name works (``encoder=resnet34``...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from torch import nn


class PretrainedWeightsError(RuntimeError):
    """Pretrained encoder weights were asked for but cannot be fetched."""


@dataclass(frozen=True)
class ModelConfig:
    """What builds the detector (saved in every checkpoint).

    Attributes:
        encoder: any smp encoder name.
        in_channels: 1 for grey radiographs.
        num_landmarks: K output channels.
        encoder_weights: None (default: no download) or an smp weights name such as "imagenet".
        decoder_dropout: dropout in the FPN head.
    """

    encoder: str = "resnet18"
    in_channels: int = 1
    num_landmarks: int = 36
    encoder_weights: str | None = None
    decoder_dropout: float = 0.0


def build_model(cfg: ModelConfig) -> nn.Module:
    """smp FPN with K output channels at the input resolution (the x4 bilinear upsample of smp's FPN head).

    Example:
        >>> import torch
        >>> model = build_model(ModelConfig(num_landmarks=5))
        >>> model(torch.zeros(1, 1, 64, 64)).shape
        torch.Size([1, 5, 64, 64])
    """
    import segmentation_models_pytorch as smp

    valid = smp.encoders.get_encoder_names()
    if cfg.encoder not in valid:
        import difflib

        close = difflib.get_close_matches(cfg.encoder, valid, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown encoder {cfg.encoder!r}.{hint} Valid encoders: {', '.join(sorted(valid))}")
    if cfg.encoder_weights is not None and os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        raise PretrainedWeightsError(
            f"encoder_weights={cfg.encoder_weights!r} needs a download but HF_HUB_OFFLINE is set; "
            "use encoder_weights=None or pre-fetch the weights into the Hugging Face cache"
        )
    try:
        return smp.FPN(
            encoder_name=cfg.encoder,
            encoder_weights=cfg.encoder_weights,
            in_channels=cfg.in_channels,
            classes=cfg.num_landmarks,
            decoder_dropout=cfg.decoder_dropout,
            upsampling=4,
        )
    except (OSError, ConnectionError, RuntimeError) as err:
        if cfg.encoder_weights is None:
            raise
        raise PretrainedWeightsError(
            f"could not fetch {cfg.encoder_weights!r} weights for encoder {cfg.encoder!r} ({err}); train without "
            "them (encoder_weights=None) or run once with network access to fill the Hugging Face cache"
        ) from err


def check_input_size(size: tuple[int, int]) -> None:
    """FPN needs H and W divisible by 32 (five stride-2 stages)."""
    if size[0] % 32 or size[1] % 32:
        raise ValueError(
            f"input_size {tuple(size)} must be divisible by 32 in both axes for the FPN encoder; "
            f"e.g. {tuple(max(32, round(s / 32) * 32) for s in size)}"
        )


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["ModelConfig", "PretrainedWeightsError", "build_model", "check_input_size", "count_parameters"]
