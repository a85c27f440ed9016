import pytest
import torch
from torch import nn

from landmark_afl.afl import (
    AdversarialFocalLoss,
    AFLConfig,
    ProbabilityCritic,
    TopologyCritic,
    adversarial_focal_loss,
    critic_loss,
    difficulty_scores,
    gradient_penalty,
    topology_features,
)


class ConstantCritic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(float(c)))

    def forward(self, x):
        return self.c.expand(x.shape[0])


class LinearCritic(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.lin = nn.Linear(n, 1)

    def forward(self, x):
        return self.lin(x.flatten(1)).squeeze(-1)


def test_constant_critic_scales_loss_and_gradient_by_sigmoid_minus_c():
    c = 0.7
    critic = ConstantCritic(c)
    pred = torch.randn(3, 4, requires_grad=True)
    target = torch.randn(3, 4)
    per_sample = ((pred - target) ** 2).mean(1)
    scores = difficulty_scores(critic, pred)
    afl = adversarial_focal_loss(per_sample, scores)
    s = torch.sigmoid(torch.tensor(-c))
    assert afl.item() == pytest.approx((s * per_sample.mean()).item(), rel=1e-6)
    (grad_afl,) = torch.autograd.grad(afl, pred, retain_graph=True)
    (grad_base,) = torch.autograd.grad(per_sample.mean(), pred)
    torch.testing.assert_close(grad_afl, s * grad_base)


def test_mean_is_over_weighted_losses_not_scores_first():
    losses = torch.tensor([1.0, 3.0])
    scores = torch.tensor([0.9, 0.1])
    assert adversarial_focal_loss(losses, scores).item() == pytest.approx((0.9 + 0.3) / 2)
    assert adversarial_focal_loss(losses, scores, reduction="none").tolist() == pytest.approx([0.9, 0.3])
    with pytest.raises(ValueError, match=r"\[B\]"):
        adversarial_focal_loss(losses, scores[:1])


def test_no_gradient_reaches_the_critic_through_afl():
    critic = TopologyCritic()
    afl = AdversarialFocalLoss(critic, lambda m: topology_features(m, 0.5))
    afl.eval()  # no critic update: only the AFL path
    pred = torch.rand(2, 5, 16, 16, requires_grad=True)
    target = torch.rand(2, 5, 16, 16)
    per_sample = ((pred - target) ** 2).flatten(1).mean(1)
    out = afl(pred, target, per_sample)
    out["loss"].backward()
    assert all(p.grad is None for p in critic.parameters())
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_gradient_penalty_of_linear_critic_is_lam_times_norm_minus_one_squared():
    critic = LinearCritic(2 * 3 * 3)
    real, fake = torch.rand(4, 2, 3, 3), torch.rand(4, 2, 3, 3)
    gp = gradient_penalty(critic, real, fake, lam=10.0)
    w_norm = critic.lin.weight.norm()
    assert gp.item() == pytest.approx((10.0 * (w_norm - 1) ** 2).item(), rel=1e-5)
    gp.backward()  # differentiable w.r.t. the critic's weights
    expected = 10.0 * 2 * (w_norm - 1) * critic.lin.weight / w_norm
    torch.testing.assert_close(critic.lin.weight.grad, expected.detach())


def test_critic_loss_formula():
    critic = LinearCritic(4)
    real, fake = torch.rand(5, 4), torch.rand(5, 4)
    torch.manual_seed(0)
    loss, parts = critic_loss(critic, real, fake, lam=10.0)
    torch.manual_seed(0)
    gp = gradient_penalty(critic, real, fake, lam=10.0)
    expected = (-critic(real)).mean() - (-critic(fake)).mean() + gp
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    drift_loss, _ = critic_loss(critic, real, fake, lam=0.0, drift=0.5)
    no_drift, _ = critic_loss(critic, real, fake, lam=0.0)
    assert drift_loss.item() - no_drift.item() == pytest.approx(0.5 * (critic(real) ** 2).mean().item(), rel=1e-5)


def test_critic_sizes_and_shapes():
    critic = TopologyCritic()
    n = sum(p.numel() for p in critic.parameters())
    assert 5_000 <= n <= 15_000  # the paper's critic has ~9.7k parameters
    assert critic(torch.rand(3, 2, 36, 36)).shape == (3,)
    assert critic(torch.rand(3, 2, 19, 19)).shape == (3,)
    mlp = ProbabilityCritic(100)
    assert mlp(torch.softmax(torch.randn(3, 100), -1)).shape == (3,)
    with pytest.raises(ValueError, match="100"):
        mlp(torch.rand(3, 10))


def test_critic_learns_to_separate_real_from_fake():
    torch.manual_seed(0)
    critic = TopologyCritic()
    afl = AdversarialFocalLoss(critic, lambda m: topology_features(m, 0.5))
    afl.optimizer.param_groups[0]["lr"] = 1e-3
    target = torch.zeros(8, 4, 16, 16)
    for k, (r, c) in enumerate([(3, 3), (3, 12), (12, 3), (12, 12)]):
        target[:, k, r, c] = 1.0
    pred = target.clone()
    pred[:4, 1] = 0.0  # half the batch misses a landmark
    per_sample = torch.ones(8)
    for _ in range(150):
        out = afl(pred, target, per_sample)
    scores = out["scores"]
    assert scores[:4].mean() > scores[4:].mean() + 0.05  # the missed-landmark samples are scored harder
    afl.eval()
    before = [p.clone() for p in critic.parameters()]
    afl(pred, target, per_sample)
    assert all(torch.equal(a, b) for a, b in zip(before, critic.parameters(), strict=True))


def test_centring_anchors_real_scores_at_zero_without_changing_the_critic_objective():
    torch.manual_seed(0)
    real, fake = torch.rand(6, 2, 8, 8), torch.rand(6, 2, 8, 8) * 0.5
    plain = TopologyCritic()
    centred = TopologyCritic()
    centred.load_state_dict(plain.state_dict())
    afl_plain = AdversarialFocalLoss(plain, lambda m: m, AFLConfig())
    afl_centred = AdversarialFocalLoss(centred, lambda m: m, AFLConfig(critic_center=True))
    for _ in range(5):
        torch.manual_seed(1)
        afl_plain.update_critic(real, fake)
        torch.manual_seed(1)
        afl_centred.update_critic(real, fake)
    assert centred(real).mean().abs() < 1e-5
    # the same critic up to a constant: identical score differences, so identical WGAN-GP training
    torch.testing.assert_close(centred(fake) - centred(real), plain(fake) - plain(real), atol=1e-5, rtol=1e-4)
    # a perfect prediction scores 0.5 once centred
    assert difficulty_scores(centred, real).mean().item() == pytest.approx(0.5, abs=1e-5)
