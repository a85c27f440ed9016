"""The CIFAR recipe: WRN-28-10 on CIFAR-100 (the AFL paper's Table 4), with the four loss arms.

    landmark-afl train --task cifar data=~/data/cifar-100-python loss=focal afl.enabled=False

The standard recipe of Zagoruyko and Komodakis (2016): SGD with Nesterov momentum 0.9, lr 0.1, weight decay 5e-4,
batch 128, 200 epochs, the lr multiplied by 0.2 at epochs 60, 120 and 160, random crops with 4-pixel padding and
horizontal flips, dropout 0.3. Checkpoints are selected on ``val_split`` = 0.1 of the training images held out (5000,
50 per class, fixed by ``split_seed``) and ``evaluate(run, "test")`` reports the official test set once. The paper, like
most CIFAR tables, reports the test set it validated on; ``val_split=0`` reproduces that (val = test).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from landmark_afl.afl import AFLConfig
from landmark_afl.data.cifar import VARIANTS, CifarDataset, load_cifar, resolve_cifar_dir, stratified_holdout
from landmark_afl.engine.device import resolve_device
from landmark_afl.engine.optim import OptimConfig
from landmark_afl.losses.classification import CLASSIFICATION_LOSSES
from landmark_afl.models.wrn import WideResNet
from landmark_afl.recipes.base import Recipe, Training, load_run
from landmark_afl.tasks.classification import LOSS_ARMS, ClassificationTask, classification_summary, loss_arm

LAYOUT_HELP = (
    "the python version of CIFAR-100 from https://www.cs.toronto.edu/~kriz/cifar.html, unpacked: "
    "DIR/cifar-100-python/{train,test,meta} (data=DIR or data=DIR/cifar-100-python)"
)


@dataclass(frozen=True)
class CifarConfig:
    """A CIFAR training run (saved as config.yaml and in every checkpoint).

    Attributes:
        data: the folder of the unpacked python CIFAR pickles (cifar-100-python/ or its parent); required.
        dataset: "cifar100" (100 fine labels) or "cifar10" (cifar-10-batches-py/).
        val_split: fraction of the training images held out (stratified, fixed by split_seed) as the validation
            split that selects checkpoints (0.1 = 5000 of 50 000, 50 per class); 0 = validate on the official test
            set, as the paper does (then test is not held out).
        split_seed: seed of the held-out validation images (fixed across training seeds).
        depth: WRN depth, 6n + 4 (28 in the paper's WRN-28-10).
        width: WRN widening factor (10).
        dropout: dropout between the convolutions of each block (0.3, Zagoruyko and Komodakis).
        loss: per-sample base loss, "ce" (cross-entropy) or "focal" (Lin et al.); AFL, when on, weights it.
        focal_gamma: focusing exponent of the focal loss (2).
        augment: random crops with 4-pixel padding and horizontal flips on the training images.
        records: training images whose AFL difficulty is written to difficulty.csv every epoch (a subset fixed by
            split_seed, the same in every arm and seed); -1 = all (9 M rows over 200 epochs), 0 = none.
        eval_batch_size: images per validation batch.
        seed: seed of the initialisation, the data order and the augmentation.
        batch_size: images per training step.
        num_workers: data loader worker processes (0 = in the main process).
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        optim: optimiser and schedule (the standard CIFAR recipe by default).
        afl: Adversarial Focal Loss, the MLP critic over the softmax vector (``afl.enabled=False`` or ``--no-afl``
            trains the plain loss; ``afl.threshold`` is not used by classification).
    """

    data: str | None = None
    dataset: str = "cifar100"
    val_split: float = 0.1
    split_seed: int = 0
    depth: int = 28
    width: int = 10
    dropout: float = 0.3
    loss: str = "ce"
    focal_gamma: float = 2.0
    augment: bool = True
    records: int = 1000
    eval_batch_size: int = 256
    seed: int = 0
    batch_size: int = 128
    num_workers: int = 0
    device: str = "auto"
    optim: OptimConfig = OptimConfig(
        epochs=200, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="multistep",
        milestones=(60, 120, 160), step_gamma=0.2, warmup_epochs=0.0, grad_clip=0.0,
    )  # fmt: skip
    afl: AFLConfig = AFLConfig()

    def __post_init__(self) -> None:
        if self.dataset not in VARIANTS:
            raise ValueError(f"dataset must be one of {', '.join(VARIANTS)}, got {self.dataset!r}")
        if self.loss not in CLASSIFICATION_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(CLASSIFICATION_LOSSES)}, got {self.loss!r}")
        if self.depth < 10 or (self.depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 (10, 16, 22, 28, 40, ...), got {self.depth}")
        if not 0 <= self.val_split < 1:
            raise ValueError(f"val_split is a fraction of the training images in [0, 1), got {self.val_split}")
        if self.batch_size < 1 or self.eval_batch_size < 1 or self.records < -1:
            raise ValueError(
                f"batch_size >= 1, eval_batch_size >= 1 and records >= -1 are required, got {self.batch_size}, "
                f"{self.eval_batch_size}, {self.records}"
            )


def _data_dir(cfg: CifarConfig) -> Path:
    if cfg.data is None:
        raise ValueError(f"--task cifar needs data=DIR, the folder of {LAYOUT_HELP}")
    return resolve_cifar_dir(cfg.data, cfg.dataset)


def split_set(cfg: CifarConfig, split: str) -> CifarDataset:
    """The data set of ``split``: "train" (minus the held-out images, augmented), "val" or "test"."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    variant = VARIANTS[cfg.dataset]
    folder = _data_dir(cfg)
    if split == "test" or (split == "val" and cfg.val_split == 0):
        arrays = load_cifar(folder, "test", cfg.dataset)
    else:
        arrays = load_cifar(folder, "train", cfg.dataset)
        if cfg.val_split:
            n_val = max(1, round(cfg.val_split * len(arrays.labels)))
            keep, held = stratified_holdout(arrays.labels, n_val, cfg.split_seed)
            arrays = arrays.subset(keep if split == "train" else held)
    augment = cfg.augment and split == "train"
    return CifarDataset(arrays, variant.mean, variant.std, augment=augment, seed=cfg.seed)


def build_task(cfg: CifarConfig, record_ids=None) -> ClassificationTask:
    num_classes = VARIANTS[cfg.dataset].num_classes
    model = WideResNet(num_classes, depth=cfg.depth, width=cfg.width, dropout=cfg.dropout)
    return ClassificationTask(model, num_classes, cfg.loss, cfg.focal_gamma, cfg.afl, record_ids)


def _record_ids(ids: list[str], n: int, seed: int) -> list[str] | None:
    if n < 0 or n >= len(ids):
        return None
    pick = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    return [ids[i] for i in np.sort(pick)]


def _loader(dataset, batch_size: int, cfg, train: bool) -> DataLoader:
    # A last batch of one image would break BatchNorm in training; drop it then (and only then).
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=train, drop_last=train and len(dataset) % batch_size == 1,
        num_workers=cfg.num_workers, pin_memory=resolve_device(cfg.device).type == "cuda",
    )  # fmt: skip


def build(cfg: CifarConfig) -> Training:
    """Data (validated up front), loaders and task of a CIFAR run."""
    variant = VARIANTS[cfg.dataset]
    folder = _data_dir(cfg)
    train_set, val_set = split_set(cfg, "train"), split_set(cfg, "val")
    if len(train_set) < cfg.batch_size:
        raise ValueError(f"{len(train_set)} training images is fewer than batch_size={cfg.batch_size}")
    task = build_task(cfg, _record_ids(train_set.split.ids, cfg.records, cfg.split_seed))
    n_params = sum(p.numel() for p in task.model.parameters()) / 1e6
    val_name = f"{len(val_set)} val (held out of train)" if cfg.val_split else f"{len(val_set)} val (= the test set)"
    description = (
        f"{variant.name} {folder} ({len(train_set)} train / {val_name}), WRN-{cfg.depth}-{cfg.width} "
        f"({n_params:.1f} M parameters, dropout {cfg.dropout}), loss {loss_arm(cfg)}, input 32 x 32"
    )
    run_meta = {"data_dir": str(folder), "dataset": variant.name, "class_names": list(train_set.split.class_names)}
    return Training(
        task,
        _loader(train_set, cfg.batch_size, cfg, train=True),
        _loader(val_set, cfg.eval_batch_size, cfg, train=False),
        run_meta,
        description,
        folder,
    )


def evaluate(run_dir: Path, split: str) -> dict:
    """``top1``, ``top5``, ``balanced_acc``, ``loss`` and ``n`` of ``best.pt`` on ``split`` ("val" or "test"); the
    per-class accuracy goes to ``<split>_per_class.csv`` in the run folder."""
    if split not in RECIPE.splits:
        raise ValueError(f"--task cifar evaluates the splits {', '.join(RECIPE.splits)}, got {split!r}")
    _, state, cfg = load_run(run_dir, "cifar", CifarConfig)
    task = build_task(cfg)
    task.load_state_dict(state["task"])
    task.to(resolve_device("auto"))
    loader = _loader(split_set(cfg, split), cfg.eval_batch_size, cfg, train=False)
    return task.evaluate_loader(loader, Path(run_dir) / f"{split}_per_class.csv")


def check(data_dir: str, cfg: CifarConfig) -> str:
    """What ``landmark-afl data check --task cifar DIR`` prints: the split sizes and the class balance."""
    folder = resolve_cifar_dir(data_dir, cfg.dataset)
    lines = [f"{VARIANTS[cfg.dataset].name} at {folder}"]
    for split in ("train", "test"):
        arrays = load_cifar(folder, split, cfg.dataset)
        counts = np.bincount(arrays.labels, minlength=VARIANTS[cfg.dataset].num_classes)
        lines.append(f"  {split}: {len(arrays.labels)} images, {counts.min()}-{counts.max()} per class")
    if cfg.val_split:
        lines.append(f"  val: {cfg.val_split:.0%} of the training images held out (split_seed {cfg.split_seed})")
    return "\n".join(lines)


RECIPE = Recipe(
    name="cifar",
    summary="CIFAR-100 (or CIFAR-10) classification with WRN-28-10, the paper's Table 4 (official python pickles)",
    config=CifarConfig,
    build=build,
    evaluate=evaluate,
    arms=LOSS_ARMS,
    report_metrics=("top1", "balanced_acc"),
    splits=("test", "val"),
    check=check,
    run_name=lambda cfg: f"cifar-{loss_arm(cfg)}-s{cfg.seed}",
    summarize=classification_summary,
)
