"""Cross-entropy and focal loss against torch, a hand computation and the analytic gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landmark_afl.losses.classification import (
    CrossEntropyLoss,
    FocalLoss,
    classification_loss,
    cross_entropy,
    focal_loss,
)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 7, generator=g, dtype=torch.float64) * 3, torch.randint(0, 7, (16,), generator=g)


def test_cross_entropy_equals_torch(batch):
    logits, target = batch
    for reduction in ("none", "mean", "sum"):
        torch.testing.assert_close(
            cross_entropy(logits, target, reduction), F.cross_entropy(logits, target, reduction=reduction)
        )


def test_focal_with_gamma_zero_is_cross_entropy_values_and_gradients(batch):
    logits, target = batch
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    fl, ce = focal_loss(a, target, gamma=0.0), F.cross_entropy(b, target, reduction="none")
    torch.testing.assert_close(fl, ce)
    (fl * torch.arange(16)).sum().backward()
    (ce * torch.arange(16)).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_focal_matches_hand_computation(batch):
    logits, target = batch
    z = logits.numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    pt = p[np.arange(16), target.numpy()]
    for gamma in (0.5, 2.0, 5.0):
        expected = -((1 - pt) ** gamma) * np.log(pt)
        np.testing.assert_allclose(focal_loss(logits, target, gamma).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(focal_loss(logits, target, 2.0, "mean").item(), (-((1 - pt) ** 2) * np.log(pt)).mean())


def test_focal_gradient_matches_the_analytic_form(batch):
    logits, target = batch
    gamma = 2.0
    z = logits.clone().requires_grad_()
    focal_loss(z, target, gamma).sum().backward()
    # dFL/dz_j = [gamma (1 - p_t)^(gamma - 1) p_t log p_t - (1 - p_t)^gamma] (delta_jy - p_j)
    p = torch.softmax(logits, 1)
    pt = p.gather(1, target[:, None])
    onehot = F.one_hot(target, 7).double()
    expected = (gamma * (1 - pt) ** (gamma - 1) * pt * pt.log() - (1 - pt) ** gamma) * (onehot - p)
    torch.testing.assert_close(z.grad, expected)
    assert torch.autograd.gradcheck(lambda x: focal_loss(x, target[:4], 2.0), (logits[:4].clone().requires_grad_(),))


def test_focal_down_weights_easy_samples_relative_to_ce():
    logits = torch.tensor([[8.0, 0.0, 0.0], [0.2, 0.0, 0.0]])
    target = torch.tensor([0, 0])
    ratio = focal_loss(logits, target) / cross_entropy(logits, target)
    assert ratio[0] < 1e-6 and 0.3 < ratio[1] < 0.5  # (1 - p_t)^2


def test_stable_for_extreme_logits_and_float32_under_bf16():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], requires_grad=True)
    target = torch.tensor([1, 1])
    loss = focal_loss(logits, target)
    assert torch.isfinite(loss).all() and loss[1] == 0 and loss[0] > 1e3
    loss.sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert cross_entropy(logits.detach().bfloat16(), target).dtype == torch.float32


def test_modules_registry_and_errors(batch):
    logits, target = batch
    torch.testing.assert_close(FocalLoss(2.0)(logits, target), focal_loss(logits, target, 2.0))
    torch.testing.assert_close(CrossEntropyLoss("mean")(logits, target), cross_entropy(logits, target, "mean"))
    assert isinstance(classification_loss("focal", gamma=1.0), FocalLoss)
    with pytest.raises(ValueError, match=r"did you mean 'focal'"):
        classification_loss("focla")
    with pytest.raises(ValueError, match=r"\[B, C\] and target \[B\], got \(16, 7\) and \(15,\)"):
        cross_entropy(logits, target[:15])
    with pytest.raises(TypeError, match="integer class indices"):
        focal_loss(logits, target.double())
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(logits, target, "batch")
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        FocalLoss(-1.0)
