"""The MPII recipe (the AFL paper's Table 1): top-down crops of MPII persons, heatmaps at 1/4, PCKh.

``landmark-afl train --task mpii data=ROOT`` with HRNet's layout (``ROOT/annot/{train,valid}.json``,
``ROOT/annot/gt_valid.mat``, ``ROOT/images/``) or mmpose's (``ROOT/annotations/mpii_{train,val}.json``,
``ROOT/annotations/mpii_gt_val.mat``, ``ROOT/images/``), or explicit files (``train_annotations=FILE
val_annotations=FILE images=DIR head_boxes=FILE``). PCKh needs the head box of every validation person (the official
``gt_valid.mat`` or the JSON described in ``landmark_afl.data.mpii``); without them the run is refused up front,
because PCKh is normalised by the head size and there is nothing to normalise by.

Validation (flip test) writes ``val_predictions.json`` (per person: image, joints in the annotation file's 1-based
pixels, scores) into the run folder; metrics.csv gets ``val_PCKh`` (the official mean at 0.5, pelvis and thorax
excluded), ``val_PCKh_head`` ... ``val_PCKh_ankle`` and ``val_PCKh@0.1``; the best checkpoint has the highest PCKh.

Model: the COCO recipe's (smp FPN at stride 4 on a ResNet, see ``landmark_afl.recipes.coco``), 16 heatmaps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from landmark_afl.afl import AFLConfig
from landmark_afl.data.keypoint_crop import CropAugment, KeypointInstances, TopDownDataset
from landmark_afl.engine.optim import OptimConfig
from landmark_afl.recipes.base import Recipe, Training
from landmark_afl.recipes.topdown import check_pose_resume, load_pose_run, pose_loaders, pose_task
from landmark_afl.tasks.keypoints import KeypointPredictions

GROUP_KEYS = ("head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")
LAYOUTS = (  # (train json, val json, head boxes) under ROOT; images in ROOT/images
    ("annot/train.json", "annot/valid.json", "annot/gt_valid.mat"),
    ("annotations/mpii_train.json", "annotations/mpii_val.json", "annotations/mpii_gt_val.mat"),
)


@dataclass(frozen=True)
class MpiiConfig:
    """An MPII run (saved as config.yaml and in every checkpoint).

    Attributes:
        data: MPII root in HRNet's layout (annot/train.json, annot/valid.json, annot/gt_valid.mat, images/) or
            mmpose's (annotations/mpii_{train,val}.json, annotations/mpii_gt_val.mat, images/).
        train_annotations: training annotation JSON (overrides the layout's).
        val_annotations: validation annotation JSON (overrides the layout's).
        images: the image folder (default ROOT/images).
        head_boxes: validation head boxes, gt_valid.mat or the JSON of landmark_afl.data.mpii (overrides the layout's).
        input_size: crop size (H, W) fed to the network, multiples of 32; heatmaps are a quarter of it.
        sigma: standard deviation of the target Gaussians, in heatmap pixels.
        encoder: ResNet (or any smp) encoder of the FPN heatmap model.
        encoder_weights: None (no download) or an smp weights name such as "imagenet".
        flip_test: average the heatmaps with those of the mirrored crop at validation.
        seed: seed of the initialisation, the data order and the augmentation.
        batch_size: crops per training step.
        num_workers: data loader worker processes (0 = in the main process).
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        afl: the Adversarial Focal Loss settings (afl.enabled=False trains the baseline).
        optim: optimiser and schedule (HRNet's MPII: Adam 1e-3, x0.1 at epochs 170 and 200, 210 epochs).
        augment: crop augmentation (HRNet's MPII factors: scale 0.25, rotation 30 degrees, flip).
    """

    data: str | None = None
    train_annotations: str | None = None
    val_annotations: str | None = None
    images: str | None = None
    head_boxes: str | None = None
    input_size: tuple[int, int] = (256, 256)
    sigma: float = 2.0
    encoder: str = "resnet50"
    encoder_weights: str | None = None
    flip_test: bool = True
    seed: int = 0
    batch_size: int = 32
    num_workers: int = 0
    device: str = "auto"
    afl: AFLConfig = AFLConfig()
    optim: OptimConfig = OptimConfig(
        epochs=210, lr=1e-3, weight_decay=1e-4, schedule="multistep", milestones=(170, 200), warmup_epochs=0.0
    )
    augment: CropAugment = CropAugment(scale_factor=0.25, rotation_factor=30.0)


def resolve_paths(cfg: MpiiConfig) -> tuple[Path, Path, Path, Path | None]:
    """(train json, val json, image folder, head-box file or None) from the explicit keys, else the layout."""
    root = Path(cfg.data).expanduser() if cfg.data else None
    layout = LAYOUTS[0]
    if root is not None:
        layout = next((lay for lay in LAYOUTS if (root / lay[1]).is_file()), LAYOUTS[0])
    picked = []
    for key, rel in zip(("train_annotations", "val_annotations", "images"), (*layout[:2], "images"), strict=True):
        value = getattr(cfg, key)
        if value is None and root is None:
            raise ValueError(
                f"MPII needs {key}: give data=ROOT (HRNet's layout ROOT/annot/{{train,valid}}.json + "
                f"ROOT/annot/gt_valid.mat + ROOT/images/, or mmpose's ROOT/annotations/mpii_{{train,val}}.json) "
                f"or {key}=PATH"
            )
        picked.append(Path(value).expanduser() if value is not None else root / rel)
    head = Path(cfg.head_boxes).expanduser() if cfg.head_boxes else None
    if head is None and root is not None and (root / layout[2]).is_file():
        head = root / layout[2]
    return picked[0], picked[1], picked[2], head


class PckhScorer:
    """PCKh of validation predictions against the head-box ground truth; writes ``val_predictions.json``.

    Args:
        instances: the validation persons (their order is the head-box file's order).
        head_boxes: the loaded ``HeadBoxes``.
    """

    def __init__(self, instances: KeypointInstances, head_boxes) -> None:
        if len(head_boxes.boxes) != len(instances):
            raise ValueError(
                f"{head_boxes.source} holds {len(head_boxes.boxes)} head boxes, the validation file has "
                f"{len(instances)} persons; give the head boxes of the same validation file (same order)"
            )
        self.instances = instances
        self.head = head_boxes
        self.gt = head_boxes.joints if head_boxes.joints is not None else np.nan_to_num(instances.keypoints)
        self.missing = head_boxes.missing if head_boxes.missing is not None else ~instances.visible

    def __call__(self, preds: KeypointPredictions, out_dir: Path | None) -> dict:
        from landmark_afl.engine.atomic import write_atomic
        from landmark_afl.metrics.pckh import mpii_pckh

        order = np.argsort(preds.index)
        index = preds.index[order]
        if not np.array_equal(index, np.arange(len(self.instances))):
            raise ValueError(
                f"PCKh needs one prediction per validation person, got {len(index)} for {len(self.instances)}"
            )
        xy, scores = preds.keypoints[order], preds.scores[order]
        if out_dir is not None:
            rows = [
                {"image": image, "joints": (p + 1.0).round(3).tolist(), "scores": s.round(4).tolist()}
                for image, p, s in zip(self.instances.image_ids, xy, scores, strict=True)
            ]
            write_atomic(Path(out_dir) / "val_predictions.json", json.dumps(rows))
        table = mpii_pckh(xy, self.gt, self.missing, self.head.boxes)
        out = {"PCKh": table["mean"], "PCKh@0.1": table["mean@0.1"]}
        out.update({f"PCKh_{k}": table[k] for k in GROUP_KEYS})
        return out


def _val(cfg: MpiiConfig) -> tuple[KeypointInstances, PckhScorer]:
    from landmark_afl.data.mpii import load_head_boxes, load_mpii

    _, val_ann, images, head = resolve_paths(cfg)
    if head is None:
        raise ValueError(
            f"PCKh is refused: no head boxes for {val_ann}. PCKh normalises each error by the person's head size, so "
            "it needs the official gt_valid.mat (headboxes_src, pos_gt_src, jnt_missing) or a JSON of the same fields "
            "(see landmark_afl.data.mpii); give head_boxes=FILE"
        )
    val = load_mpii(val_ann, images)
    return val, PckhScorer(val, load_head_boxes(head))


def build(cfg: MpiiConfig) -> Training:
    """Persons, loaders and task of an MPII run (files, images and head boxes are checked up front)."""
    from landmark_afl.data.mpii import load_mpii

    train_ann, _, images, _ = resolve_paths(cfg)
    val, scorer = _val(cfg)
    train = load_mpii(train_ann, images)
    task = pose_task(cfg, train, scorer, "PCKh", ("PCKh", "PCKh@0.1"))
    train_loader, val_loader = pose_loaders(cfg, task.codec, train, val)
    description = (
        f"MPII {train_ann.name} ({len(train)} train persons) / {Path(scorer.head.source).name} + "
        f"{len(val)} val persons, FPN {cfg.encoder}, input {tuple(cfg.input_size)}, "
        f"{'AFL' if cfg.afl.enabled else 'baseline (no AFL)'}"
    )
    run_meta = {"keypoints": list(train.keypoint_names), "flip_pairs": [list(p) for p in train.flip_pairs]}
    run_meta["codec"] = task.codec.config()
    return Training(task, train_loader, val_loader, run_meta, description, Path(cfg.data) if cfg.data else None)


def evaluate(run_dir: Path, split: str = "val") -> dict:
    """PCKh of ``best.pt`` on the validation set (keys without ``val_``)."""
    from landmark_afl.engine.device import resolve_device

    if split != "val":
        raise ValueError(
            f"the MPII recipe evaluates split 'val' (the test set has no public ground truth), got {split!r}"
        )
    cfg, state = load_pose_run(run_dir, MpiiConfig)
    val, scorer = _val(cfg)
    task = pose_task(cfg, val, scorer, "PCKh", ("PCKh",))
    task.load_state_dict(state["task"])
    task.to(resolve_device(cfg.device))
    loader = DataLoader(TopDownDataset(val, task.codec), batch_size=cfg.batch_size)
    return {k[4:]: v for k, v in task.validate(loader, None).items()}


RECIPE = Recipe(
    name="mpii",
    summary="MPII human pose, top-down heatmaps on an FPN, PCKh@0.5 per joint group (official rules)",
    config=MpiiConfig,
    build=build,
    evaluate=evaluate,
    arms={"baseline": {"afl.enabled": False}, "AFL": {"afl.enabled": True}},
    report_metrics=("PCKh", "PCKh@0.1", *(f"PCKh_{k}" for k in GROUP_KEYS)),
    splits=("val",),
    check_resume=check_pose_resume,
)
