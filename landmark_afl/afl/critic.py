"""AFL critics: small WGAN-GP discriminators scoring predictions (higher = more like the ground truth)."""

from __future__ import annotations

import torch
from torch import nn


def affinity_rows(features: torch.Tensor) -> torch.Tensor:
    """Row k of every channel of the affinities, one row per landmark: [B, C, K, K] -> [B * K, C, K].

    Row ``b * K + k`` holds ``features[b, :, k, :]`` (landmark k's affinities to every landmark j).
    """
    if features.ndim != 4 or features.shape[-1] != features.shape[-2]:
        raise ValueError(f"affinity_rows expects [B, C, K, K] features, got {tuple(features.shape)}")
    b, c, k, _ = features.shape
    return features.transpose(1, 2).reshape(b * k, c, k)


class RowCritic(nn.Module):
    """Per-landmark critic: one row of the affinities [N, C, K] -> score [N] (about 900 parameters).

    Two 1-D convolutions along the row (2 -> 16 -> 16 channels, the second with stride 2) with LeakyReLU(0.2), an
    average pool over the row and a linear read-out, shared by all landmarks, so it works for any K. Each row is
    scored on its own (no normalisation, nothing mixes rows): the gradient of landmark k's score lives in row k only,
    which is what makes the per-landmark gradient penalty a single backward pass (``landmark_critic_loss``).

    Example:
        >>> RowCritic()(torch.rand(4 * 19, 2, 19)).shape
        torch.Size([76])
    """

    def __init__(self, in_channels: int = 2, widths: tuple[int, int] = (16, 16)) -> None:
        super().__init__()
        c1, c2 = widths
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, c1, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv1d(c1, c2, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(c2, 1)

    @property
    def output_bias(self) -> nn.Parameter:
        """The bias of the read-out: adding c to it adds c to every landmark's score."""
        return self.head.bias

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        if rows.ndim != 3 or rows.shape[1] != self.in_channels:
            raise ValueError(f"RowCritic expects [N, {self.in_channels}, K] rows, got {tuple(rows.shape)}")
        return self.head(self.features(rows)).squeeze(-1)


class TopologyCritic(nn.Module):
    """Convolutional critic over topology features [B, 2, K, K] -> score [B] (about 9k parameters).

    Three 3x3 convolutions (2 -> 16 -> 24 -> 24 channels, the last two with stride 2) with LeakyReLU(0.2), a global
    average pool and a linear read-out. No normalisation layers: the WGAN-GP penalty is taken per sample, which
    batch statistics would break (Gulrajani et al., 2017). The global pool makes it work for any K.

    With ``landmark_head=True`` it also scores each landmark from its row of the affinities (a ``RowCritic``,
    ``landmark_scores``: [B, 2, K, K] -> [B, K]) for per-landmark AFL; the sample score does not depend on it.

    Example:
        >>> critic = TopologyCritic(landmark_head=True)
        >>> feats = torch.rand(4, 2, 36, 36)
        >>> critic(feats).shape, critic.landmark_scores(feats).shape
        (torch.Size([4]), torch.Size([4, 36]))
    """

    def __init__(
        self, in_channels: int = 2, widths: tuple[int, int, int] = (16, 24, 24), landmark_head: bool = False
    ) -> None:
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
        self.landmark_head = RowCritic(in_channels) if landmark_head else None

    @property
    def output_bias(self) -> nn.Parameter:
        """The bias of the read-out: adding c to it adds c to every score."""
        return self.head.bias

    @property
    def landmark_output_bias(self) -> nn.Parameter:
        """The bias of the landmark head's read-out: adding c to it adds c to every landmark's score."""
        if self.landmark_head is None:
            raise ValueError(
                "this TopologyCritic has no landmark head; build it with TopologyCritic(landmark_head=True)"
            )
        return self.landmark_head.output_bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4 or features.shape[-1] != features.shape[-2]:
            raise ValueError(f"TopologyCritic expects [B, C, K, K] features, got {tuple(features.shape)}")
        return self.head(self.features(features)).squeeze(-1)

    def landmark_scores(self, features: torch.Tensor) -> torch.Tensor:
        """Per-landmark scores [B, K]: landmark k scored from row k of both affinity channels."""
        if self.landmark_head is None:
            raise ValueError(
                "this TopologyCritic has no landmark head; build it with TopologyCritic(landmark_head=True)"
            )
        rows = affinity_rows(features)  # checks [B, C, K, K]
        return self.landmark_head(rows).view(features.shape[0], features.shape[-1])


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
