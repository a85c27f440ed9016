"""Top-down human pose (COCO, MPII): heatmaps of a person crop, target-weighted MSE, optionally weighted by AFL.

The base loss is SimpleBaseline's ``JointsMSELoss`` per sample, ``L[b] = 0.5 * mean_{k,h,w} (w_bk (y'_bkhw -
y_bkhw))^2`` (its batch mean is exactly the published loss). AFL is the same object as for X-ray landmarks: the
``TopologyCritic`` over ``topology_features`` of the K keypoint heatmaps. Validation runs the flip test (the crop
mirrored, its heatmaps mirrored back with the left/right channels swapped, averaged with the plain ones), decodes
with the project's codec (argmax + sub-pixel log-parabola) and maps the points back to the image through the exact
inverse of the crop's affine transform; the scoring (COCO AP, PCKh) is a function handed in by the recipe.

HRNet shifts the flipped-back heatmaps by one pixel because its heatmap grid ``u = x / 4`` is not mirror-symmetric
(mirroring the input moves ``u`` by 3/4 of a heatmap pixel). The codec's grid is pixel-centre aligned, ``u = (x +
0.5) / 4 - 0.5``, for which mirroring the input is exactly mirroring the heatmap, so no shift is applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from landmark_afl.afl import AdversarialFocalLoss, AFLConfig, TopologyCritic, topology_features
from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.data.keypoint_crop import affine_matrix, apply_affine, flip_permutation
from landmark_afl.tasks.base import TrainTask


def joints_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-sample target-weighted heatmap MSE [B]: ``0.5 * mean_{k,h,w} (w_bk * (pred - target))^2``.

    Args:
        pred: predicted heatmaps [B, K, H, W].
        target: target heatmaps [B, K, H, W].
        weight: per-keypoint weights [B, K] (0 for keypoints without a target).
    """
    if pred.shape != target.shape or pred.ndim != 4 or weight.shape != pred.shape[:2]:
        raise ValueError(
            f"expected pred and target [B, K, H, W] and weight [B, K], got {tuple(pred.shape)}, "
            f"{tuple(target.shape)} and {tuple(weight.shape)}"
        )
    diff = (pred.float() - target.float()) * weight.float()[..., None, None]
    return 0.5 * diff.pow(2).mean(dim=(1, 2, 3))


@dataclass
class KeypointPredictions:
    """Decoded predictions of a validation pass (N persons, K keypoints), for the recipe's scorer.

    Attributes:
        index: data set index of each person [N].
        keypoints: [N, K, 2] in image pixels.
        scores: heatmap peak of each keypoint [N, K].
        center: crop centres [N, 2]; scale: crop sizes [N, 2] (image pixels).
        box_score: person box scores [N].
        image_id: the data set's image id of each person [N].
    """

    index: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    box_score: np.ndarray
    image_id: list


Scorer = Callable[[KeypointPredictions, "Path | None"], dict]


class KeypointTask(TrainTask):
    """Top-down keypoint heatmaps with or without Adversarial Focal Loss.

    Args:
        model: maps crops [B, 3, H_in, W_in] to heatmaps [B, K, H, W] (H, W = the codec's heatmap size).
        codec: heatmap codec of the targets and of decoding (stride 4 for SimpleBaseline-style maps).
        flip_pairs: left/right keypoint pairs, for the flip test.
        scorer: ``(predictions, out_dir) -> metrics`` (keys without ``val_``); writes its files into out_dir.
        afl: AFL settings; None or ``enabled=False`` trains the baseline (plain mean of the base loss).
        flip_test: average with the flipped crop at validation.
        selection_metric: the scorer's key whose highest value selects the best checkpoint ("AP", "PCKh").
        summary_keys: scorer keys shown on the console after each epoch.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> codec = GaussianHeatmapCodec((64, 48), sigma=2.0, stride=4)
        >>> task = KeypointTask(nn.Conv2d(3, 2, 4, stride=4), codec, ((0, 1),), scorer=lambda p, d: {"AP": 0.0})
        >>> batch = {"image": torch.zeros(2, 3, 64, 48), "heatmaps": torch.zeros(2, 2, 16, 12),
        ...          "target_weight": torch.ones(2, 2), "id": ["a", "b"]}
        >>> out = task(batch)
        >>> out["loss"].shape, out["records"]["base_loss"].shape
        (torch.Size([]), torch.Size([2]))
    """

    console_keys = ("base_loss", "score_mean")

    def __init__(
        self,
        model: nn.Module,
        codec: GaussianHeatmapCodec,
        flip_pairs: Sequence[tuple[int, int]],
        scorer: Scorer,
        afl: AFLConfig | None = None,
        flip_test: bool = True,
        selection_metric: str = "AP",
        summary_keys: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.model = model
        self.codec = codec
        self.flip_pairs = tuple(tuple(p) for p in flip_pairs)
        self.scorer = scorer
        self.flip_test = bool(flip_test)
        self.selection_metric = selection_metric
        self.summary_keys = tuple(summary_keys) or (selection_metric,)
        self.afl = None
        if afl is not None and afl.enabled:
            threshold = afl.threshold
            self.afl = AdversarialFocalLoss(TopologyCritic(), lambda maps: topology_features(maps, threshold), afl)

    def optimizer_parameters(self):
        return self.model.parameters()

    def forward(self, batch: dict) -> dict:
        pred = self.model(batch["image"])
        target, weight = batch["heatmaps"], batch["target_weight"]
        per_sample = joints_mse(pred, target, weight)
        log = {"base_loss": per_sample.mean().detach()}
        records = {"image": list(batch["id"]), "base_loss": per_sample.detach()}
        if self.afl is None:
            return {"loss": per_sample.mean(), "log": log, "records": records}
        afl_out = self.afl(pred.detach(), target, per_sample)
        scores = afl_out.pop("scores")
        loss = afl_out.pop("loss")
        log.update({"score_mean": scores.mean(), **afl_out})
        records["score"] = scores
        return {"loss": loss, "log": log, "records": records}

    @torch.no_grad()
    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Heatmaps [B, K, H, W] of crops [B, 3, H_in, W_in], averaged with the flip test when it is on."""
        maps = self.model(images)
        if self.flip_test:
            perm = torch.as_tensor(flip_permutation(self.flip_pairs, maps.shape[1]), device=maps.device)
            maps = 0.5 * (maps + self.model(images.flip(-1)).flip(-1)[:, perm])
        return maps

    @torch.no_grad()
    def decode(self, maps: torch.Tensor, batch: dict) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps [B, K, H, W] -> (keypoints [B, K, 2] in image pixels, peaks [B, K]) via the inverse crop."""
        xy, peaks = self.codec.decode(maps)
        inverse = affine_matrix(
            batch["center"].cpu().numpy(),
            batch["scale"].cpu().numpy(),
            torch.as_tensor(batch.get("rotation", 0.0)).cpu().numpy(),
            self.codec.input_size,
            torch.as_tensor(batch.get("flip", False)).cpu().numpy(),
            inverse=True,
        )
        return apply_affine(inverse, xy.cpu().double().numpy()), peaks.cpu().numpy()

    @torch.no_grad()
    def validate(self, loader, out_dir: Path | None = None) -> dict:
        """``val_loss`` and the scorer's metrics (prefixed ``val_``) over the loader, with the flip test."""
        was_training = self.training
        self.eval()
        device = next(self.model.parameters()).device
        losses, parts = [], {k: [] for k in ("index", "keypoints", "scores", "center", "scale", "box_score")}
        image_ids: list = []
        for batch in loader:
            batch = self.batch_to(batch, device)
            maps = self.heatmaps(batch["image"])
            losses.append(joints_mse(maps, batch["heatmaps"], batch["target_weight"]).cpu())
            xy, peaks = self.decode(maps, batch)
            for key, value in (("keypoints", xy), ("scores", peaks)):
                parts[key].append(value)
            for key in ("index", "center", "scale", "box_score"):
                parts[key].append(torch.as_tensor(batch[key]).cpu().numpy())
            ids = batch["image_id"]  # a tensor of COCO ids, or a list of MPII image names
            image_ids.extend(ids.tolist() if torch.is_tensor(ids) else list(ids))
        self.train(was_training)
        preds = KeypointPredictions(**{k: np.concatenate(v) for k, v in parts.items()}, image_id=image_ids)
        metrics = {"val_loss": float(torch.cat(losses).mean())}
        metrics.update({f"val_{k}": float(v) for k, v in self.scorer(preds, out_dir).items()})
        return metrics

    def selection_key(self, metrics: dict) -> tuple:
        """Highest ``selection_metric`` first (NaN last), then lowest validation loss."""
        value = metrics.get(f"val_{self.selection_metric}", float("nan"))
        return (-value if np.isfinite(value) else float("inf"), metrics.get("val_loss", float("inf")))

    def epoch_summary(self, metrics: dict) -> str:
        keys = ("val_loss", *(f"val_{k}" for k in self.summary_keys))
        return ", ".join(f"{k[4:]} {metrics[k]:.4g}" for k in keys if metrics.get(k) is not None)
