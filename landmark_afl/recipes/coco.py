"""The COCO keypoints recipe (the AFL paper's Table 2): top-down person crops, heatmaps at 1/4, COCO AP.

``landmark-afl train --task coco data=ROOT`` with the official layout (``ROOT/annotations/person_keypoints_
{train,val}2017.json``, ``ROOT/{train,val}2017/``), or explicit files (``train_annotations=FILE
train_images=DIR val_annotations=FILE val_images=DIR``). Validation crops the ground-truth boxes, or a detector's
(``person_boxes=FILE``, e.g. ``COCO_val2017_detections_AP_H_56_person.json``), runs the flip test, rescores (mean
keypoint confidence above 0.2 x box score), applies OKS-NMS (0.9), writes ``val_keypoints.json`` (COCO results
format) into the run folder and scores it with pycocotools: ``val_AP, val_AP50, val_AP75, val_APM, val_APL,
val_AR`` in metrics.csv; the best checkpoint has the highest AP.

Model: segmentation-models-pytorch's FPN on a ResNet encoder with its final upsampling turned off
(``upsampling=1``), so it outputs the 17 heatmaps at stride 4, the resolution of SimpleBaseline's deconvolution head.
Chosen over a SimpleBaseline head because it is the detector the toolkit already ships for X-ray landmarks: AFL is
then measured on the same architecture, factory (encoders, pretrained weights with the offline fail-fast, head
initialisation) and export path, and its decoder (2.6 M parameters on resnet50) is lighter than SimpleBaseline's three
256-channel deconvolutions on the 2048-channel C5 (~10 M) while fusing the stride-4 to stride-32 features.
The default encoder is resnet50 (SimpleBaseline-Res50's backbone) without downloaded weights; published COCO figures
need ``encoder_weights=imagenet`` and the 140-epoch schedule on a GPU.

``check`` (``landmark-afl data check --task coco ROOT``) prints the AP ceiling of the data path at the configured
input size: ground truth -> crop -> target heatmaps -> decode -> back to the image -> pycocotools.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from landmark_afl.afl import AFLConfig
from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.data.keypoint_crop import CropAugment, KeypointInstances, TopDownDataset, affine_matrix, crop_targets
from landmark_afl.engine.optim import OptimConfig
from landmark_afl.recipes.base import Recipe, Training
from landmark_afl.recipes.topdown import check_pose_resume, load_pose_run, pose_loaders, pose_task
from landmark_afl.tasks.keypoints import KeypointPredictions

AP_METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR")


@dataclass(frozen=True)
class CocoConfig:
    """A COCO keypoints run (saved as config.yaml and in every checkpoint).

    Attributes:
        data: COCO root in the official layout (annotations/person_keypoints_{train,val}2017.json,
            train2017/, val2017/); the explicit *_annotations / *_images keys override its parts.
        train_annotations: training keypoint file (default ROOT/annotations/person_keypoints_train2017.json).
        train_images: training image folder (default ROOT/train2017).
        val_annotations: validation keypoint file, also the ground truth of COCO AP (default the val2017 one).
        val_images: validation image folder (default ROOT/val2017).
        person_boxes: COCO results file of person detections to crop at validation; None = ground-truth boxes.
        box_score_threshold: detections scoring below it are not cropped.
        input_size: crop size (H, W) fed to the network, multiples of 32; heatmaps are a quarter of it.
        sigma: standard deviation of the target Gaussians, in heatmap pixels.
        encoder: ResNet (or any smp) encoder of the FPN heatmap model.
        encoder_weights: None (no download) or an smp weights name such as "imagenet".
        flip_test: average the heatmaps with those of the mirrored crop at validation.
        keypoint_threshold: keypoints above this confidence make a person's score (rescoring).
        oks_threshold: OKS-NMS threshold per image.
        seed: seed of the initialisation, the data order and the augmentation.
        batch_size: crops per training step.
        num_workers: data loader worker processes (0 = in the main process).
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        afl: the Adversarial Focal Loss settings (afl.enabled=False trains the baseline).
        optim: optimiser and schedule (SimpleBaseline: Adam 1e-3, x0.1 at epochs 90 and 120, 140 epochs).
        augment: crop augmentation (HRNet's COCO factors: scale 0.35, rotation 45 degrees, flip).
    """

    data: str | None = None
    train_annotations: str | None = None
    train_images: str | None = None
    val_annotations: str | None = None
    val_images: str | None = None
    person_boxes: str | None = None
    box_score_threshold: float = 0.0
    input_size: tuple[int, int] = (256, 192)
    sigma: float = 2.0
    encoder: str = "resnet50"
    encoder_weights: str | None = None
    flip_test: bool = True
    keypoint_threshold: float = 0.2
    oks_threshold: float = 0.9
    seed: int = 0
    batch_size: int = 32
    num_workers: int = 0
    device: str = "auto"
    afl: AFLConfig = AFLConfig()
    optim: OptimConfig = OptimConfig(
        epochs=140, lr=1e-3, weight_decay=1e-4, schedule="multistep", milestones=(90, 120), warmup_epochs=0.0
    )
    augment: CropAugment = CropAugment()


# -- COCO ----------------------------------------------------------------------------------------------------------
def split_paths(cfg: CocoConfig, split: str) -> tuple[Path, Path]:
    """(annotation file, image folder) of ``split`` from the explicit keys, else from the official layout."""
    from landmark_afl.data.coco import official_paths

    ann, images = getattr(cfg, f"{split}_annotations"), getattr(cfg, f"{split}_images")
    if (ann is None or images is None) and cfg.data is None:
        raise ValueError(
            f"COCO needs its {split} data: give data=ROOT (the official layout ROOT/annotations/person_keypoints_"
            f"{split}2017.json and ROOT/{split}2017/) or {split}_annotations=FILE {split}_images=DIR"
        )
    default_ann, default_images = official_paths(cfg.data, split) if cfg.data is not None else (None, None)
    return Path(ann).expanduser() if ann else default_ann, Path(images).expanduser() if images else default_images


class CocoScorer:
    """COCO AP of validation predictions: rescoring, OKS-NMS, ``val_keypoints.json`` and pycocotools.

    Args:
        gt_file: the validation keypoint annotation file (the ground truth).
        keypoint_threshold: rescoring threshold.
        oks_threshold: OKS-NMS threshold.
    """

    def __init__(self, gt_file: Path, keypoint_threshold: float = 0.2, oks_threshold: float = 0.9) -> None:
        from landmark_afl.metrics.coco_keypoints import load_coco_gt

        self.gt_file = Path(gt_file)
        self.gt = load_coco_gt(self.gt_file)
        self.keypoint_threshold = keypoint_threshold
        self.oks_threshold = oks_threshold

    def results(self, preds: KeypointPredictions) -> list[dict]:
        from landmark_afl.metrics.coco_keypoints import keypoint_results

        return keypoint_results(
            preds.image_id, preds.keypoints, preds.scores, preds.box_score, np.prod(preds.scale, -1),
            self.keypoint_threshold, self.oks_threshold,
        )  # fmt: skip

    def __call__(self, preds: KeypointPredictions, out_dir: Path | None) -> dict:
        from landmark_afl.engine.atomic import write_atomic
        from landmark_afl.metrics.coco_keypoints import coco_keypoint_ap

        results = self.results(preds)
        if out_dir is not None:
            write_atomic(Path(out_dir) / "val_keypoints.json", json.dumps(results))
        return coco_keypoint_ap(self.gt, results)


def _val_instances(cfg: CocoConfig, use_detections: bool = True) -> tuple[KeypointInstances, Path]:
    from landmark_afl.data.coco import load_coco_persons

    ann, images = split_paths(cfg, "val")
    boxes = cfg.person_boxes if use_detections else None
    return load_coco_persons(ann, images, False, boxes, cfg.box_score_threshold), ann


def build(cfg: CocoConfig) -> Training:
    """Persons, loaders and task of a COCO run (files, images and pycocotools are checked up front)."""
    from landmark_afl.data.coco import load_coco_persons
    from landmark_afl.metrics.coco_keypoints import _pycocotools

    _pycocotools()
    train_ann, train_images = split_paths(cfg, "train")
    train = load_coco_persons(train_ann, train_images, True)
    val, val_ann = _val_instances(cfg)
    if val.keypoint_names != train.keypoint_names:
        raise ValueError(f"{train_ann} and {val_ann} name different keypoints; give files of the same data set")
    scorer = CocoScorer(val_ann, cfg.keypoint_threshold, cfg.oks_threshold)
    task = pose_task(cfg, train, scorer, "AP", ("AP", "AP50", "AR"))
    train_loader, val_loader = pose_loaders(cfg, task.codec, train, val)
    skipped = ", ".join(f"{n} {why}" for why, n in train.skipped.items())
    boxes = f"boxes of {Path(cfg.person_boxes).name}" if cfg.person_boxes else "ground-truth boxes"
    description = (
        f"COCO {train_ann.name} ({len(train)} train persons{'; skipped ' + skipped if skipped else ''}) / "
        f"{val_ann.name} ({len(val)} val persons, {boxes}), FPN {cfg.encoder}, input {tuple(cfg.input_size)}, "
        f"{'AFL' if cfg.afl.enabled else 'baseline (no AFL)'}"
    )
    run_meta = {
        "keypoints": list(train.keypoint_names),
        "flip_pairs": [list(p) for p in train.flip_pairs],
        "codec": task.codec.config(),
    }
    return Training(task, train_loader, val_loader, run_meta, description, Path(cfg.data) if cfg.data else None)


def evaluate(run_dir: Path, split: str = "val") -> dict:
    """COCO AP of ``best.pt`` on the validation set (keys without ``val_``)."""
    from landmark_afl.engine.device import resolve_device

    if split != "val":
        raise ValueError(f"the COCO recipe evaluates split 'val' (test-dev has no public ground truth), got {split!r}")
    cfg, state = load_pose_run(run_dir, CocoConfig)
    val, val_ann = _val_instances(cfg)
    task = pose_task(cfg, val, CocoScorer(val_ann, cfg.keypoint_threshold, cfg.oks_threshold), "AP", AP_METRICS)
    task.load_state_dict(state["task"])
    task.to(resolve_device(cfg.device))
    loader = DataLoader(TopDownDataset(val, task.codec), batch_size=cfg.batch_size)
    return {k[4:]: v for k, v in task.validate(loader, None).items()}


def ceiling_predictions(
    instances: KeypointInstances, codec: GaussianHeatmapCodec, refine: bool = True, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground truth -> crop -> target heatmaps -> decode -> inverse crop, without a model.

    Args:
        instances: the persons (ground-truth boxes and keypoints).
        codec: the heatmap codec of the input size.
        refine: decode with the codec (argmax + sub-pixel refinement); False keeps the plain argmax, the
            heatmap grid alone.
        chunk: persons per vectorised step.

    Returns:
        (keypoints [N, K, 2] in image pixels, peaks [N, K], crop areas [N]).
    """
    from landmark_afl.data.keypoint_crop import apply_affine, box_to_center_scale

    h, w = codec.input_size
    center, scale = box_to_center_scale(instances.boxes, w / h)
    forward = affine_matrix(center, scale, 0.0, codec.input_size)
    inverse = affine_matrix(center, scale, 0.0, codec.input_size, inverse=True)
    xy, peaks = [], []
    for s in range(0, len(instances), chunk):
        sl = slice(s, s + chunk)
        maps, _, _ = crop_targets(codec, instances.keypoints[sl], instances.visible[sl], forward[sl])
        if refine:
            decoded, peak = codec.decode(maps)
        else:
            peak, idx = maps.flatten(2).max(-1)
            grid = np.stack([idx % codec.heatmap_size[1], idx // codec.heatmap_size[1]], -1)
            decoded = torch.from_numpy((grid + 0.5) * codec.stride - 0.5)
        xy.append(apply_affine(inverse[sl], decoded.double().numpy()))
        peaks.append(peak.numpy())
    return np.concatenate(xy), np.concatenate(peaks), np.prod(scale, -1)


def check(data_dir: str | None, cfg: CocoConfig) -> str:
    """The AP ceiling of the data path on the validation ground truth at ``cfg.input_size`` (no model involved).

    Reported twice: with the codec's decoding (what training targets allow a perfect model) and with the plain
    argmax (what the heatmap grid alone allows), with the mean round-trip error of the labelled keypoints.
    """
    from landmark_afl.metrics.coco_keypoints import coco_keypoint_ap, keypoint_results

    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data=str(data_dir))
    val, ann = _val_instances(cfg, use_detections=False)
    codec = GaussianHeatmapCodec(tuple(cfg.input_size), sigma=cfg.sigma, stride=4)
    lines = [
        f"COCO {ann}: {len(val)} persons in {len(set(val.image_ids))} images, all images present"
        + (f" (skipped: {val.skipped})" if val.skipped else ""),
        f"AP ceiling of the data path at input {cfg.input_size[0]}x{cfg.input_size[1]} (heatmaps "
        f"{codec.heatmap_size[0]}x{codec.heatmap_size[1]}, sigma {cfg.sigma}); ground truth -> crop -> target "
        "heatmaps -> decode -> image -> pycocotools:",
    ]
    for refine, label in ((True, "codec decode (sub-pixel)"), (False, "plain argmax (grid only)")):
        xy, peaks, areas = ceiling_predictions(val, codec, refine)
        results = keypoint_results(
            val.image_ids, xy, peaks, np.ones(len(val)), areas, cfg.keypoint_threshold, cfg.oks_threshold
        )
        ap = coco_keypoint_ap(ann, results)
        err = np.linalg.norm(xy - val.keypoints, axis=-1)[val.visible]
        lines.append(
            f"  {label}: " + ", ".join(f"{k} {ap[k]:.4f}" for k in AP_METRICS) + f"; mean error {err.mean():.3f} px"
        )
    return "\n".join(lines)


RECIPE = Recipe(
    name="coco",
    summary="COCO keypoints, top-down (SimpleBaseline-style heatmaps on an FPN), COCO AP via pycocotools",
    config=CocoConfig,
    build=build,
    evaluate=evaluate,
    arms={"baseline": {"afl.enabled": False}, "AFL": {"afl.enabled": True}},
    report_metrics=AP_METRICS,
    splits=("val",),
    check=check,
    check_resume=check_pose_resume,
)
