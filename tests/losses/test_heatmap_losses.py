import pytest
import torch
import torch.nn.functional as F

from landmark_afl.losses import HEATMAP_LOSSES, HeatmapLoss
from landmark_afl.losses.heatmap import bce_loss, dice_loss, focal_loss, mse_loss


@pytest.mark.parametrize("name", sorted(HEATMAP_LOSSES))
def test_every_loss_is_per_sample_and_differentiable(name):
    loss = HeatmapLoss(name)
    pred = torch.randn(3, 4, 8, 8, requires_grad=True)
    target = torch.rand(3, 4, 8, 8)
    per_sample = loss(pred, target)
    assert per_sample.shape == (3,)
    per_sample.sum().backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    # sample b's loss depends on sample b only
    single = loss(pred[1:2].detach(), target[1:2])
    assert single.item() == pytest.approx(per_sample[1].item(), rel=1e-5)


def test_mse_and_focal_reduce_to_references():
    pred, target = torch.randn(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    assert mse_loss(pred, target, "mean").item() == pytest.approx(F.mse_loss(pred, target).item(), rel=1e-6)
    torch.testing.assert_close(focal_loss(pred, target, "none", gamma=0.0), bce_loss(pred, target, "none"))


def test_dice_matches_hand_formula():
    pred, target = torch.randn(2, 3, 6, 6), torch.rand(2, 3, 6, 6)
    p = torch.sigmoid(pred)
    dice = 1 - (2 * (p * target).sum((2, 3)) + 1e-5) / (p.sum((2, 3)) + target.sum((2, 3)) + 1e-5)
    torch.testing.assert_close(dice_loss(pred, target, "sample"), dice.mean(1), rtol=1e-5, atol=1e-6)


def test_unknown_loss_and_shape_mismatch():
    with pytest.raises(ValueError, match="Did you mean 'mse'"):
        HeatmapLoss("mse2")
    with pytest.raises(ValueError, match=r"\(2, 3, 5, 5\)"):
        mse_loss(torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 4, 5))


def test_weighted_mse_reduces_to_mse_and_weights_the_peaks():
    from landmark_afl.losses.heatmap import weighted_mse_loss

    pred, target = torch.randn(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    torch.testing.assert_close(weighted_mse_loss(pred, target, "none", fg_weight=0.0), mse_loss(pred, target, "none"))
    expected = ((1 + 10.0 * target) * (pred - target) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(weighted_mse_loss(pred, target, "sample"), expected)


@pytest.mark.parametrize("name", sorted(HEATMAP_LOSSES))
def test_landmark_reduction_is_the_mean_over_each_map(name):
    loss = HeatmapLoss(name)
    pred, target = torch.randn(3, 4, 8, 8), torch.rand(3, 4, 8, 8)
    per_landmark = loss(pred, target, reduction="landmark")
    assert per_landmark.shape == (3, 4)
    torch.testing.assert_close(per_landmark.mean(1), loss(pred, target), rtol=1e-5, atol=1e-7)
    for k in range(4):  # landmark k's loss is the loss of its map alone
        alone = HeatmapLoss(name)(pred[:, k : k + 1], target[:, k : k + 1])
        torch.testing.assert_close(per_landmark[:, k], alone, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="'landmark'"):
        loss(pred, target, reduction="pixel")
