"""Build a landmark training run from a TrainConfig, and load a trained run back for evaluation or inference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from landmark_afl.afl import AFLConfig
from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint
from landmark_afl.engine.config import TrainConfig, config_to_dict, sub_config, update_config
from landmark_afl.losses import HeatmapLoss
from landmark_afl.models import ModelConfig, build_model
from landmark_afl.models.fpn import check_input_size
from landmark_afl.tasks.landmark import LandmarkTask


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available here; use device=cpu or device=auto")
    return device


def resolve_data_dir(cfg: TrainConfig) -> Path:
    """The data set folder of a run: ``cfg.data``, or the embedded phantom (generated once, then cached)."""
    if cfg.data is None:
        from landmark_afl.data.default import default_data_dir

        return default_data_dir()
    return Path(cfg.data).expanduser().resolve()


def build_task(cfg: TrainConfig, num_landmarks: int) -> LandmarkTask:
    check_input_size(cfg.input_size)
    loss = HeatmapLoss(cfg.loss)
    head_bias = -2.19 if loss.activation == "sigmoid" else 0.0  # sigmoid(-2.19) = 0.1, CenterNet's prior
    model = build_model(
        ModelConfig(
            encoder=cfg.encoder, num_landmarks=num_landmarks, encoder_weights=cfg.encoder_weights, head_bias=head_bias
        )
    )
    codec = GaussianHeatmapCodec(cfg.input_size, sigma=cfg.sigma)
    afl = sub_config(AFLConfig, cfg, threshold="afl_threshold") if cfg.afl else None
    return LandmarkTask(model, codec, loss, afl=afl, detect_threshold=cfg.detect_threshold)


@dataclass
class LandmarkTraining:
    """Everything the trainer needs for a landmark run."""

    task: LandmarkTask
    train_loader: DataLoader
    val_loader: DataLoader
    run_meta: dict
    data_dir: Path


def build_training(cfg: TrainConfig) -> LandmarkTraining:
    """Data set, protocol, loaders and task of a run (the protocol and data are validated here, up front)."""
    from landmark_afl.data import load_dataset
    from landmark_afl.data.augment import AugmentConfig, Augmenter
    from landmark_afl.data.training import LandmarkTrainingSet
    from landmark_afl.protocols import load_protocol

    protocol = load_protocol(cfg.protocol)
    data_dir = resolve_data_dir(cfg)
    dataset = load_dataset(data_dir)
    train_images, val_images = dataset.split(cfg.train_split), dataset.split(cfg.val_split)
    for split, images in ((cfg.train_split, train_images), (cfg.val_split, val_images)):
        if not images:
            raise ValueError(f"split {split!r} of {data_dir} is empty; set train_split= / val_split= or fix splits")
    if len(train_images) < cfg.batch_size:
        raise ValueError(f"{len(train_images)} training images is fewer than batch_size={cfg.batch_size}")
    task = build_task(cfg, len(dataset.landmarks))
    aug_fields = ("rotate", "scale", "translate", "brightness", "contrast", "noise", "flip")
    augment = sub_config(AugmentConfig, cfg, **{k: f"aug_{k}" for k in aug_fields}, p_affine="aug_p_affine")
    augmenter = Augmenter(augment, dataset.flip_pairs)
    train_set = LandmarkTrainingSet(dataset, train_images, protocol, task.codec, augmenter, seed=cfg.seed)
    val_set = LandmarkTrainingSet(dataset, val_images, protocol, task.codec, None, seed=cfg.seed)
    loader_kw = {"num_workers": cfg.num_workers, "persistent_workers": cfg.num_workers > 0}
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True, **loader_kw)
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False, **loader_kw)
    run_meta = {
        "config": config_to_dict(cfg),
        "landmarks": list(dataset.landmarks),
        "dataset_name": dataset.name,
        "data_dir": str(data_dir),
        "protocol": protocol.name,
        "protocol_spec": protocol.to_dict(),
        "codec": task.codec.config(),
        "loss_activation": task.loss.activation,
        "spacing_fallback": list(dataset.spacing_mm) if dataset.spacing_mm else None,
    }
    return LandmarkTraining(task, train_loader, val_loader, run_meta, data_dir)


@dataclass
class TrainedRun:
    """A trained landmark model loaded from a run folder."""

    run_dir: Path
    checkpoint: Path
    config: TrainConfig
    task: LandmarkTask
    landmarks: list[str]
    protocol: str
    state: dict

    @property
    def codec(self) -> GaussianHeatmapCodec:
        return self.task.codec

    def trained_protocol(self):
        """The protocol exactly as it was when the run trained (saved in the checkpoint), whatever the files say now."""
        from landmark_afl.protocols import Protocol, load_protocol

        spec = self.state.get("protocol_spec")
        if spec is None:  # checkpoints written before the spec was saved
            return load_protocol(self.protocol)
        return Protocol.from_dict(spec, source=f"{self.checkpoint} (protocol_spec)")

    def protocol_for(self, name: str | None):
        """``name`` (a protocol name or path), or the trained protocol when None or equal to its name."""
        from landmark_afl.protocols import load_protocol

        return self.trained_protocol() if name in (None, self.protocol) else load_protocol(name)


def find_checkpoint(run: str | Path, which: str = "best") -> Path:
    """``run`` may be a run folder (uses checkpoints/{which}.pt) or a checkpoint file."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise CheckpointError(f"run {run} does not exist; give a run folder made by `landmark-afl train` or a .pt file")
    path = run / "checkpoints" / f"{which}.pt"
    if not path.is_file():
        raise CheckpointError(
            f"{run} has no checkpoints/{which}.pt; is it a landmark-afl run folder that finished an epoch?"
        )
    return path


def load_trained_run(run: str | Path, which: str = "best", device: str | torch.device = "cpu") -> TrainedRun:
    """Rebuild the task of a run from its checkpoint (config, landmark names and weights are inside it)."""
    path = find_checkpoint(run, which)
    state = load_checkpoint(path, map_location="cpu")
    for key in ("config", "landmarks", "task", "protocol"):
        if key not in state:
            raise CheckpointError(f"{path} lacks {key!r}: not a landmark-afl landmark checkpoint")
    cfg = update_config(TrainConfig(), state["config"], source=str(path))
    task = build_task(cfg, len(state["landmarks"]))
    task.load_state_dict(state["task"])
    task.to(device).eval()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return TrainedRun(run_dir, path, cfg, task, list(state["landmarks"]), state["protocol"], state)


def check_compatible(state: dict, run_meta: dict, path: Path) -> None:
    """A checkpoint being resumed must match the run's landmarks and protocol."""
    if list(state.get("landmarks", [])) != list(run_meta["landmarks"]):
        raise CheckpointError(
            f"{path} was trained for {len(state.get('landmarks', []))} landmarks "
            f"({', '.join(state.get('landmarks', [])[:4])}...), this data set has {len(run_meta['landmarks'])}; "
            "train a new run for this data set instead of resuming"
        )
    if state.get("protocol") != run_meta["protocol"]:
        raise CheckpointError(
            f"{path} was trained with protocol {state.get('protocol')!r}, this run asks for {run_meta['protocol']!r}; "
            "resume with the same protocol or start a new run"
        )
