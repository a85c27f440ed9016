"""Adversarial Focal Loss (AFL): a WGAN-GP critic's judgement of each prediction re-weights its own loss.

The math (DESIGN.md, from the paper):
    t:    heatmaps [B, K, H, W] -> topology features [B, 2, K, K]      (``topology_features``, no gradient)
    d:    features -> score [B]                                        (``TopologyCritic`` / ``ProbabilityCritic``)
    L_d = mean(-d(t(y))) - mean(-d(t(y'))) + gp                         (``critic_loss``, ``gradient_penalty``)
    s   = sigmoid(-d(t(y'))).detach()                                   (``difficulty_scores``)
    AFL = mean_b(s[b] * L[b])                                           (``adversarial_focal_loss``)
"""

from landmark_afl.afl.critic import ProbabilityCritic, TopologyCritic
from landmark_afl.afl.loss import AdversarialFocalLoss, AFLConfig, adversarial_focal_loss, difficulty_scores
from landmark_afl.afl.penalty import critic_loss, gradient_penalty
from landmark_afl.afl.topology import topology_features

__all__ = [
    "AFLConfig",
    "AdversarialFocalLoss",
    "ProbabilityCritic",
    "TopologyCritic",
    "adversarial_focal_loss",
    "critic_loss",
    "difficulty_scores",
    "gradient_penalty",
    "topology_features",
]
