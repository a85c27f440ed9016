"""A small CNN for tiny images (scikit-learn's 8 x 8 digits): 66k parameters at width 32, fast on a CPU."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Two conv-BN-ReLU pairs at full resolution, a 2 x 2 max pool, two more at half, a global pool, a linear layer.

    Images [B, in_channels, H, W] (H, W >= 2; 8 x 8 for the digits) -> logits [B, C].

    Args:
        num_classes: C.
        width: channels of the first pair; the second pair has twice as many.
        dropout: dropout before the classifier.
        in_channels: input channels (1 for grey scans).

    Example:
        >>> SmallCNN(num_classes=10)(torch.randn(4, 1, 8, 8)).shape
        torch.Size([4, 10])
    """

    def __init__(self, num_classes: int = 10, width: int = 32, dropout: float = 0.1, in_channels: int = 1) -> None:
        super().__init__()
        if width < 1 or num_classes < 1:
            raise ValueError(f"width and num_classes must be >= 1, got width={width}, num_classes={num_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.features = nn.Sequential(
            _conv_bn(in_channels, width),
            _conv_bn(width, width),
            nn.MaxPool2d(2),
            _conv_bn(width, 2 * width),
            _conv_bn(2 * width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(), nn.Linear(2 * width, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or min(x.shape[-2:]) < 2:
            raise ValueError(f"SmallCNN expects images [B, {self.in_channels}, H >= 2, W >= 2], got {tuple(x.shape)}")
        return self.head(self.features(x))
