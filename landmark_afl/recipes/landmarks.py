"""The landmark recipe: FPN heatmap detectors on X-ray landmark data sets (the toolkit's own layout), with AFL.

``build`` puts together the data set, protocol, loaders and ``LandmarkTask`` of a run; ``load_trained_run`` rebuilds
a trained run from its checkpoint for ``evaluate``, ``predict`` and ``export``. The embedded phantom is the default
data. Config keys of the first release (``lr``, ``afl``, ``critic_center``, ``aug_rotate``...) are accepted as
aliases of the nested keys for this release, with a notice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from landmark_afl.afl import AFLConfig
from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.codecs.gaussian_heatmap import REFINEMENTS
from landmark_afl.data.augment import AugmentConfig
from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint
from landmark_afl.engine.config import update_config
from landmark_afl.engine.device import resolve_device
from landmark_afl.engine.optim import OptimConfig
from landmark_afl.losses import HeatmapLoss
from landmark_afl.models import ModelConfig, build_model
from landmark_afl.models.fpn import check_input_size
from landmark_afl.recipes.base import Recipe, Training
from landmark_afl.tasks.landmark import LandmarkTask

__all__ = ["LandmarkConfig", "TrainedRun", "build", "build_task", "find_checkpoint", "load_trained_run"]


@dataclass(frozen=True)
class LandmarkConfig:
    """Everything a landmark training run depends on (saved as config.yaml and in every checkpoint).

    The defaults train the README's phantom run in about six minutes on 2 CPU cores (~34 s per epoch).

    Attributes:
        protocol: contrast protocol name (protocols/*.yaml) or path of a protocol file.
        data: data set folder in the toolkit's layout; None = the embedded phantom, generated once into the cache.
        train_split: the data set split trained on.
        val_split: the split that selects checkpoints (never the test split).
        input_size: network input (H, W), multiples of 32; images are letterboxed into it.
        encoder: any segmentation-models-pytorch encoder name (resnet18 is the fastest on 2 CPU cores).
        encoder_weights: None (no download) or an smp weights name such as "imagenet".
        loss: per-sample base loss: wmse (foreground-weighted MSE), mse, l1, bce, dice or focal.
        sigma: standard deviation of the target Gaussians, in heatmap pixels.
        detect_threshold: peak response that counts as detected (a perfect target peak is 1).
        decode: the sub-pixel refinement after the argmax: "soft-argmax" (the centroid of the peak's window, 3 sigma
            wide; better on the ISBI validation split by 0.15-0.25 mm) or "parabola" (three pixels per axis; runs
            trained before this key existed decode this way, as they did when they were trained).
        jpeg_scaling: read JPEG files by libjpeg's DCT-domain scaling at the coarsest of 1/2, 1/4, 1/8 that covers
            the input (a 1935 x 2400 cephalogram for 448 x 352: 1/4, read + protocol 10x faster), as JPEG 2000 is
            read at a reduced resolution level; False reads them in full. Runs saved before this key read JPEG in
            full and keep doing so (training, evaluation, predict).
        seed: seed of the model's initialisation, the data order and the augmentation.
        batch_size: images per training step.
        num_workers: data loader worker processes (0 = in the main process).
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        afl: the Adversarial Focal Loss settings (``afl.enabled=False`` or ``--no-afl`` trains the baseline). The
            landmark default centres the critic (``afl.critic_center=True``: the paper's form lets its scores
            collapse) and focuses the weights, ``w = s ** 2`` (``afl.focus_gamma=2``): the arm with the fewest
            validation false negatives in the seeded phantom study (README "Results"); ``afl.variant=paper`` trains
            the paper's exact form. Runs saved before ``focus_gamma`` existed keep the 1 they trained with.
        optim: optimiser and schedule.
        augment: training augmentation.
    """

    protocol: str = "high"
    data: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    input_size: tuple[int, int] = (256, 256)
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    loss: str = "wmse"
    sigma: float = 3.0
    detect_threshold: float = 0.5
    decode: str = "soft-argmax"
    jpeg_scaling: bool = True
    seed: int = 0
    batch_size: int = 4
    num_workers: int = 0
    device: str = "auto"
    afl: AFLConfig = AFLConfig(critic_center=True, focus_gamma=2.0)  # the study's choice (README "Results")
    optim: OptimConfig = OptimConfig(epochs=10)
    augment: AugmentConfig = AugmentConfig()

    def __post_init__(self) -> None:
        size = tuple(self.input_size)
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
            raise ValueError(f"input_size must be two positive ints [H, W] (multiples of 32), got {self.input_size}")
        check_input_size(size)
        for name, value in (("sigma", self.sigma), ("detect_threshold", self.detect_threshold)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.decode not in REFINEMENTS:
            raise ValueError(f"decode must be one of {', '.join(REFINEMENTS)}, got {self.decode!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 (0 = load in the main process), got {self.num_workers}")


def _aliases() -> dict[str, str]:
    """The flat keys of the first release -> their nested names."""
    out = {"afl": "afl.enabled", "afl_threshold": "afl.threshold"}
    out.update({f.name: f"afl.{f.name}" for f in fields(AFLConfig) if f.name.startswith(("critic_", "gp_"))})
    out.update({f.name: f"optim.{f.name}" for f in fields(OptimConfig)})
    out.update({f"aug_{f.name}": f"augment.{f.name}" for f in fields(AugmentConfig)})
    return out


ALIASES = _aliases()
# keys added after runs were saved without them -> what those runs were trained or decoded with
SAVED_BEFORE: dict[str, object] = {"decode": "parabola", "afl.focus_gamma": 1.0, "jpeg_scaling": False}


def resolve_data_dir(cfg: LandmarkConfig) -> Path:
    """The data set folder of a run: ``cfg.data``, or the embedded phantom (generated once, then cached)."""
    if cfg.data is None:
        from landmark_afl.data.default import default_data_dir

        return default_data_dir()
    return Path(cfg.data).expanduser().resolve()


def build_task(cfg: LandmarkConfig, num_landmarks: int, pretrained: bool = True) -> LandmarkTask:
    """The task of ``cfg`` for ``num_landmarks`` landmarks.

    ``pretrained=False`` builds the architecture without fetching ``encoder_weights``: a trained run's weights come
    from its checkpoint, so evaluate, predict and export work offline whatever the run was initialised from.
    """
    check_input_size(cfg.input_size)
    loss = HeatmapLoss(cfg.loss)
    head_bias = -2.19 if loss.activation == "sigmoid" else 0.0  # sigmoid(-2.19) = 0.1, CenterNet's prior
    model = build_model(
        ModelConfig(
            encoder=cfg.encoder,
            num_landmarks=num_landmarks,
            encoder_weights=cfg.encoder_weights if pretrained else None,
            head_bias=head_bias,
        )
    )
    codec = GaussianHeatmapCodec(cfg.input_size, sigma=cfg.sigma, refine=cfg.decode)
    return LandmarkTask(model, codec, loss, afl=cfg.afl, detect_threshold=cfg.detect_threshold)


def _split_set(cfg: LandmarkConfig, split: str, task: LandmarkTask, dataset, protocol, augmenter=None):
    from landmark_afl.data.training import LandmarkTrainingSet

    images = dataset.split(split)
    if not images:
        if split == cfg.val_split:
            raise ValueError(
                f"split {split!r} of {dataset.root} is empty, and training chooses its checkpoints on it. Convert the "
                "data again with a validation split (`landmark-afl data convert isbi2015|hand-atlas SRC DST`: 10 % "
                f"of the training images by default, --val N), or list a few training images under '{split}' in "
                f"{dataset.root / 'dataset.yaml'} (and take them out of 'train'). Never validate on the test split"
            )
        raise ValueError(f"split {split!r} of {dataset.root} is empty; set train_split= or fix splits in dataset.yaml")
    return LandmarkTrainingSet(dataset, images, protocol, task.codec, augmenter, seed=cfg.seed,
                               jpeg_scaling=cfg.jpeg_scaling)  # fmt: skip


def build(cfg: LandmarkConfig) -> Training:
    """Data set, protocol, loaders and task of a run (the protocol and data are validated here, up front)."""
    from landmark_afl.data.augment import Augmenter
    from landmark_afl.data.dataset import load_dataset
    from landmark_afl.protocols import load_protocol

    protocol = load_protocol(cfg.protocol)
    data_dir = resolve_data_dir(cfg)
    dataset = load_dataset(data_dir)
    task = build_task(cfg, len(dataset.landmarks))
    train_set = _split_set(cfg, cfg.train_split, task, dataset, protocol, Augmenter(cfg.augment, dataset.flip_pairs))
    val_set = _split_set(cfg, cfg.val_split, task, dataset, protocol)
    if len(train_set) < cfg.batch_size:
        raise ValueError(f"{len(train_set)} training images is fewer than batch_size={cfg.batch_size}")
    loader_kw = {"num_workers": cfg.num_workers}  # no persistent workers: set_epoch must reach them
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True, **loader_kw)
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False, **loader_kw)
    run_meta = {
        "landmarks": list(dataset.landmarks),
        "dataset_name": dataset.name,
        "data_dir": str(data_dir),
        "protocol": protocol.name,
        "protocol_spec": protocol.to_dict(),
        "codec": task.codec.config(),
        "loss_activation": task.loss.activation,
        "spacing_fallback": list(dataset.spacing_mm) if dataset.spacing_mm else None,
    }
    description = (
        f"data {data_dir} ({len(train_set)} train / {len(val_set)} val images), protocol {cfg.protocol}, "
        f"{'AFL' if cfg.afl.enabled else 'baseline (no AFL)'}, encoder {cfg.encoder}, input {cfg.input_size}"
    )
    return Training(task, train_loader, val_loader, run_meta, description, data_dir)


@dataclass
class TrainedRun:
    """A trained landmark model loaded from a run folder."""

    run_dir: Path
    checkpoint: Path
    config: LandmarkConfig
    task: LandmarkTask
    landmarks: list[str]
    protocol: str
    state: dict

    @property
    def codec(self) -> GaussianHeatmapCodec:
        return self.task.codec

    def set_decode(self, decode: str) -> None:
        """Decode with another sub-pixel refinement (one of ``REFINEMENTS``) from now on."""
        from dataclasses import replace

        self.config = replace(self.config, decode=decode)
        codec = self.task.codec
        self.task.codec = GaussianHeatmapCodec(codec.input_size, codec.sigma, codec.stride, refine=decode)

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
    if state.get("recipe", "landmarks") != "landmarks":
        raise CheckpointError(
            f"{path} was trained with --task {state['recipe']}; evaluate, report, predict and export take landmark "
            f"runs. Its validation metrics are in {path.parent.parent / 'metrics.csv'}; `landmark-afl compare --task "
            f"{state['recipe']}` evaluates such runs"
        )
    for key in ("config", "landmarks", "task", "protocol"):
        if key not in state:
            raise CheckpointError(f"{path} lacks {key!r}: not a landmark-afl landmark checkpoint")
    try:
        cfg = config_from_state(state, path)
        task = build_task(cfg, len(state["landmarks"]), pretrained=False)  # the weights are in the checkpoint
        task.load_state_dict(state["task"])
    except (ValueError, KeyError, TypeError, RuntimeError) as err:  # contents that contradict each other
        detail = " ".join(str(err).split())
        raise CheckpointError(
            f"{path} is inconsistent: its config, landmark list and weights do not fit together "
            f"({detail[:400]}{'...' if len(detail) > 400 else ''}); the file was edited or damaged - use another "
            "checkpoint of the run (--which last / best) or train again"
        ) from err
    task.to(device).eval()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return TrainedRun(run_dir, path, cfg, task, list(state["landmarks"]), state["protocol"], state)


def config_from_state(state: dict, path: Path) -> LandmarkConfig:
    """The run's config from a checkpoint (the flat keys of first-release checkpoints are translated; a key the
    checkpoint predates gets the value the run used then, ``SAVED_BEFORE``: e.g. the parabola decoding)."""
    import warnings

    from landmark_afl.engine.config import missing_saved_keys

    stored = dict(state["config"])
    stored.update(missing_saved_keys(stored, SAVED_BEFORE, ALIASES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # an old checkpoint is not the user's mistake
        return update_config(LandmarkConfig(), stored, source=str(path), aliases=ALIASES)


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


def _check_resume(state: dict, training: Training, path: Path) -> None:
    check_compatible(state, training.run_meta, path)


def evaluate(run_dir: Path, split: str) -> dict:
    """Validation metrics of ``best.pt`` on ``split`` (false negatives, MRE, SDR; no ``val_`` prefix)."""
    from landmark_afl.data.dataset import load_dataset

    run = load_trained_run(run_dir, "best", device=resolve_device("auto"))
    dataset = load_dataset(Path(run.state["data_dir"]))
    loader = DataLoader(_split_set(run.config, split, run.task, dataset, run.trained_protocol()), batch_size=8)
    metrics = run.task.validate(loader, None)
    return {k[4:]: v for k, v in metrics.items()}


def heatmap_ceiling(data_dir: str | Path, cfg: LandmarkConfig, split: str | None = None) -> dict:
    """The localisation error of the data path alone: ground truth -> letterbox -> target heatmaps -> decode ->
    original pixels, over ``split`` (default: the training split). What a perfect model would still lose at
    ``cfg.input_size`` and ``cfg.sigma``: MRE in mm (px where no spacing is known) and the worst error."""
    import numpy as np

    from landmark_afl.data.dataset import load_dataset
    from landmark_afl.data.letterbox import to_image_coords
    from landmark_afl.data.training import LandmarkTrainingSet
    from landmark_afl.metrics.landmarks import landmark_outcomes, summarize_outcomes
    from landmark_afl.protocols import load_protocol

    check_input_size(cfg.input_size)
    codec = GaussianHeatmapCodec(cfg.input_size, sigma=cfg.sigma, refine=cfg.decode)
    dataset = load_dataset(Path(data_dir))
    images = dataset.split(split or cfg.train_split)
    if not images:
        raise ValueError(f"split {split or cfg.train_split!r} of {data_dir} is empty")
    protocol = load_protocol(cfg.protocol)
    items = LandmarkTrainingSet(dataset, images, protocol, codec, None, jpeg_scaling=cfg.jpeg_scaling)
    loader = DataLoader(items, batch_size=8)
    preds, peaks, gts, spacings = [], [], [], []
    for batch in loader:
        xy, peak = codec.decode(batch["heatmaps"])
        preds.append(to_image_coords(xy.numpy(), batch["scale"].numpy()[:, None, :]))
        peaks.append(peak.numpy())
        gts.append(batch["target_xy"].numpy())
        spacings.append(batch["spacing"].numpy())
    outcomes = landmark_outcomes(
        np.concatenate(preds), np.concatenate(peaks), np.concatenate(gts), 0.0, np.concatenate(spacings)
    )
    summary = summarize_outcomes(outcomes)
    err_mm, err_px = outcomes["error_mm"], outcomes["error_px"]
    return {
        "split": split or cfg.train_split,
        "n_images": len(images),
        "input_size": list(cfg.input_size),
        "sigma": cfg.sigma,
        "mre_mm": summary["mre_mm"],
        "mre_px": summary["mre_px"],
        "max_mm": float(np.nanmax(err_mm)) if np.isfinite(err_mm).any() else None,
        "max_px": float(np.nanmax(err_px)) if np.isfinite(err_px).any() else None,
    }


def _check(data_dir: str, cfg: LandmarkConfig) -> str:
    c = heatmap_ceiling(data_dir, cfg)
    size = "x".join(str(v) for v in cfg.input_size)
    if c["mre_mm"] is not None:
        err = f"MRE {c['mre_mm']:.3f} mm (worst {c['max_mm']:.3f} mm; {c['mre_px']:.3f} px)"
    else:
        err = f"MRE {c['mre_px']:.3f} px (worst {c['max_px']:.3f} px; no pixel spacing known)"
    return (
        f"ceiling of the data path at input_size {size}, sigma {cfg.sigma}: {err} over the {c['n_images']} "
        f"{c['split']} images (ground truth -> target heatmaps -> decode -> image pixels; a perfect model's error)"
    )


def _after_fit(run_dir: Path, training: Training) -> None:
    from landmark_afl.afl.difficulty_report import write_difficulty_report

    if (Path(run_dir) / "difficulty.csv").is_file():
        write_difficulty_report(run_dir, training.data_dir)


def _run_name(cfg: LandmarkConfig) -> str:
    return f"{Path(cfg.protocol).stem}-{'afl' if cfg.afl.enabled else 'baseline'}-s{cfg.seed}"


def _summarize(best: dict) -> str:
    present = best.get("val_present", 0)
    fn = best.get("val_false_negatives", 0)
    mre, mre_px = best.get("val_mre_mm"), best.get("val_mre_px")
    if mre is not None:
        mre_txt = f"{mre:.2f} mm"
    elif mre_px is not None:
        mre_txt = f"{mre_px:.2f} px (no spacing known)"
    else:
        mre_txt = "n/a (no landmark detected yet: train longer, or lower detect_threshold)"
    sdr = ", ".join(f"{r} mm {best.get(f'val_sdr_{r}mm') or 0:.1f} %" for r in ("2", "2.5", "3", "4"))
    return (
        f"false negatives {fn} / {present} present landmarks ({100 * fn / max(present, 1):.1f} %), false positives "
        f"{best.get('val_false_positives')}, MRE {mre_txt}, SDR {sdr}"
    )


RECIPE = Recipe(
    name="landmarks",
    summary="X-ray landmark detection (the toolkit's data set layout; the embedded phantom by default)",
    config=LandmarkConfig,
    build=build,
    evaluate=evaluate,
    arms={"baseline": {"afl.enabled": False}, "AFL": {"afl.enabled": True}},
    report_metrics=("false_negatives", "mre_mm", "sdr_2mm"),
    splits=("test", "val"),
    aliases=ALIASES,
    saved_before=SAVED_BEFORE,
    after_fit=_after_fit,
    check=_check,
    check_resume=_check_resume,
    run_name=_run_name,
    summarize=_summarize,
)
