"""Landmark detection task: FPN heatmaps, a per-sample base loss, optionally weighted by AFL."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from landmark_afl.afl import (
    AdversarialFocalLoss,
    AFLConfig,
    TopologyCritic,
    target_topology_features,
    topology_features,
)
from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.data.letterbox import to_image_coords
from landmark_afl.losses import HeatmapLoss
from landmark_afl.metrics.landmarks import landmark_outcomes, summarize_outcomes
from landmark_afl.tasks.base import TrainTask


class LandmarkTask(TrainTask):
    """Heatmap landmark detection with or without Adversarial Focal Loss.

    Args:
        model: maps images [B, 1, H, W] to raw outputs [B, K, H, W].
        codec: the heatmap codec of the targets (and of decoding).
        loss: the per-sample base loss.
        afl: AFL settings, or None for the plain (baseline) loss ``mean_b L[b]``.
        detect_threshold: peak response at or above which a landmark counts as detected (validation).

    Attributes:
        targets_from_landmarks: compute the AFL features of the targets from ``batch["landmarks"]`` when the batch
            has them (``target_topology_features``: the same features as from the full-resolution target maps, for
            a fraction of the cost), which holds the contract that ``batch["heatmaps"]`` is
            ``codec.encode(batch["landmarks"])``, as ``LandmarkTrainingSet`` makes them (a target map that is not
            falls back to the full-resolution extractor where its mask reaches the edge of its window). False: the
            full-resolution extractor on ``batch["heatmaps"]`` always.
    """

    console_keys = ("base_loss", "score_mean")

    def __init__(
        self,
        model: nn.Module,
        codec: GaussianHeatmapCodec,
        loss: HeatmapLoss,
        afl: AFLConfig | None = None,
        detect_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.model = model
        self.codec = codec
        self.loss = loss
        self.detect_threshold = float(detect_threshold)
        self.afl = None
        self.targets_from_landmarks = True
        if afl is not None and afl.enabled:
            afl = afl.resolved()
            threshold = afl.threshold
            critic = TopologyCritic(landmark_head=afl.per_landmark)
            self.afl = AdversarialFocalLoss(critic, lambda maps: topology_features(maps, threshold), afl)

    def optimizer_parameters(self):
        return self.model.parameters()

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Activated heatmaps [B, K, H, W] on the target scale (peak 1 for a confident landmark)."""
        return self.loss.activate(self.model(images))

    def forward(self, batch: dict) -> dict:
        """Base loss, AFL and one critic update; records per sample: image, base_loss, score.

        The batch holds ``image`` [B, 1, H, W] and ``heatmaps`` [B, K, H, W], optionally ``landmarks`` [B, K, 2]
        (input pixels, NaN = absent; the targets' features then come from them, see ``targets_from_landmarks``)
        and ``image_id``.

        With per-landmark AFL the weights multiply the per-landmark loss [B, K] (``reduction="landmark"``, whose
        mean over K is the per-sample loss) and the recorded score is the per-sample mean of s[b, k].
        """
        raw = self.model(batch["image"])
        target = batch["heatmaps"]
        per_landmark = self.afl is not None and self.afl.cfg.per_landmark
        if per_landmark:
            landmark_loss = self.loss(raw, target, reduction="landmark")  # [B, K]
            per_sample = landmark_loss.mean(1)
        else:
            per_sample = self.loss(raw, target)
        log = {"base_loss": per_sample.mean().detach()}
        records = {"image": list(batch["image_id"]), "base_loss": per_sample.detach()} if "image_id" in batch else {}
        if self.afl is None:
            return {"loss": per_sample.mean(), "log": log, "records": records}
        raw = raw.detach()  # the critic's inputs: features of the predictions and of the targets, no gradient
        afl_out = self.afl(
            raw,
            target,
            landmark_loss if per_landmark else per_sample,
            real_features=self.target_features(batch),
            fake_features=self.prediction_features(raw),
        )
        scores = afl_out.pop("scores")
        afl_out.pop("landmark_scores", None)
        log.update({"score_mean": scores.mean(), **afl_out})
        log.pop("loss")
        if records:
            records["score"] = scores
        return {"loss": afl_out["loss"], "log": log, "records": records}

    def prediction_features(self, raw: torch.Tensor) -> torch.Tensor:
        """The AFL features [B, 2, K, K] of the activated raw outputs [B, K, H, W] (the critic's fake input).

        ``topology_features(self.loss.activate(raw))``, with the activation applied only to the rows that can
        reach the threshold (``topology_features``' ``activation``): the same features bit for bit.
        """
        return topology_features(raw, self.afl.cfg.threshold, activation=self.loss.activation)

    def target_features(self, batch: dict) -> torch.Tensor:
        """The AFL features [B, 2, K, K] of the batch's targets (the critic's real input).

        From ``batch["landmarks"]`` when the batch has them and ``targets_from_landmarks`` is set, else from the
        full-resolution ``batch["heatmaps"]``: the same features either way.
        """
        threshold = self.afl.cfg.threshold
        if self.targets_from_landmarks and "landmarks" in batch:
            return target_topology_features(batch["landmarks"], self.codec, threshold, heatmaps=batch["heatmaps"])
        return topology_features(batch["heatmaps"], threshold)

    @torch.no_grad()
    def predict(self, batch: dict) -> tuple[np.ndarray, np.ndarray]:
        """Decoded landmarks [B, K, 2] in original image pixels and peak responses [B, K]."""
        xy, peaks = self.codec.decode(self.heatmaps(batch["image"]), batch.get("valid"))
        scale = batch["scale"].cpu().numpy()[:, None, :]
        return to_image_coords(xy.cpu().numpy(), scale), peaks.cpu().numpy()

    @torch.no_grad()
    def validate(self, loader, out_dir=None) -> dict:
        """Validation loss, false negatives / present, false positives, MRE and SDR over the loader."""
        was_training = self.training
        self.eval()
        device = next(self.model.parameters()).device
        losses, preds, peaks, gts, spacings = [], [], [], [], []
        for batch in loader:
            batch = self.batch_to(batch, device)
            losses.append(self.loss(self.model(batch["image"]), batch["heatmaps"]).cpu())
            xy, peak = self.predict(batch)
            preds.append(xy)
            peaks.append(peak)
            gts.append(batch["target_xy"].cpu().numpy())
            spacings.append(batch["spacing"].cpu().numpy())
        self.train(was_training)
        outcomes = landmark_outcomes(
            np.concatenate(preds),
            np.concatenate(peaks),
            np.concatenate(gts),
            self.detect_threshold,
            np.concatenate(spacings),
        )
        summary = summarize_outcomes(outcomes)
        metrics = {
            "val_loss": float(torch.cat(losses).mean()),
            "val_present": summary["present"],
            "val_false_negatives": summary["false_negatives"],
            "val_false_positives": summary["false_positives"],
            "val_mre_mm": summary["mre_mm"],
            "val_mre_px": summary["mre_px"],
        }
        metrics.update({f"val_sdr_{r}mm": v for r, v in summary["sdr"].items()})
        return metrics

    def selection_key(self, metrics: dict) -> tuple:
        """Fewest validation false negatives, then lowest MRE (mm, else px), then lowest loss."""
        mre = metrics.get("val_mre_mm")
        if mre is None or not np.isfinite(mre):
            mre = metrics.get("val_mre_px")
        mre = float("inf") if mre is None or not np.isfinite(mre) else mre
        return (metrics["val_false_negatives"], mre, metrics["val_loss"])

    def epoch_summary(self, metrics: dict) -> str:
        keys = ("val_loss", "val_false_negatives", "val_present", "val_mre_mm", "val_mre_px")
        return ", ".join(
            f"{k[4:]} {metrics[k]:.4g}" if isinstance(metrics[k], float) else f"{k[4:]} {metrics[k]}"
            for k in keys
            if metrics.get(k) is not None
        )
