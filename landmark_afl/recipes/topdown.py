"""What the top-down pose recipes (COCO, MPII) share: the stride-4 codec, the FPN + ``KeypointTask``, the crop
loaders, loading a trained run back, and the resume check."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.data.keypoint_crop import KeypointInstances, TopDownDataset
from landmark_afl.recipes.base import Training
from landmark_afl.tasks.keypoints import KeypointTask


def pose_codec(input_size: tuple[int, int], sigma: float) -> GaussianHeatmapCodec:
    """The stride-4 heatmap codec of a crop size (H, W); the FPN needs multiples of 32."""
    from landmark_afl.models.fpn import check_input_size

    check_input_size(tuple(input_size))
    return GaussianHeatmapCodec(tuple(input_size), sigma=sigma, stride=4)


def pose_task(cfg, instances: KeypointInstances, scorer, selection: str, summary: tuple[str, ...]) -> KeypointTask:
    """FPN (3 channels in, K heatmaps at stride 4) + codec + ``KeypointTask`` of a top-down recipe's config."""
    from landmark_afl.models import ModelConfig, build_model

    codec = pose_codec(cfg.input_size, cfg.sigma)
    k = instances.keypoints.shape[1]
    model_cfg = ModelConfig(
        encoder=cfg.encoder, in_channels=3, num_landmarks=k, encoder_weights=cfg.encoder_weights, upsampling=1
    )
    return KeypointTask(
        build_model(model_cfg), codec, instances.flip_pairs, scorer, cfg.afl, cfg.flip_test, selection, summary
    )


def pose_loaders(cfg, codec, train: KeypointInstances, val: KeypointInstances) -> tuple[DataLoader, DataLoader]:
    if len(train) < cfg.batch_size:
        raise ValueError(f"{len(train)} training persons is fewer than batch_size={cfg.batch_size}; lower batch_size")
    kw = {"num_workers": cfg.num_workers}  # no persistent workers: set_epoch must reach them
    train_set = TopDownDataset(train, codec, cfg.augment, seed=cfg.seed)
    val_set = TopDownDataset(val, codec, None, seed=cfg.seed)
    return (
        DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True, **kw),
        DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False, **kw),
    )


def load_pose_run(run_dir: Path, config_cls):
    """(config, checkpoint state) of ``run_dir/checkpoints/best.pt`` (or a .pt file)."""
    from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint
    from landmark_afl.engine.config import update_config

    path = Path(run_dir)
    path = path if path.is_file() else path / "checkpoints" / "best.pt"
    if not path.is_file():
        raise CheckpointError(
            f"{path} does not exist; give a run folder of `landmark-afl train` that finished an epoch"
        )
    state = load_checkpoint(path, map_location="cpu")
    return update_config(config_cls(), state["config"], source=str(path)), state


def check_pose_resume(state: dict, training: Training, path: Path) -> None:
    """A resumed checkpoint must have been trained for the same keypoints and input size."""
    from landmark_afl.engine.checkpoint import CheckpointError

    for key in ("keypoints", "codec"):
        if state.get(key) != training.run_meta[key]:
            raise CheckpointError(
                f"{path} was trained with {key} {state.get(key)}, this run has {training.run_meta[key]}; resume with "
                "the same data and input_size, or start a new run"
            )
