"""The AFL weighting itself: difficulty scores from the critic multiply each sample's (or landmark's) own loss.

Liu et al., "Adversarial Focal Loss: Asking Your Discriminator for Hard Examples" (2022). The paper's form
(``AFLConfig()``), per sample b:

    s[b] = sigmoid(-d(t(y'))[b]),  w[b] = s[b],  AFL = mean_b(w[b] * L[b])

The options of ``AFLConfig`` change one piece each (all weights are detached):

    focus_gamma = g:           w = s ** g                     (g = 1 the paper, g = 0 the plain mean of L)
    normalize_weights = True:  w = s ** g / mean(s ** g)      (the batch mean of the weights is 1)
    per_landmark = True:       s[b, k] = sigmoid(-d_k(t(y'))[b]),  AFL = mean_{b,k}(w[b, k] * L[b, k])
    critic_center = True:      after each critic update, d -= center_rate * mean(d over center_on)

``d_k`` is the critic's landmark head, scoring landmark k from row k of the affinities; it is trained with the
per-landmark WGAN-GP loss ``L_e`` of ``landmark_critic_loss`` next to the paper's ``L_d`` (the critic minimises
``L_d + L_e``), and ``L[b, k]`` is the base loss of landmark k of sample b (mean over its map), so that
``mean_k L[b, k] = L[b]``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from landmark_afl.afl.penalty import critic_loss, landmark_critic_loss
from landmark_afl.engine.distributed import current_context

VARIANTS = ("custom", "paper")
CENTER_ON = ("real", "fake", "both")
# the paper's exact form: what ``variant="paper"`` sets, whatever the options say
PAPER_FORM = {
    "critic_drift": 0.0,
    "critic_center": False,
    "focus_gamma": 1.0,
    "normalize_weights": False,
    "per_landmark": False,
}


def difficulty_scores(critic: Callable[[torch.Tensor], torch.Tensor], fake_features: torch.Tensor) -> torch.Tensor:
    """``s = sigmoid(-d(t(y')))``, detached: near 1 for predictions the critic finds unlike the truth.

    ``critic`` may be the critic ([B] scores) or its ``landmark_scores`` ([B, K] scores, one per landmark).
    """
    with torch.no_grad():
        return torch.sigmoid(-critic(fake_features.detach())).detach()


def afl_weights(scores: torch.Tensor, gamma: float = 1.0, normalize: bool = False) -> torch.Tensor:
    """The detached loss weights: ``w = s ** gamma``, divided by their mean over all entries when ``normalize``.

    Args:
        scores: difficulty scores s in [0, 1], [B] or [B, K].
        gamma: focusing exponent (1: the paper's ``w = s``; 2: focal loss's usual value; 0: all weights 1).
        normalize: ``w / mean(w)`` (over B, or B x K): AFL re-weights the samples without changing the loss scale.
            If every weight is 0 (a saturated critic), all weights are 1.

    Returns:
        Weights with the shape of ``scores``, detached.
    """
    weights = scores.detach().pow(gamma)
    if normalize:
        mean = weights.mean()
        weights = torch.where(mean > 0, weights / mean.clamp_min(torch.finfo(weights.dtype).tiny), 1.0)
    return weights.detach()


def adversarial_focal_loss(
    per_sample_loss: torch.Tensor,
    scores: torch.Tensor,
    reduction: str = "mean",
    gamma: float = 1.0,
    normalize: bool = False,
) -> torch.Tensor:
    """``AFL = mean_b(w[b] * L[b])``, ``w = afl_weights(s, gamma, normalize)``: the mean of the weighted losses.

    The batch mean is taken over the weighted per-sample losses, never over the scores first. Per landmark, loss and
    scores are [B, K] and the mean runs over both: ``mean_{b,k}(w[b, k] * L[b, k])``.

    Args:
        per_sample_loss: base loss L per sample, [B] (any loss reduced over everything but the batch), or per sample
            and landmark, [B, K].
        scores: difficulty scores s, the shape of the loss; detached here so that no gradient reaches the critic.
        reduction: "mean" (AFL as in the paper), "sum" or "none" (the weighted losses, the loss's shape).
        gamma: focusing exponent of the weights (1 = the paper).
        normalize: divide the weights by their mean (False = the paper).
    """
    if per_sample_loss.ndim not in (1, 2) or per_sample_loss.shape != scores.shape:
        raise ValueError(
            "per_sample_loss and scores must have the same shape, [B] (per sample) or [B, K] (per landmark), got "
            f"{tuple(per_sample_loss.shape)} and {tuple(scores.shape)}"
        )
    weighted = afl_weights(scores, gamma, normalize).to(per_sample_loss.dtype) * per_sample_loss
    if reduction == "mean":
        return weighted.mean()
    if reduction == "sum":
        return weighted.sum()
    if reduction == "none":
        return weighted
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


@dataclass(frozen=True)
class AFLConfig:
    """AFL settings (saved with the run). The defaults are the paper's exact form.

    Example:
        >>> AFLConfig(focus_gamma=2.0, normalize_weights=True).resolved().focus_gamma
        2.0
        >>> AFLConfig(variant="paper").resolved().per_landmark
        False

    Attributes:
        enabled: train with AFL (False: the baseline, the plain mean of the base loss; ``--no-afl``).
        variant: "custom" (the options below as set) or "paper" (the paper's exact form, whatever critic_drift,
            critic_center, focus_gamma, normalize_weights and per_landmark say).
        threshold: topology-extractor mask threshold on heatmaps whose target peak is 1.
        critic_lr: Adam learning rate of the critic. 1e-4 with betas (0.5, 0.9) are the WGAN-GP defaults
            (Gulrajani et al., 2017), which the paper follows.
        critic_beta1: Adam beta1 of the critic.
        critic_beta2: Adam beta2 of the critic.
        gp_lambda: gradient-penalty weight (10).
        critic_steps: critic updates per training step (1: AFL must cost almost nothing).
        critic_drift: weight of the optional output-range regulariser ``mean(d(real)^2)``; 0 = the paper's form.
        critic_center: after each critic update, shift the critic's output bias so that the batch mean of d over
            ``center_on`` is 0. The WGAN-GP loss is invariant to a constant offset of d (its gradients and penalty
            do not change), but ``sigmoid(-d)`` is not: without an anchor the level of d drifts and the scores can
            collapse towards 0 (measured on the phantom: mean score 0.466 -> 0.000 over 10 epochs). Centred on the
            real maps, a prediction the critic cannot tell from the ground truth scores 0.5 and worse ones more. A
            stronger regularisation of d's range, the paper's future work; off here (the paper's form), on in the
            landmark recipe's defaults (the seeded study's choice, README "Results").
        center_on: the scores whose batch mean critic_center anchors at 0: "real" (d(t(y)): a perfect prediction
            scores 0.5, worse ones more), "fake" (d(t(y')): the batch's predictions score 0.5 on average, harder
            ones more, easier ones less) or "both" (the mean over real and fake together).
        center_rate: the fraction of the measured level that each critic_center step removes, in (0, 1]: 1 removes
            it all (the batch's own level); smaller values remove the drift but average the batch-to-batch noise of
            the level over about 1 / center_rate steps (a running anchor).
        focus_gamma: focusing exponent of the weights, ``w = s ** focus_gamma``: 1 is the paper, 2 focal loss's
            usual value (sharper focus on the hard samples), 0 turns the weighting off.
        normalize_weights: divide the weights by their batch mean (detached), ``w / mean_b(w)`` (per landmark: the
            mean over B x K), so that AFL re-weights the samples without scaling the loss (the paper's weights
            shrink the loss as s falls).
        per_landmark: per-landmark AFL (beyond the paper): the critic also scores each landmark from its row of the
            K x K affinities, ``s[b, k] = sigmoid(-d_k)``, and the weights multiply the per-sample, per-landmark base
            loss ``L[b, k]``; the landmark head is trained with WGAN-GP on its per-landmark scores. Landmark tasks
            only (their critic has the landmark head).
    """

    enabled: bool = True
    variant: str = "custom"
    threshold: float = 0.5
    critic_lr: float = 1e-4
    critic_beta1: float = 0.5
    critic_beta2: float = 0.9
    gp_lambda: float = 10.0
    critic_steps: int = 1
    critic_drift: float = 0.0
    critic_center: bool = False
    center_on: str = "real"
    center_rate: float = 1.0
    focus_gamma: float = 1.0
    normalize_weights: bool = False
    per_landmark: bool = False

    def __post_init__(self) -> None:
        def bad(key: str, allowed: str) -> ValueError:
            return ValueError(f"afl.{key} must be {allowed}, got {getattr(self, key)!r}")

        if self.variant not in VARIANTS:
            raise bad("variant", " or ".join(repr(v) for v in VARIANTS))
        if self.center_on not in CENTER_ON:
            raise bad("center_on", ", ".join(repr(v) for v in CENTER_ON))
        if not 0 < self.center_rate <= 1:
            raise bad("center_rate", "in (0, 1] (1 = the batch's own level)")
        if not (math.isfinite(self.focus_gamma) and self.focus_gamma >= 0):
            raise bad("focus_gamma", "a finite number >= 0 (1 = the paper, 2 = focal loss's usual value)")
        if not self.threshold > 0:
            raise bad("threshold", "> 0 (an all-zero heatmap must count as absent)")
        if not self.critic_lr > 0:
            raise bad("critic_lr", "> 0")
        for key in ("critic_beta1", "critic_beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise bad(key, "in [0, 1)")
        for key in ("gp_lambda", "critic_drift"):
            if not getattr(self, key) >= 0:
                raise bad(key, ">= 0 (0 turns it off)")
        if self.critic_steps < 1:
            raise bad("critic_steps", "an integer >= 1")

    def resolved(self) -> AFLConfig:
        """The settings AFL runs with: for ``variant="paper"``, the options of ``PAPER_FORM`` at the paper's values.

        Warns when that overrides an option that was set away from its default (a contradictory config).
        """
        if self.variant != "paper":
            return self
        overridden = [
            f"afl.{key}={getattr(self, key)!r}"
            for key, paper in PAPER_FORM.items()
            if getattr(self, key) != paper and getattr(self, key) != _DEFAULTS[key]
        ]
        if overridden:
            warnings.warn(
                f"afl.variant='paper' runs the paper's exact form and ignores {', '.join(overridden)}; "
                "use afl.variant=custom to apply them",
                UserWarning,
                stacklevel=2,
            )
        return dataclasses.replace(self, **PAPER_FORM)


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(AFLConfig)}


class AdversarialFocalLoss(nn.Module):
    """Owns the critic and its optimizer; weights per-sample (or per-landmark) losses by the critic's scores.

    Each call in training mode first scores the predictions with the current critic, then updates the critic once
    (``critic_steps``) with the WGAN-GP loss on the same batch (plus the per-landmark ``L_e`` with
    ``per_landmark``), then re-anchors its level (``critic_center``). The main model gets no gradient from the
    critic.

    Args:
        critic: maps features [B, ...] to scores [B]; with ``cfg.per_landmark`` it must also have
            ``landmark_scores`` (features [B, 2, K, K] -> [B, K]) and ``landmark_head`` (``TopologyCritic(
            landmark_head=True)``).
        features: maps (heatmaps or probabilities) to the critic's input; for landmarks
            ``lambda maps: topology_features(maps, cfg.threshold)``.
        cfg: AFL settings (``cfg.resolved()`` is what runs).

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
        self.cfg = (cfg or AFLConfig()).resolved()
        if self.cfg.per_landmark and getattr(critic, "landmark_head", None) is None:
            raise ValueError(
                f"afl.per_landmark=True needs a critic with a landmark head (TopologyCritic(landmark_head=True)), got "
                f"{type(critic).__name__} without one; per-landmark AFL is for landmark tasks, set "
                "afl.per_landmark=False here"
            )
        self.critic = critic
        self.features = features
        self.optimizer = torch.optim.Adam(
            critic.parameters(), lr=self.cfg.critic_lr, betas=(self.cfg.critic_beta1, self.cfg.critic_beta2)
        )

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        per_sample_loss: torch.Tensor,
        real_features: torch.Tensor | None = None,
        fake_features: torch.Tensor | None = None,
    ) -> dict:
        """AFL of a batch, and (in training mode) one critic update.

        Args:
            pred: the predictions (heatmaps [B, K, H, W] or probabilities [B, C]); detached here.
            target: the ground truth, same shape.
            per_sample_loss: the base loss L, [B]; with ``per_landmark`` the per-landmark base loss [B, K].
            real_features: ``features(target)`` when the caller has it cheaper (the landmark task computes it from
                the target coordinates, ``target_topology_features``); None computes ``features(target)``.
            fake_features: ``features(pred)`` when the caller has it cheaper (the landmark task computes it from its
                raw outputs, activating only the rows that can reach the threshold); None computes
                ``features(pred)``.

        Returns:
            ``loss`` (AFL), ``scores`` (s [B]; per landmark, the per-sample mean of s[b, k]), with ``per_landmark``
            also ``landmark_scores`` (s [B, K]), and in training mode ``critic_loss`` and the parts of
            ``critic_loss`` (``wasserstein``, ``gp``, ``real_score``, ``fake_score``; per landmark also the same
            four of ``landmark_critic_loss`` prefixed ``landmark_``).
        """
        want = "[B, K] (afl.per_landmark=True)" if self.cfg.per_landmark else "[B]"
        got = tuple(per_sample_loss.shape)
        if per_sample_loss.ndim != (2 if self.cfg.per_landmark else 1) or got[0] != pred.shape[0]:
            raise ValueError(f"per_sample_loss must be {want} for predictions {tuple(pred.shape)}, got {got}")
        fake = (self.features(pred.detach()) if fake_features is None else fake_features.detach()).float()
        real = (self.features(target.detach()) if real_features is None else real_features.detach()).float()
        if real.shape != fake.shape:
            raise ValueError(
                f"the targets' features {tuple(real.shape)} must have the shape of the predictions' features "
                f"{tuple(fake.shape)}"
            )
        cfg = self.cfg
        if cfg.per_landmark:
            if per_sample_loss.shape[1] != fake.shape[-1]:
                raise ValueError(
                    f"per_sample_loss {tuple(per_sample_loss.shape)} must be [B, K] with the K = {fake.shape[-1]} "
                    f"landmarks of the features {tuple(fake.shape)}"
                )
            landmark_scores = difficulty_scores(self.critic.landmark_scores, fake)
            loss = adversarial_focal_loss(
                per_sample_loss, landmark_scores, gamma=cfg.focus_gamma, normalize=cfg.normalize_weights
            )
            out = {"loss": loss, "scores": landmark_scores.mean(1), "landmark_scores": landmark_scores}
        else:
            scores = difficulty_scores(self.critic, fake)
            loss = adversarial_focal_loss(
                per_sample_loss, scores, gamma=cfg.focus_gamma, normalize=cfg.normalize_weights
            )
            out = {"loss": loss, "scores": scores}
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
                if self.cfg.per_landmark:
                    landmark_loss, landmark_parts = landmark_critic_loss(
                        self.critic.landmark_head, real, fake, self.cfg.gp_lambda, self.cfg.critic_drift
                    )
                    loss = loss + landmark_loss
                    parts.update({f"landmark_{k}": v for k, v in landmark_parts.items()})
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                ctx.average_gradients(self.critic.parameters())
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        if self.cfg.critic_center:
            self.center(real, fake)
        return {"critic_loss": loss.detach(), **parts}

    @torch.no_grad()
    def center(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        """Shift the read-out bias of each head by ``center_rate`` x its mean score over ``center_on``.

        Under torchrun the level is the mean over all ranks, so the replicas stay identical.
        """
        heads = [(self.critic, self.critic.output_bias)]
        if self.cfg.per_landmark:
            heads.append((self.critic.landmark_scores, self.critic.landmark_output_bias))
        inputs = {"real": (real,), "fake": (fake,), "both": (real, fake)}[self.cfg.center_on]
        with torch.autocast(real.device.type, enabled=False):
            levels = [torch.cat([score(x).flatten() for x in inputs]).mean() for score, _ in heads]
        ctx = current_context()
        if ctx.distributed:
            means = ctx.reduce([float(level) for level in levels])
            levels = [torch.tensor(m / ctx.world, device=real.device) for m in means]
        for (_, bias), level in zip(heads, levels, strict=True):
            bias.sub_(self.cfg.center_rate * level.to(bias.dtype))

    def extra_state(self) -> dict:
        """The critic optimizer's state (the critic's weights are in the module's state_dict)."""
        return {"critic_optimizer": self.optimizer.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["critic_optimizer"])
