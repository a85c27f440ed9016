"""Image classification task: logits, a per-sample base loss (CE or focal), optionally weighted by AFL.

With AFL, the critic is the paper's classification critic: an MLP (``ProbabilityCritic``) that judges the softmax
vector of a prediction (fake) against the one-hot label (real), with the same WGAN-GP objective and difficulty
score ``s[b] = sigmoid(-d(softmax(z_b)))`` as the landmark task. The four loss arms of the paper's Table 4 are
``ce``, ``focal``, ``afl`` (CE weighted by AFL) and ``focal+afl``.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from landmark_afl.afl import AdversarialFocalLoss, AFLConfig, ProbabilityCritic
from landmark_afl.engine.atomic import write_atomic
from landmark_afl.losses.classification import classification_loss, cross_entropy
from landmark_afl.metrics.classification import classification_metrics
from landmark_afl.tasks.base import TrainTask


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


# The four loss arms of the paper's classification table, as config overrides (for ``compare``).
LOSS_ARMS = {
    "ce": {"loss": "ce", "afl.enabled": False},
    "focal": {"loss": "focal", "afl.enabled": False},
    "afl": {"loss": "ce", "afl.enabled": True},
    "focal+afl": {"loss": "focal", "afl.enabled": True},
}


def classification_summary(best: dict) -> str:
    """The line printed when a classification run ends: its best epoch's validation top-1 (top-5) and balanced
    accuracy."""
    top5 = f", top-5 {100 * best['val_top5']:.2f} %" if "val_top5" in best else ""
    return f"top-1 {100 * best['val_top1']:.2f} %{top5}, balanced {100 * best['val_balanced_acc']:.2f} % (val)"


def loss_arm(cfg) -> str:
    """The arm a config trains: ``ce``, ``focal``, ``ce+afl`` or ``focal+afl``."""
    return cfg.loss + ("+afl" if cfg.afl.enabled else "")


class ClassificationTask(TrainTask):
    """Classification with CE or focal loss, with or without Adversarial Focal Loss.

    The batch is ``{"image": [B, ...], "label": int64 [B], "id": list[str]}``; the model maps images to logits
    [B, C].

    Args:
        model: images -> logits [B, C].
        num_classes: C.
        loss: the per-sample base loss, "ce" or "focal".
        focal_gamma: focusing exponent of "focal" (2 in Lin et al.).
        afl: AFL settings; AFL is on when given with ``enabled`` True, else the loss is ``mean_b L[b]``.
        record_ids: the training ids whose (score, base_loss) go to difficulty.csv every epoch when AFL is on;
            None = all (a CIFAR run over 200 epochs would keep 9 M rows: give a subset).

    Example:
        >>> from landmark_afl.models.small_cnn import SmallCNN
        >>> task = ClassificationTask(SmallCNN(num_classes=10), 10, loss="focal", afl=AFLConfig())
        >>> batch = {"image": torch.randn(4, 1, 8, 8), "label": torch.tensor([0, 1, 2, 3]), "id": list("abcd")}
        >>> out = task(batch)
        >>> out["loss"].ndim, sorted(out["records"])
        (0, ['base_loss', 'image', 'score'])
    """

    records_file = "difficulty.csv"
    console_keys = ("base_loss", "acc", "score_mean", "critic_loss")

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        loss: str = "ce",
        focal_gamma: float = 2.0,
        afl: AFLConfig | None = None,
        record_ids: Collection[str] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.model = model
        self.num_classes = int(num_classes)
        self.loss_name = loss
        self.loss = classification_loss(loss, gamma=focal_gamma)
        self.record_ids = None if record_ids is None else frozenset(record_ids)
        self.afl = None
        if afl is not None and afl.enabled:
            self.afl = AdversarialFocalLoss(ProbabilityCritic(self.num_classes), _identity, afl)

    def optimizer_parameters(self):
        return self.model.parameters()

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The model's logits [B, C], checked."""
        logits = self.model(images)
        if logits.ndim != 2 or logits.shape != (images.shape[0], self.num_classes):
            raise ValueError(
                f"the model must return logits [B, C] = [{images.shape[0]}, {self.num_classes}], "
                f"got {tuple(logits.shape)}"
            )
        return logits

    def forward(self, batch: dict) -> dict:
        labels = batch["label"]
        logits = self.logits(batch["image"])
        per_sample = self.loss(logits, labels)
        log = {
            "base_loss": per_sample.mean().detach(),
            "acc": (logits.detach().argmax(1) == labels).float().mean(),
        }
        if self.afl is None:
            return {"loss": per_sample.mean(), "log": log}
        fake = torch.softmax(logits.detach().float(), dim=1)
        real = F.one_hot(labels.long(), self.num_classes).float()
        afl_out = self.afl(fake, real, per_sample)
        scores = afl_out.pop("scores")
        loss = afl_out.pop("loss")
        log.update({"score_mean": scores.mean(), **afl_out})
        return {"loss": loss, "log": log, "records": self._records(batch["id"], scores, per_sample)}

    def _records(self, ids: list[str], scores: torch.Tensor, per_sample: torch.Tensor) -> dict:
        if self.record_ids is None:
            return {"image": list(ids), "score": scores, "base_loss": per_sample.detach()}
        keep = [i for i, name in enumerate(ids) if name in self.record_ids]
        index = torch.tensor(keep, dtype=torch.long, device=scores.device)
        return {
            "image": [ids[i] for i in keep],
            "score": scores.index_select(0, index),
            "base_loss": per_sample.detach().index_select(0, index),
        }

    @torch.no_grad()
    def predict_logits(self, loader) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [N, C] (float32, CPU) and labels [N] over a loader, in eval mode."""
        was_training = self.training
        self.eval()
        device = next(self.model.parameters()).device
        logits, labels = [], []
        try:
            for batch in loader:
                batch = self.batch_to(batch, device)
                logits.append(self.logits(batch["image"]).float().cpu())
                labels.append(batch["label"].cpu())
        finally:
            self.train(was_training)
        if not logits:
            raise ValueError("the validation loader is empty: no images to validate on")
        return torch.cat(logits), torch.cat(labels)

    def evaluate_loader(self, loader, per_class_csv: Path | None = None) -> dict:
        """``loss`` (mean cross-entropy, whatever the training loss, so that arms compare), ``top1``, ``top5``
        (where C >= 5), ``balanced_acc`` and ``n`` (images) over a loader; the per-class accuracy goes to
        ``per_class_csv`` when given."""
        logits, labels = self.predict_logits(loader)
        metrics = classification_metrics(logits, labels)
        per_class = metrics.pop("per_class")
        if per_class_csv is not None:
            write_per_class(Path(per_class_csv), per_class, labels, self.num_classes)
        return {"loss": float(cross_entropy(logits, labels, reduction="mean")), **metrics, "n": int(len(labels))}

    def validate(self, loader, out_dir: Path | None = None) -> dict:
        """``val_loss``, ``val_top1``, ``val_top5`` (C >= 5) and ``val_balanced_acc`` (see ``evaluate_loader``);
        with ``out_dir``, the per-class accuracy of the latest validation goes to ``val_per_class.csv`` there."""
        csv_path = None if out_dir is None else Path(out_dir) / "val_per_class.csv"
        metrics = self.evaluate_loader(loader, csv_path)
        return {f"val_{k}": v for k, v in metrics.items() if k != "n"}

    def selection_key(self, metrics: dict) -> tuple:
        """Highest validation top-1, then lowest validation loss."""
        return (-metrics["val_top1"], metrics["val_loss"])

    def epoch_summary(self, metrics: dict) -> str:
        parts = [f"top1 {100 * metrics['val_top1']:.2f} %"]
        if "val_top5" in metrics:
            parts.append(f"top5 {100 * metrics['val_top5']:.2f} %")
        parts.append(f"balanced {100 * metrics['val_balanced_acc']:.2f} %")
        parts.append(f"loss {metrics['val_loss']:.4f}")
        return ", ".join(parts)


def write_per_class(path: Path, accuracy: np.ndarray, labels: torch.Tensor, num_classes: int) -> None:
    """``class,count,accuracy`` rows (accuracy empty for a class with no image), written atomically."""
    counts = np.bincount(labels.numpy(), minlength=num_classes)
    rows = ["class,count,accuracy"]
    rows += [f"{c},{counts[c]},{'' if np.isnan(a) else f'{a:.6f}'}" for c, a in enumerate(accuracy)]
    write_atomic(path, "\n".join(rows) + "\n")
