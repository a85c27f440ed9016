"""Wide ResNets against the paper's parameter counts, and the small digits CNN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from landmark_afl.models.small_cnn import SmallCNN
from landmark_afl.models.wrn import WideResNet


def _params(model: nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize(
    ("depth", "width", "num_classes", "millions"),
    # Zagoruyko and Komodakis (2016), Tables 4 and 5: WRN-28-10 36.5 M (CIFAR-100), WRN-40-4 8.9 M, WRN-16-8 11.0 M.
    [(28, 10, 100, 36.5), (40, 4, 10, 8.9), (16, 8, 10, 11.0)],
)
def test_parameter_counts_match_the_paper(depth, width, num_classes, millions):
    with torch.device("meta"):  # no memory, no initialisation cost
        model = WideResNet(num_classes, depth=depth, width=width)
    assert abs(_params(model) - millions) < 0.05


def test_structure_is_pre_activation_with_dropout_and_projection_shortcuts():
    model = WideResNet(100, depth=28, width=10, dropout=0.3)
    blocks = list(model.blocks)
    assert len(blocks) == 12  # 3 groups of (28 - 4) / 6
    assert [b.shortcut is not None for b in blocks].count(True) == 3  # first block of each group
    assert blocks[4].conv1.stride == (2, 2) and blocks[4].shortcut.kernel_size == (1, 1)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 12 and all(d.p == 0.3 for d in drops)
    assert model.blocks[0].bn1.num_features == 16 and model.fc.in_features == 640


def test_tiny_wrn_forward_backward_and_dropout_modes():
    torch.manual_seed(0)
    model = WideResNet(100, depth=10, width=1, dropout=0.3)
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 100)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))  # dropout active


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ValueError, match=r"6n \+ 4.*got 27"):
        WideResNet(10, depth=27)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        WideResNet(10, depth=10, dropout=1.0)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\], got \(3, 32, 32\)"):
        WideResNet(10, depth=10, width=1)(torch.randn(3, 32, 32))


def test_small_cnn_on_digits():
    model = SmallCNN(num_classes=10, width=32)
    assert 60_000 < sum(p.numel() for p in model.parameters()) < 70_000
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    with pytest.raises(ValueError, match=r"\[B, 1, H >= 2, W >= 2\], got \(5, 3, 8, 8\)"):
        model(torch.randn(5, 3, 8, 8))
