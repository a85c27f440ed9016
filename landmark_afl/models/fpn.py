"""FPN heatmap detector from segmentation-models-pytorch (smp).

The default encoder is ``resnet18``: on 2 CPU cores it has the fastest training step of the smp encoders measured
(0.52 s for 4 images at 256 px, NOTES.md), half the activation memory of efficientnet-b0 at 512 px, and plain
BatchNorm/ReLU layers that export cleanly to ONNX. Any smp encoder name works (``encoder=resnet34``...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
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
        head_bias: initial bias of the output layer (0 for regression losses, a negative logit for sigmoid ones).
        upsampling: the final bilinear upsampling of smp's FPN head: 4 returns maps at the input resolution, 1 the
            stride-4 maps (the top-down pose recipes' heatmaps at a quarter of the input, ~15 % cheaper).
    """

    encoder: str = "resnet18"
    in_channels: int = 1
    num_landmarks: int = 36
    encoder_weights: str | None = None
    decoder_dropout: float = 0.0
    head_bias: float = 0.0
    upsampling: int = 4


def build_model(cfg: ModelConfig) -> nn.Module:
    """smp FPN with K output channels at the input resolution (``upsampling=4``) or at stride 4 (``upsampling=1``).

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
    offline = cfg.encoder_weights is not None and (_hub_offline() or not _hub_reachable())
    try:
        if offline:  # use the local Hugging Face cache instead of ~40 s of retries
            import huggingface_hub.constants as hub_constants

            hub_constants.HF_HUB_OFFLINE = True
        model = smp.FPN(
            encoder_name=cfg.encoder,
            encoder_weights=cfg.encoder_weights,
            in_channels=cfg.in_channels,
            classes=cfg.num_landmarks,
            decoder_dropout=cfg.decoder_dropout,
            upsampling=cfg.upsampling,
        )
    except Exception as err:  # noqa: BLE001 - the hub raises many types when weights cannot be had
        if cfg.encoder_weights is None:
            raise
        where = "the hub is unreachable and they are not in the local cache" if offline else str(err)
        raise PretrainedWeightsError(
            f"could not load {cfg.encoder_weights!r} weights for encoder {cfg.encoder!r} ({where}); train without "
            "them (encoder_weights=None) or run once with network access to fill the Hugging Face cache"
        ) from err
    init_heatmap_head(model.segmentation_head[0], cfg.head_bias)
    model.segmentation_head = Float32Head(*model.segmentation_head)
    return model


class Float32Head(nn.Sequential):
    """smp's segmentation head (output conv, bilinear upsampling, activation) run in float32 under autocast.

    Under bf16 autocast the heatmaps would carry 8 significant bits (steps of 1/256 near the 0.5 detection
    threshold), enough to move a peak across the threshold and to coarsen the sub-pixel refinement; the head is
    ~2 % of the network's work, so it stays float32 and only the encoder and the FPN decoder run in bf16. The
    children and their state_dict keys (``segmentation_head.0.weight``...) are smp's own.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float())


def init_heatmap_head(conv: nn.Conv2d, bias: float = 0.0) -> None:
    """Start from (almost) empty heatmaps: tiny output weights and a constant bias.

    smp's default head starts with outputs of magnitude ~1-3 against targets that are 0 on >99 % of the pixels;
    measured here, a from-scratch FPN then spends its first ~300 steps shrinking that noise before it starts to
    localise. With near-zero outputs it localises from the start. For sigmoid losses the bias is the logit of a
    small prior (CenterNet's -2.19, Lin et al.'s focal-loss prior), set through ``ModelConfig.head_bias``.
    """
    nn.init.normal_(conv.weight, std=1e-3)
    nn.init.constant_(conv.bias, bias)


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false")


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def check_input_size(size: tuple[int, int]) -> None:
    """FPN needs H and W positive and divisible by 32 (five stride-2 stages)."""
    if size[0] <= 0 or size[1] <= 0 or size[0] % 32 or size[1] % 32:
        raise ValueError(
            f"input_size {tuple(size)} must be divisible by 32 in both axes for the FPN encoder; "
            f"e.g. {tuple(max(32, round(s / 32) * 32) for s in size)}"
        )


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["ModelConfig", "PretrainedWeightsError", "build_model", "check_input_size", "count_parameters"]
