"""The digits recipe: an offline, long-tailed classification table anyone can reproduce on a laptop CPU.

    landmark-afl compare --task digits --seeds 0,1,2

scikit-learn's bundled 8 x 8 handwritten digits (real scans, no download), split as ``landmark_afl.data.digits``
describes: a long-tailed training split (imbalance ratio 50: 100 images of digit 0 down to 2 of digit 9), balanced
val (20 per class, selects checkpoints) and test (50 per class, reported) splits, fixed by ``split_seed`` across
training seeds. A small CNN with the four loss arms of the paper's CIFAR table (``ce``, ``focal``, ``afl``,
``focal+afl``); a run of the defaults takes about 10 s on one CPU core.

The defaults (100 epochs, SGD with Nesterov momentum, lr 0.1 with a cosine schedule, no shift augmentation) were
chosen on the val split with the ``ce`` arm, seeds 0-2 (mean best val top-1): with a 1-pixel shift 0.77 / 0.87 /
0.93 after 30 / 60 / 100 epochs at lr 0.05; without it 0.93 / 0.95 after 60 / 100 epochs (lr 0.05 and 0.1 alike,
150 epochs and weight decay 1e-3 no better). On 8 x 8 images a 1-pixel shift moves the digit by an eighth of its
width. The test split was not looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from landmark_afl.afl import AFLConfig
from landmark_afl.data.digits import DigitsDataset, long_tail_counts, split_digits
from landmark_afl.engine.device import resolve_device
from landmark_afl.engine.optim import OptimConfig
from landmark_afl.losses.classification import CLASSIFICATION_LOSSES
from landmark_afl.models.small_cnn import SmallCNN
from landmark_afl.recipes.base import Recipe, Training, load_run
from landmark_afl.tasks.classification import LOSS_ARMS, ClassificationTask, classification_summary, loss_arm

NUM_CLASSES = 10


@dataclass(frozen=True)
class DigitsConfig:
    """A digits training run (saved as config.yaml and in every checkpoint).

    Attributes:
        data: must stay None: the recipe reads scikit-learn's bundled digits (no folder, no download).
        n_max: training images of the head class (digit 0).
        imbalance_ratio: n_max / n_min of the training split; class c keeps n_max * r^(-c / 9) images.
        val_per_class: images per class of the balanced validation split (selects checkpoints).
        test_per_class: images per class of the balanced test split (reported by compare).
        split_seed: seed of the split (fixed across training seeds, so seeds vary only the training).
        shift: training augmentation, a random translation by up to this many pixels (0 = none; no flips).
        width: channels of the small CNN's first layers (the last have twice as many).
        dropout: dropout before the classifier.
        loss: per-sample base loss, "ce" (cross-entropy) or "focal" (Lin et al.); AFL, when on, weights it.
        focal_gamma: focusing exponent of the focal loss (2).
        seed: seed of the initialisation, the data order and the augmentation.
        batch_size: images per training step.
        num_workers: data loader worker processes (0 = in the main process, the fastest for 8 x 8 images).
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        optim: optimiser and schedule.
        afl: Adversarial Focal Loss, the MLP critic over the softmax vector (``afl.enabled=False`` or ``--no-afl``
            trains the plain loss; ``afl.threshold`` is not used by classification).
    """

    data: str | None = None
    n_max: int = 100
    imbalance_ratio: float = 50.0
    val_per_class: int = 20
    test_per_class: int = 50
    split_seed: int = 0
    shift: int = 0
    width: int = 32
    dropout: float = 0.1
    loss: str = "ce"
    focal_gamma: float = 2.0
    seed: int = 0
    batch_size: int = 32
    num_workers: int = 0
    device: str = "auto"
    optim: OptimConfig = OptimConfig(
        epochs=100, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine",
        warmup_epochs=1.0, grad_clip=0.0, log_every=100,
    )  # fmt: skip
    afl: AFLConfig = AFLConfig()

    def __post_init__(self) -> None:
        if self.data is not None:
            raise ValueError(
                f"--task digits reads scikit-learn's bundled digits and takes no data folder (got data={self.data!r}); "
                "leave data unset"
            )
        if self.loss not in CLASSIFICATION_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(CLASSIFICATION_LOSSES)}, got {self.loss!r}")
        long_tail_counts(self.n_max, self.imbalance_ratio, NUM_CLASSES)  # raises with the reason
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def _splits(cfg: DigitsConfig) -> dict:
    return split_digits(cfg.n_max, cfg.imbalance_ratio, cfg.val_per_class, cfg.test_per_class, cfg.split_seed)


def build_task(cfg: DigitsConfig) -> ClassificationTask:
    model = SmallCNN(NUM_CLASSES, width=cfg.width, dropout=cfg.dropout)
    return ClassificationTask(model, NUM_CLASSES, cfg.loss, cfg.focal_gamma, cfg.afl)


def _loader(dataset, cfg: DigitsConfig, train: bool) -> DataLoader:
    # A last batch of one image would break BatchNorm in training; drop it then (and only then).
    return DataLoader(
        dataset, batch_size=cfg.batch_size if train else 256, shuffle=train,
        drop_last=train and len(dataset) % cfg.batch_size == 1, num_workers=cfg.num_workers,
    )  # fmt: skip


def build(cfg: DigitsConfig) -> Training:
    """The long-tailed training split, the balanced val split, the small CNN and the task of a digits run."""
    splits = _splits(cfg)
    train_set = DigitsDataset(splits["train"], shift=cfg.shift, seed=cfg.seed)
    val_set = DigitsDataset(splits["val"])
    if len(train_set) < cfg.batch_size:
        raise ValueError(f"{len(train_set)} training images is fewer than batch_size={cfg.batch_size}")
    task = build_task(cfg)
    counts = np.bincount(splits["train"].labels, minlength=NUM_CLASSES)
    description = (
        f"scikit-learn digits, long-tailed train {len(train_set)} ({counts[0]}..{counts[-1]} per class, ratio "
        f"{counts[0] / counts[-1]:g}) / {len(val_set)} balanced val, small CNN width {cfg.width}, loss "
        f"{loss_arm(cfg)}, input 8 x 8"
    )
    run_meta = {"train_counts": counts.tolist()}
    return Training(task, _loader(train_set, cfg, True), _loader(val_set, cfg, False), run_meta, description)


def evaluate(run_dir: Path, split: str) -> dict:
    """``top1``, ``top5``, ``balanced_acc``, ``loss`` and ``n`` of ``best.pt`` on ``split`` ("test" or "val");
    the per-class accuracy goes to ``<split>_per_class.csv`` in the run folder."""
    if split not in RECIPE.splits:
        raise ValueError(f"--task digits evaluates the splits {', '.join(RECIPE.splits)}, got {split!r}")
    _, state, cfg = load_run(run_dir, "digits", DigitsConfig)
    task = build_task(cfg)
    task.load_state_dict(state["task"])
    task.to(resolve_device("auto"))
    loader = _loader(DigitsDataset(_splits(cfg)[split]), cfg, train=False)
    return task.evaluate_loader(loader, Path(run_dir) / f"{split}_per_class.csv")


def check(data_dir: str | None, cfg: DigitsConfig) -> str:
    """What ``landmark-afl data check --task digits`` prints: the images per class of each split."""
    lines = ["scikit-learn digits (bundled, 1797 scans of 8 x 8)"]
    for name, split in _splits(cfg).items():
        counts = np.bincount(split.labels, minlength=NUM_CLASSES)
        lines.append(f"  {name}: {len(split.labels)} images, per class {counts.tolist()}")
    return "\n".join(lines)


RECIPE = Recipe(
    name="digits",
    summary="scikit-learn's 8 x 8 digits, long-tailed (ratio 50), a small CNN: an offline classification table",
    config=DigitsConfig,
    build=build,
    evaluate=evaluate,
    arms=LOSS_ARMS,
    report_metrics=("top1", "balanced_acc"),
    splits=("test", "val"),
    check=check,
    run_name=lambda cfg: f"digits-{loss_arm(cfg)}-s{cfg.seed}",
    summarize=classification_summary,
)
