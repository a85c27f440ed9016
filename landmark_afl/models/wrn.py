"""Wide residual networks (Zagoruyko and Komodakis, BMVC 2016) for 32 x 32 images: WRN-28-10 and its kin.

WRN-d-k has three groups of n = (d - 4) / 6 basic blocks with 16k, 32k and 64k channels (strides 1, 2, 2) after a
3 x 3 stem of 16 channels, then BN-ReLU, a global average pool and a linear classifier. Each block is
pre-activation as in the authors' reference code: ``BN-ReLU-conv3x3(stride)-BN-ReLU-dropout-conv3x3``; where the
width or stride changes, the shortcut is a 1 x 1 convolution of the pre-activated input, else the identity.
WRN-28-10 with dropout 0.3 has 36.5 M parameters (the paper's Table 4 for CIFAR-100).
"""

from __future__ import annotations

import torch
from torch import nn


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = torch.relu(self.bn1(x))
        y = self.conv1(o)
        y = self.conv2(self.dropout(torch.relu(self.bn2(y))))
        return y + (x if self.shortcut is None else self.shortcut(o))


class WideResNet(nn.Module):
    """WRN-depth-width: images [B, 3, H, W] (H, W multiples of 4; 32 for CIFAR) -> logits [B, C].

    Args:
        num_classes: C.
        depth: total depth d, of the form 6n + 4 (10, 16, 22, 28, 40, ...).
        width: widening factor k.
        dropout: dropout probability between the two convolutions of every block (0.3 in the paper).
        in_channels: input channels.

    Example:
        >>> model = WideResNet(num_classes=100, depth=10, width=1)
        >>> model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 100])
    """

    def __init__(
        self, num_classes: int = 100, depth: int = 28, width: int = 10, dropout: float = 0.3, in_channels: int = 3
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        if width < 1 or num_classes < 1:
            raise ValueError(f"width and num_classes must be >= 1, got width={width}, num_classes={num_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        n = (depth - 4) // 6
        widths = (16, 16 * width, 32 * width, 64 * width)
        self.in_channels = in_channels
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        blocks = []
        for g, stride in enumerate((1, 2, 2)):
            for i in range(n):
                blocks.append(_Block(widths[g] if i == 0 else widths[g + 1], widths[g + 1], stride if i == 0 else 1,
                                     dropout))  # fmt: skip
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"WideResNet expects images [B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        y = torch.relu(self.bn(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))
