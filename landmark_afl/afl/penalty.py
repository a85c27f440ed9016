"""WGAN-GP critic objective (Gulrajani et al., 2017) as AFL uses it, per sample and per landmark."""

from __future__ import annotations

from collections.abc import Callable

import torch

from landmark_afl.afl.critic import affinity_rows


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, lam: float = 10.0
) -> torch.Tensor:
    """``lam * mean((||grad_z d(z)||_2 - 1)^2)`` at ``z = a * real + (1 - a) * fake``, ``a ~ U[0, 1]`` per sample.

    Args:
        critic: maps [B, ...] to scores [B].
        real: ground-truth features [B, ...].
        fake: predicted features [B, ...], same shape.
        lam: penalty weight (10 in WGAN-GP and in the paper).

    Returns:
        Scalar tensor, differentiable with respect to the critic's parameters.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    real = real.detach()
    fake = fake.detach()
    alpha = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), dtype=real.dtype, device=real.device)
    z = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(z)
    (grad,) = torch.autograd.grad(scores.sum(), z, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return lam * ((norms - 1) ** 2).mean()


def critic_loss(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    lam: float = 10.0,
    drift: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_d = mean(-d(real)) - mean(-d(fake)) + gp`` (+ ``drift * mean(d(real)^2)`` when drift > 0).

    The drift term (off by default) is the stronger regularisation of the range of d's output that the paper lists
    as future work, in the form of Karras et al. (2018): it keeps the critic's scores near 0, so the difficulty
    scores ``sigmoid(-d)`` stay in the sigmoid's sensitive range instead of saturating at 0 or 1.

    Returns:
        (loss, parts) where parts holds the detached Wasserstein estimate, the penalty and the mean scores.
    """
    real_scores = critic(real.detach())
    fake_scores = critic(fake.detach())
    gp = gradient_penalty(critic, real, fake, lam)
    loss = (-real_scores).mean() - (-fake_scores).mean() + gp
    if drift > 0:
        loss = loss + drift * (real_scores**2).mean()
    parts = {
        "wasserstein": (real_scores.mean() - fake_scores.mean()).detach(),
        "gp": gp.detach(),
        "real_score": real_scores.mean().detach(),
        "fake_score": fake_scores.mean().detach(),
    }
    return loss, parts


def landmark_critic_loss(
    row_critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    lam: float = 10.0,
    drift: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-landmark WGAN-GP: ``critic_loss`` with each landmark's row of the affinities as one sample.

    With ``r_k(M) = M[:, k, :]`` (row k of both channels, [2, K]) and e the row critic, ``d_k = e(r_k(t(.)))``:

        L_e = mean_{b,k}(-d_k(t(y))[b]) - mean_{b,k}(-d_k(t(y'))[b])
              + lam * mean_{b,k}((||grad_z e(z)[b, k]||_2 - 1)^2)
        z[b, k] = a * r_k(t(y))[b] + (1 - a) * r_k(t(y'))[b],  a ~ U[0, 1] per (b, k)

    (+ ``drift * mean_{b,k}(d_k(t(y))[b]^2)``). The row critic scores each row on its own, so the gradient of
    ``d_k`` with respect to the whole matrix is its gradient with respect to row k, and one backward pass gives all
    B x K gradient norms.

    Args:
        row_critic: maps rows [B * K, 2, K] to scores [B * K] (``TopologyCritic.landmark_head``).
        real: ground-truth features [B, 2, K, K].
        fake: predicted features [B, 2, K, K].
        lam: penalty weight.
        drift: weight of ``mean(d_k(real)^2)``.

    Returns:
        (loss, parts) as ``critic_loss``, the means taken over all B x K landmarks.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    return critic_loss(row_critic, affinity_rows(real), affinity_rows(fake), lam, drift)
