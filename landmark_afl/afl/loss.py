"""The AFL weighting itself: difficulty scores from the critic multiply each sample's own loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from landmark_afl.afl.penalty import critic_loss
from landmark_afl.engine.distributed import current_context


def difficulty_scores(critic: Callable[[torch.Tensor], torch.Tensor], fake_features: torch.Tensor) -> torch.Tensor:
    """``s[b] = sigmoid(-d(t(y'))[b])``, detached: near 1 for predictions the critic finds unlike the truth."""
    with torch.no_grad():
        return torch.sigmoid(-critic(fake_features.detach())).detach()


def adversarial_focal_loss(
    per_sample_loss: torch.Tensor, scores: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """``AFL = mean_b(s[b] * L[b])``: the batch mean of the weighted per-sample losses, never of the scores first.

    Args:
        per_sample_loss: base loss L per sample, [B] (any loss reduced over everything but the batch).
        scores: difficulty scores s, [B]; detached here so that no gradient reaches the critic.
        reduction: "mean" (AFL as in the paper), "sum" or "none" ([B] weighted losses).
    """
    if per_sample_loss.ndim != 1 or per_sample_loss.shape != scores.shape:
        raise ValueError(
            f"per_sample_loss and scores must both have shape [B], got {tuple(per_sample_loss.shape)} "
            f"and {tuple(scores.shape)}"
        )
    weighted = scores.detach().to(per_sample_loss.dtype) * per_sample_loss
    if reduction == "mean":
        return weighted.mean()
    if reduction == "sum":
        return weighted.sum()
    if reduction == "none":
        return weighted
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


@dataclass(frozen=True)
class AFLConfig:
    """AFL settings (saved with the run).

    Attributes:
        enabled: train with AFL (False: the baseline, the plain mean of the base loss; ``--no-afl``).
        threshold: topology-extractor mask threshold on heatmaps whose target peak is 1.
        critic_lr: Adam learning rate of the critic. 1e-4 with betas (0.5, 0.9) are the WGAN-GP defaults
            (Gulrajani et al., 2017), which the paper follows.
        critic_beta1: Adam beta1 of the critic.
        critic_beta2: Adam beta2 of the critic.
        gp_lambda: gradient-penalty weight (10).
        critic_steps: critic updates per training step (1: AFL must cost almost nothing).
        critic_drift: weight of the optional output-range regulariser ``mean(d(real)^2)``; 0 = the paper's form.
        critic_center: after each critic update, shift the critic's output bias so that the batch mean of
            d(real) is 0. The WGAN-GP loss is invariant to a constant offset of d (its gradients and penalty do
            not change), but ``sigmoid(-d)`` is not: without an anchor the level of d drifts and the scores can
            collapse towards 0 (measured on the phantom: mean score 0.466 -> 0.000 over 10 epochs). Centred, a
            prediction the critic cannot tell from the ground truth scores 0.5 and worse ones more. A stronger
            regularisation of d's range, the paper's future work; off by default (the paper's form).
    """

    enabled: bool = True
    threshold: float = 0.5
    critic_lr: float = 1e-4
    critic_beta1: float = 0.5
    critic_beta2: float = 0.9
    gp_lambda: float = 10.0
    critic_steps: int = 1
    critic_drift: float = 0.0
    critic_center: bool = False


class AdversarialFocalLoss(nn.Module):
    """Owns the critic and its optimizer; weights per-sample losses by the critic's difficulty scores.

    Each call in training mode first scores the predictions with the current critic, then updates the critic once
    (``critic_steps``) with the WGAN-GP loss on the same batch. The main model gets no gradient from the critic.

    Args:
        critic: maps features [B, ...] to scores [B].
        features: maps (heatmaps or probabilities) to the critic's input; for landmarks
            ``lambda maps: topology_features(maps, cfg.threshold)``.
        cfg: AFL settings.

    Example:
        >>> from landmark_afl.afl import TopologyCritic, topology_features
        >>> afl = AdversarialFocalLoss(TopologyCritic(), lambda m: topology_features(m, 0.5))
        >>> pred, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
        >>> out = afl(pred, target, per_sample_loss=torch.tensor([1.0, 2.0]))
        >>> sorted(out)[:3], out["scores"].shape
        (['critic_loss', 'fake_score', 'gp'], torch.Size([2]))
    """

    def __init__(
        self,
        critic: nn.Module,
        features: Callable[[torch.Tensor], torch.Tensor],
        cfg: AFLConfig | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg or AFLConfig()
        self.critic = critic
        self.features = features
        self.optimizer = torch.optim.Adam(
            critic.parameters(), lr=self.cfg.critic_lr, betas=(self.cfg.critic_beta1, self.cfg.critic_beta2)
        )

    def forward(self, pred: torch.Tensor, target: torch.Tensor, per_sample_loss: torch.Tensor) -> dict:
        fake = self.features(pred.detach()).float()
        real = self.features(target.detach()).float()
        scores = difficulty_scores(self.critic, fake)
        out = {"loss": adversarial_focal_loss(per_sample_loss, scores), "scores": scores}
        if self.training:
            out.update(self.update_critic(real, fake))
        return out

    def update_critic(self, real: torch.Tensor, fake: torch.Tensor) -> dict:
        """``critic_steps`` Adam steps on the WGAN-GP loss, in float32 whatever autocast is active."""
        parts: dict[str, torch.Tensor] = {}
        ctx = current_context()  # under torchrun: the critic's gradients are averaged, so it stays identical
        with torch.enable_grad(), torch.autocast(real.device.type, enabled=False):
            for _ in range(self.cfg.critic_steps):
                loss, parts = critic_loss(self.critic, real, fake, self.cfg.gp_lambda, self.cfg.critic_drift)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                ctx.average_gradients(self.critic.parameters())
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.cfg.critic_center:
                with torch.no_grad():
                    level = self.critic(real).mean()
                    if ctx.distributed:
                        level = torch.tensor(ctx.reduce([float(level)])[0] / ctx.world, device=level.device)
                    self.critic.output_bias.sub_(level)
        return {"critic_loss": loss.detach(), **parts}

    def extra_state(self) -> dict:
        """The critic optimizer's state (the critic's weights are in the module's state_dict)."""
        return {"critic_optimizer": self.optimizer.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["critic_optimizer"])
