"""Adversarial Focal Loss (AFL): a WGAN-GP critic's judgement of each prediction re-weights its own loss.

The math (DESIGN.md, from the paper):
    t:    heatmaps [B, K, H, W] -> topology features [B, 2, K, K]      (``topology_features``, no gradient;
          for codec targets the same from the landmarks: ``target_topology_features``)
    d:    features -> score [B]                                        (``TopologyCritic`` / ``ProbabilityCritic``)
    L_d = mean(-d(t(y))) - mean(-d(t(y'))) + gp                         (``critic_loss``, ``gradient_penalty``)
    s   = sigmoid(-d(t(y'))).detach()                                   (``difficulty_scores``)
    AFL = mean_b(s[b] * L[b])                                           (``adversarial_focal_loss``)

Per-landmark AFL (beyond the paper; ``AFLConfig(per_landmark=True)``), with r_k(M) row k of both channels:
    d_k:  e(r_k(t(.))), one score per landmark [B, K]                   (``TopologyCritic.landmark_scores``)
    L_e = mean_{b,k}(-d_k(t(y))) - mean_{b,k}(-d_k(t(y'))) + gp_{b,k}   (``landmark_critic_loss``)
    s[b, k] = sigmoid(-d_k(t(y'))[b]).detach()
    AFL = mean_{b,k}(s[b, k] * L[b, k])                                 (the critic minimises L_d + L_e)

Weight options on top of either form: ``w = s ** focus_gamma``, optionally ``w / mean(w)`` (``afl_weights``);
score anchoring: ``critic_center`` / ``center_on`` / ``center_rate`` (``AFLConfig``).
"""

from landmark_afl.afl.critic import ProbabilityCritic, RowCritic, TopologyCritic, affinity_rows
from landmark_afl.afl.loss import (
    AdversarialFocalLoss,
    AFLConfig,
    adversarial_focal_loss,
    afl_weights,
    difficulty_scores,
)
from landmark_afl.afl.penalty import critic_loss, gradient_penalty, landmark_critic_loss
from landmark_afl.afl.topology import target_topology_features, topology_features

__all__ = [
    "AFLConfig",
    "AdversarialFocalLoss",
    "ProbabilityCritic",
    "RowCritic",
    "TopologyCritic",
    "adversarial_focal_loss",
    "affinity_rows",
    "afl_weights",
    "critic_loss",
    "difficulty_scores",
    "gradient_penalty",
    "landmark_critic_loss",
    "target_topology_features",
    "topology_features",
]
