"""The AFL variants of AFLConfig, each against a hand computation or a loop implementation."""

import copy
import math
import warnings

import pytest
import torch
from torch import nn

from landmark_afl.afl import (
    AdversarialFocalLoss,
    AFLConfig,
    ProbabilityCritic,
    TopologyCritic,
    adversarial_focal_loss,
    afl_weights,
    critic_loss,
    difficulty_scores,
    landmark_critic_loss,
    topology_features,
)


class ConstantCritic(nn.Module):
    """d(x) = c[b] for the b-th sample of every batch (scores fixed by hand)."""

    def __init__(self, c):
        super().__init__()
        self.c = nn.Parameter(torch.as_tensor(c, dtype=torch.float32))

    def forward(self, x):
        return self.c[: x.shape[0]]


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


# ---- focusing exponent and batch-normalised weights -------------------------------------------------------------


def test_focus_gamma_weights_by_hand():
    losses, scores = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.2, 0.5, 0.9])
    expected = (0.2**2 * 1 + 0.5**2 * 2 + 0.9**2 * 3) / 3
    assert adversarial_focal_loss(losses, scores, gamma=2.0).item() == pytest.approx(expected, rel=1e-6)
    assert adversarial_focal_loss(losses, scores, gamma=1.0).item() == pytest.approx((0.2 + 1.0 + 2.7) / 3, rel=1e-6)
    # gamma 0: the plain mean, loss and gradient (torchvision's focal-loss test: gamma 0 is the base loss)
    pred = torch.randn(3, 4, requires_grad=True)
    per_sample = (pred**2).mean(1)
    (g_afl,) = torch.autograd.grad(adversarial_focal_loss(per_sample, scores, gamma=0.0), pred, retain_graph=True)
    (g_base,) = torch.autograd.grad(per_sample.mean(), pred)
    torch.testing.assert_close(g_afl, g_base)


def test_normalized_weights_by_hand():
    losses, scores = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.2, 0.5, 0.9])
    mean_s = (0.2 + 0.5 + 0.9) / 3
    expected = (0.2 / mean_s * 1 + 0.5 / mean_s * 2 + 0.9 / mean_s * 3) / 3
    assert adversarial_focal_loss(losses, scores, normalize=True).item() == pytest.approx(expected, rel=1e-6)
    mean_s2 = (0.04 + 0.25 + 0.81) / 3
    torch.testing.assert_close(
        afl_weights(scores, gamma=2.0, normalize=True), torch.tensor([0.04, 0.25, 0.81]) / mean_s2
    )
    # equal scores of any level: the plain mean (the loss scale does not depend on s)
    for level in (0.01, 0.5, 0.99):
        same = torch.full((3,), level)
        assert adversarial_focal_loss(losses, same, normalize=True).item() == pytest.approx(2.0, rel=1e-6)
    # a saturated critic (every score 0) falls back to weights 1, not NaN
    assert afl_weights(torch.zeros(3), normalize=True).tolist() == [1.0, 1.0, 1.0]
    # per landmark the mean runs over B x K
    s2 = torch.tensor([[0.2, 0.4], [0.6, 0.8]])
    torch.testing.assert_close(afl_weights(s2, normalize=True), s2 / 0.5)


def test_weights_carry_no_gradient():
    scores = torch.tensor([0.3, 0.6], requires_grad=True)
    losses = torch.tensor([1.0, 2.0], requires_grad=True)
    adversarial_focal_loss(losses, scores, gamma=2.0, normalize=True).backward()
    assert scores.grad is None
    w = torch.tensor([0.09, 0.36]) / 0.225
    torch.testing.assert_close(losses.grad, w / 2)


def test_module_applies_gamma_and_normalization():
    c = [0.3, -1.2, 2.0]
    s = torch.tensor([_sigmoid(-x) for x in c])
    losses = torch.tensor([1.0, 4.0, 2.0])
    pred = torch.rand(3, 5)
    for cfg, w in [
        (AFLConfig(), s),
        (AFLConfig(focus_gamma=2.0), s**2),
        (AFLConfig(normalize_weights=True), s / s.mean()),
        (AFLConfig(focus_gamma=3.0, normalize_weights=True), s**3 / (s**3).mean()),
    ]:
        afl = AdversarialFocalLoss(ConstantCritic(c), lambda x: x, cfg).eval()
        out = afl(pred, pred, losses)
        assert out["loss"].item() == pytest.approx((w * losses).mean().item(), rel=1e-5)
        torch.testing.assert_close(out["scores"], s)  # the scores stay s, whatever the weights


# ---- per-landmark AFL ---------------------------------------------------------------------------------------------


def _landmark_maps(b=6, k=4, size=16, miss=None):
    maps = torch.zeros(b, k, size, size)
    spots = [(3, 3), (3, 12), (12, 3), (12, 12), (8, 8), (5, 10)]
    for j in range(k):
        r, c = spots[j % len(spots)]
        maps[:, j, r, c] = 1.0
        maps[:, j, r, c + 1] = 0.8
    if miss is not None:
        samples, landmark = miss
        maps[samples, landmark] = 0.0
    return maps


def test_per_landmark_loss_matches_a_loop_over_rows():
    torch.manual_seed(0)
    critic = TopologyCritic(landmark_head=True)
    afl = AdversarialFocalLoss(critic, lambda m: topology_features(m, 0.5), AFLConfig(per_landmark=True)).eval()
    target = _landmark_maps()
    pred = target.clone()
    pred[:2, 1] = 0.0
    pred[3, 2] *= 0.3
    losses = torch.rand(6, 4)
    out = afl(pred, target, losses)
    fake = topology_features(pred, 0.5)
    total, s_ref = 0.0, torch.zeros(6, 4)
    for b in range(6):
        for k in range(4):
            d = critic.landmark_head(fake[b, :, k, :].unsqueeze(0))  # landmark k's row, scored alone
            s_ref[b, k] = torch.sigmoid(-d).item()
            total += s_ref[b, k].item() * losses[b, k].item()
    assert out["loss"].item() == pytest.approx(total / 24, rel=1e-5)
    torch.testing.assert_close(out["landmark_scores"], s_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["scores"], s_ref.mean(1), rtol=1e-5, atol=1e-6)
    # with all weights 1 (gamma 0) it is the baseline: mean over K of L[b, k] is the per-sample loss
    flat = AdversarialFocalLoss(
        critic, lambda m: topology_features(m, 0.5), AFLConfig(per_landmark=True, focus_gamma=0)
    )
    assert flat.eval()(pred, target, losses)["loss"].item() == pytest.approx(losses.mean(1).mean().item(), rel=1e-6)


def test_landmark_gradient_penalty_matches_per_landmark_autograd_loop():
    torch.manual_seed(0)
    critic = TopologyCritic(landmark_head=True)
    b, k = 3, 5
    real, fake = torch.rand(b, 2, k, k), torch.rand(b, 2, k, k)
    torch.manual_seed(7)
    loss, parts = landmark_critic_loss(critic.landmark_head, real, fake, lam=10.0)
    # the reference: the same interpolates (a per (b, k) row, drawn as the penalty draws them), assembled into full
    # [B, 2, K, K] matrices, and one autograd call per (b, k) on the whole matrix
    torch.manual_seed(7)
    alpha = torch.rand(b * k, 1, 1).view(b, k, 1, 1)
    z = (alpha * real.transpose(1, 2) + (1 - alpha) * fake.transpose(1, 2)).transpose(1, 2).requires_grad_(True)
    scores = critic.landmark_scores(z)
    penalty = 0.0
    for i in range(b):
        for j in range(k):
            (grad,) = torch.autograd.grad(scores[i, j], z, retain_graph=True)
            penalty += (grad.norm() - 1) ** 2
    gp_ref = 10.0 * penalty / (b * k)
    assert parts["gp"].item() == pytest.approx(gp_ref.item(), rel=1e-4)
    d_real, d_fake = critic.landmark_scores(real), critic.landmark_scores(fake)
    expected = -d_real.mean() + d_fake.mean() + gp_ref
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert parts["wasserstein"].item() == pytest.approx((d_real.mean() - d_fake.mean()).item(), rel=1e-5)


def test_landmark_gradient_penalty_of_linear_row_critic():
    k = 6
    lin = nn.Linear(2 * k, 1)
    real, fake = torch.rand(4, 2, k, k), torch.rand(4, 2, k, k)
    _, parts = landmark_critic_loss(lambda rows: lin(rows.flatten(1)).squeeze(-1), real, fake, lam=10.0)
    assert parts["gp"].item() == pytest.approx((10.0 * (lin.weight.norm() - 1) ** 2).item(), rel=1e-5)


def test_per_landmark_critic_singles_out_the_missed_landmark():
    torch.manual_seed(0)
    afl = AdversarialFocalLoss(
        TopologyCritic(landmark_head=True), lambda m: topology_features(m, 0.5), AFLConfig(per_landmark=True)
    )
    afl.optimizer.param_groups[0]["lr"] = 1e-3
    target = _landmark_maps(b=8, k=4)
    pred = _landmark_maps(b=8, k=4, miss=(slice(0, 4), 1))  # half the batch misses landmark 1
    for _ in range(150):
        out = afl(pred, target, torch.ones(8, 4))
    s = out["landmark_scores"]
    assert s[:4, 1].mean() > s[:4, [0, 2, 3]].mean() + 0.05  # the missed landmark is scored harder
    assert s[:4, 1].mean() > s[4:, 1].mean() + 0.05  # than the same landmark where it was found
    assert {"landmark_gp", "landmark_wasserstein", "gp", "wasserstein"} <= set(out)


def test_per_landmark_needs_a_landmark_head_and_a_per_landmark_loss():
    with pytest.raises(ValueError, match="landmark head"):
        AdversarialFocalLoss(ProbabilityCritic(10), lambda p: p, AFLConfig(per_landmark=True))
    with pytest.raises(ValueError, match="landmark head"):
        AdversarialFocalLoss(TopologyCritic(), lambda m: m, AFLConfig(per_landmark=True))
    afl = AdversarialFocalLoss(TopologyCritic(landmark_head=True), lambda m: topology_features(m, 0.5),
                               AFLConfig(per_landmark=True))  # fmt: skip
    maps = _landmark_maps(b=2, k=4)
    with pytest.raises(ValueError, match=r"\[B, K\].*\(2,\)"):
        afl(maps, maps, torch.ones(2))
    with pytest.raises(ValueError, match=r"\(2, 3\).*K = 4"):
        afl(maps, maps, torch.ones(2, 3))
    plain = AdversarialFocalLoss(TopologyCritic(), lambda m: topology_features(m, 0.5))
    with pytest.raises(ValueError, match=r"\[B\].*\(2, 4\)"):
        plain(maps, maps, torch.ones(2, 4))


# ---- score anchoring ----------------------------------------------------------------------------------------------


def _twins(cfg, landmark_head=False):
    torch.manual_seed(0)
    plain = TopologyCritic(landmark_head=landmark_head)
    anchored = copy.deepcopy(plain)
    return (
        AdversarialFocalLoss(plain, lambda m: m, AFLConfig(per_landmark=landmark_head)),
        AdversarialFocalLoss(anchored, lambda m: m, cfg),
    )


@pytest.mark.parametrize("center_on", ["real", "fake", "both"])
def test_centering_anchors_the_chosen_mean_at_zero(center_on):
    real, fake = torch.rand(6, 2, 8, 8), torch.rand(6, 2, 8, 8) * 0.5
    afl_plain, afl_anchored = _twins(AFLConfig(critic_center=True, center_on=center_on))
    for _ in range(4):
        torch.manual_seed(1)
        afl_plain.update_critic(real, fake)
        torch.manual_seed(1)
        afl_anchored.update_critic(real, fake)
    d = afl_anchored.critic
    level = {"real": d(real).mean(), "fake": d(fake).mean(), "both": torch.cat([d(real), d(fake)]).mean()}
    assert level[center_on].abs() < 1e-5
    # the same critic up to a constant: the WGAN-GP training is unchanged
    p = afl_plain.critic
    torch.testing.assert_close(d(fake) - d(real), p(fake) - p(real), atol=1e-5, rtol=1e-4)
    if center_on == "fake":  # the batch's predictions score 0.5 on average (to first order)
        assert difficulty_scores(d, fake).mean().item() == pytest.approx(0.5, abs=0.02)


def test_center_rate_removes_that_fraction_of_the_level():
    real, fake = torch.rand(6, 2, 8, 8), torch.rand(6, 2, 8, 8) * 0.5
    afl_plain, afl_anchored = _twins(AFLConfig(critic_center=True, center_rate=0.25))
    torch.manual_seed(1)
    afl_plain.update_critic(real, fake)
    torch.manual_seed(1)
    afl_anchored.update_critic(real, fake)
    level = afl_plain.critic(real).mean().item()  # the level the update left, before any anchoring
    assert abs(level) > 1e-3
    assert afl_anchored.critic(real).mean().item() == pytest.approx(0.75 * level, rel=1e-4, abs=1e-6)


def test_centering_anchors_the_landmark_head_too():
    real, fake = torch.rand(4, 2, 6, 6), torch.rand(4, 2, 6, 6) * 0.5
    _, afl = _twins(AFLConfig(critic_center=True, per_landmark=True), landmark_head=True)
    for _ in range(3):
        afl.update_critic(real, fake)
    assert afl.critic(real).mean().abs() < 1e-5
    assert afl.critic.landmark_scores(real).mean().abs() < 1e-5


def test_per_landmark_critic_update_is_the_paper_update_plus_the_landmark_loss():
    real, fake = torch.rand(4, 2, 6, 6), torch.rand(4, 2, 6, 6) * 0.5
    afl_plain, afl_lm = _twins(AFLConfig(per_landmark=True), landmark_head=True)
    torch.manual_seed(3)
    out = afl_lm.update_critic(real, fake)
    torch.manual_seed(3)
    sample_loss, _ = critic_loss(copy.deepcopy(afl_plain.critic), real, fake)
    landmark_loss, _ = landmark_critic_loss(copy.deepcopy(afl_plain.critic).landmark_head, real, fake)
    assert out["critic_loss"].item() == pytest.approx((sample_loss + landmark_loss).item(), rel=1e-5)
    # the sample head trains exactly as in the paper's form (the landmark head is a separate branch)
    torch.manual_seed(3)
    afl_plain.update_critic(real, fake)
    torch.testing.assert_close(afl_lm.critic(real), afl_plain.critic(real))


# ---- the paper's form and option checks ---------------------------------------------------------------------------


def test_paper_variant_restores_the_paper_form():
    cfg = AFLConfig(variant="paper", focus_gamma=2.0, normalize_weights=True, per_landmark=True, critic_center=True)
    with pytest.warns(UserWarning, match="afl.focus_gamma=2.0"):
        resolved = cfg.resolved()
    paper = AFLConfig()
    for key in ("focus_gamma", "normalize_weights", "per_landmark", "critic_center", "critic_drift"):
        assert getattr(resolved, key) == getattr(paper, key)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert AFLConfig(variant="paper").resolved() == AFLConfig(variant="paper")  # nothing to override, no warning
        assert AFLConfig(focus_gamma=2.0).resolved().focus_gamma == 2.0  # custom: as set
    c = [0.3, -1.2]
    with pytest.warns(UserWarning):
        afl = AdversarialFocalLoss(ConstantCritic(c), lambda x: x, cfg).eval()
    out = afl(torch.rand(2, 3), torch.rand(2, 3), torch.tensor([1.0, 3.0]))
    assert out["loss"].item() == pytest.approx((_sigmoid(-0.3) * 1 + _sigmoid(1.2) * 3) / 2, rel=1e-5)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("variant", "focal"),
        ("center_on", "middle"),
        ("center_rate", 0.0),
        ("center_rate", 1.5),
        ("focus_gamma", -1.0),
        ("focus_gamma", float("nan")),
        ("threshold", 0.0),
        ("critic_lr", 0.0),
        ("critic_beta2", 1.0),
        ("gp_lambda", -1.0),
        ("critic_drift", -0.1),
        ("critic_steps", 0),
    ],
)
def test_bad_option_values_name_the_key(key, value):
    with pytest.raises(ValueError, match=rf"afl\.{key} must be"):
        AFLConfig(**{key: value})


def test_options_are_config_keys():
    from landmark_afl.engine.config import update_config
    from landmark_afl.recipes.landmarks import LandmarkConfig

    cfg = update_config(LandmarkConfig(), {"afl.focus_gamma": "2", "afl.per_landmark": "True", "afl.center_on": "both"})
    assert cfg.afl.focus_gamma == 2.0 and isinstance(cfg.afl.focus_gamma, float)
    assert cfg.afl.per_landmark is True and cfg.afl.center_on == "both"
    with pytest.raises(ValueError, match="afl.center_on must be 'real', 'fake', 'both'"):
        update_config(LandmarkConfig(), {"afl.center_on": "middle"})


def test_landmark_head_leaves_the_sample_score_alone():
    torch.manual_seed(0)
    with_head = TopologyCritic(landmark_head=True)
    without = TopologyCritic()
    missing = without.load_state_dict(with_head.state_dict(), strict=False)
    assert missing.missing_keys == [] and all(key.startswith("landmark_head.") for key in missing.unexpected_keys)
    feats = torch.rand(3, 2, 7, 7)
    torch.testing.assert_close(with_head(feats), without(feats))
    assert with_head.landmark_scores(feats).shape == (3, 7)
    with pytest.raises(ValueError, match="no landmark head"):
        without.landmark_scores(feats)


# ---- the landmark task --------------------------------------------------------------------------------------------


def _task(afl_cfg):
    from landmark_afl.codecs import GaussianHeatmapCodec
    from landmark_afl.losses import HeatmapLoss
    from landmark_afl.tasks.landmark import LandmarkTask

    torch.manual_seed(0)
    model = nn.Conv2d(1, 5, 3, padding=1)
    return LandmarkTask(model, GaussianHeatmapCodec((32, 32), sigma=2.0), HeatmapLoss("wmse"), afl=afl_cfg)


def _batch(task):
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(3, 5, 2, generator=g) * 24 + 4
    return {"image": torch.rand(3, 1, 32, 32, generator=g), "heatmaps": task.codec.encode(pts), "image_id": list("abc")}


def test_landmark_task_per_landmark_afl_weights_the_per_landmark_loss():
    task = _task(AFLConfig(per_landmark=True, threshold=0.05)).train()
    batch = _batch(task)
    critic_before = copy.deepcopy(task.afl.critic)
    out = task(batch)
    assert set(out) == {"loss", "log", "records"}
    raw = task.model(batch["image"])
    landmark_loss = task.loss(raw, batch["heatmaps"], reduction="landmark")
    s = difficulty_scores(critic_before.landmark_scores, topology_features(task.loss.activate(raw), 0.05))
    assert out["loss"].item() == pytest.approx((s * landmark_loss).mean().item(), rel=1e-5)
    records = out["records"]
    assert records["image"] == ["a", "b", "c"]
    torch.testing.assert_close(records["score"], s.mean(1))
    torch.testing.assert_close(records["base_loss"], task.loss(raw, batch["heatmaps"]).detach(), rtol=1e-5, atol=1e-7)
    assert all(torch.as_tensor(v).ndim == 0 for v in out["log"].values())  # every logged value is a scalar
    assert "landmark_gp" in out["log"] and "score_mean" in out["log"]
    head = task.afl.critic.landmark_head
    assert not torch.equal(head.head.weight, critic_before.landmark_head.head.weight)  # the landmark head trained
    out["loss"].backward()
    assert task.model.weight.grad is not None and head.head.weight.grad is None  # f gets no gradient from d


def test_landmark_task_paper_variant_has_no_landmark_head():
    with pytest.warns(UserWarning, match="per_landmark"):
        task = _task(AFLConfig(variant="paper", per_landmark=True))
    assert task.afl.critic.landmark_head is None and not task.afl.cfg.per_landmark
    out = task.train()(_batch(task))
    assert out["records"]["score"].shape == (3,) and "landmark_gp" not in out["log"]
