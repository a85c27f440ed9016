"""AFL critics: small WGAN-GP discriminators scoring predictions (higher = more like the ground truth)."""

from __future__ import annotations

import torch
from torch import nn


class TopologyCritic(nn.Module):
    """Convolutional critic over topology features [B, 2, K, K] -> score [B] (about 9k parameters).

    Three 3x3 convolutions (2 -> 16 -> 24 -> 24 channels, the last two with stride 2) with LeakyReLU(0.2), a global
    average pool and a linear read-out. No normalisation layers: the WGAN-GP penalty is taken per sample, which
    batch statistics would break (Gulrajani et al., 2017). The global pool makes it work for any K.

    Example:
        >>> critic = TopologyCritic()
        >>> critic(torch.rand(4, 2, 36, 36)).shape
        torch.Size([4])
    """

    def __init__(self, in_channels: int = 2, widths: tuple[int, int, int] = (16, 24, 24)) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(c3, 1)

    @property
    def output_bias(self) -> nn.Parameter:
        """The bias of the read-out: adding c to it adds c to every score."""
        return self.head.bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4 or features.shape[-1] != features.shape[-2]:
            raise ValueError(f"TopologyCritic expects [B, C, K, K] features, got {tuple(features.shape)}")
        return self.head(self.features(features)).squeeze(-1)


class ProbabilityCritic(nn.Module):
    """MLP critic over class-probability vectors [B, C] -> score [B], for classification tasks.

    Example:
        >>> critic = ProbabilityCritic(num_classes=100)
        >>> critic(torch.softmax(torch.randn(4, 100), -1)).shape
        torch.Size([4])
    """

    def __init__(self, num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(nn.Linear(num_classes, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    @property
    def output_bias(self) -> nn.Parameter:
        """The bias of the read-out: adding c to it adds c to every score."""
        return self.net[-1].bias

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        if probs.ndim != 2 or probs.shape[1] != self.num_classes:
            raise ValueError(
                f"ProbabilityCritic expects [B, {self.num_classes}] probabilities, got {tuple(probs.shape)}"
            )
        return self.net(probs).squeeze(-1)
