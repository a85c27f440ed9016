"""Run a trained landmark model over a data set split under one or more contrast protocols.

Each image is read, put through the protocol and letterboxed exactly as in training (``prepare_image``), predicted
once per protocol (in batches), and compared with the ground truth by ``landmark_outcomes``. The result keeps the
raw predictions and peak responses, so the threshold sweep and every report are computed from it without running
the model again.

The detection threshold is a peak response on the scale of the training targets, whose peak is 1; the default is
the run's ``detect_threshold`` (0.5 unless the run set another), i.e. a landmark counts as detected when its
heatmap reaches half the height of a perfect target peak.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from landmark_afl.metrics.landmarks import landmark_outcomes, summarize_outcomes


@dataclass
class ProtocolResult:
    """Predictions of one protocol over N images (K landmarks).

    Attributes:
        protocol: the protocol name.
        images: the N image keys that were predicted (failed ones are left out and listed in ``failed``).
        pred_xy: predicted landmarks [N, K, 2] in original image pixels.
        peaks: peak heatmap responses [N, K].
        gt_xy: ground truth [N, K, 2], NaN = absent.
        spacing: (row, col) mm per pixel [N, 2], NaN where unknown.
        spacing_source: where each image's spacing came from (N strings; "none" when unknown).
        failed: (image key, reason) of images that could not be read or prepared.
    """

    protocol: str
    images: list[str]
    pred_xy: np.ndarray
    peaks: np.ndarray
    gt_xy: np.ndarray
    spacing: np.ndarray
    spacing_source: list[str]
    failed: list[tuple[str, str]] = field(default_factory=list)

    def outcomes(self, threshold: float) -> dict[str, np.ndarray]:
        """``landmark_outcomes`` of these predictions at ``threshold``."""
        return landmark_outcomes(self.pred_xy, self.peaks, self.gt_xy, threshold, self.spacing)


@dataclass
class Evaluation:
    """A run evaluated on one split under one or more protocols (see ``evaluate_run``)."""

    run_dir: Path
    checkpoint: Path
    which: str
    config: dict
    trained_protocol: str
    epoch: int | None
    data_dir: Path
    dataset_name: str
    split: str
    threshold: float
    landmarks: list[str]
    results: dict[str, ProtocolResult]
    precision: str = "fp32"

    @property
    def afl(self) -> bool:
        afl = self.config.get("afl", False)  # a section {"enabled": ...}; a bool in first-release checkpoints
        return bool(afl.get("enabled", False) if isinstance(afl, dict) else afl)


def predict_images(
    task,
    dataset,
    images: Sequence[str],
    protocol,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    amp: str = "auto",
    jpeg_scaling: bool = True,
) -> ProtocolResult:
    """Predict every image of ``images`` once under ``protocol``; an unreadable image is recorded, not fatal.

    Args:
        task: a ``LandmarkTask`` in eval mode (its codec's input size is the network input).
        dataset: the ``LandmarkDataset`` the image keys belong to.
        images: image keys.
        protocol: a loaded ``Protocol``.
        batch_size: images per forward pass.
        progress: called as ``progress(done, total)`` after each batch.
        amp: mixed precision of the network, as ``optim.amp`` ("auto": bf16 where the device has it, "off": fp32).
        jpeg_scaling: read JPEG files at the input's scale (the run's ``jpeg_scaling``; ``prepare_image``).
    """
    from landmark_afl.data.training import prepare_image
    from landmark_afl.engine.optim import autocast_dtype
    from landmark_afl.io import ImageReadError

    device = next(task.model.parameters()).device
    amp_dtype = autocast_dtype(amp, device)
    k = len(dataset.landmarks)
    kept, failed, preds, peaks, gts, spacings, sources = [], [], [], [], [], [], []
    pending: list = []

    def flush() -> None:
        if not pending:
            return
        batch = {
            "image": torch.from_numpy(np.stack([p.image for _, p in pending]))[:, None].to(device),
            "scale": torch.from_numpy(np.stack([p.scale for _, p in pending]).astype(np.float32)),
            "valid": torch.tensor([p.valid for _, p in pending], dtype=torch.int64),
        }
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            xy, peak = task.predict(batch)
        preds.append(xy)
        peaks.append(peak)
        for key, prep in pending:
            kept.append(key)
            gts.append(dataset.coords(key))
            spacings.append(prep.spacing)
            sources.append(prep.spacing_source)
        pending.clear()
        if progress is not None:
            progress(len(kept) + len(failed), len(images))

    for key in images:
        try:
            path = dataset.image_path(key)
            prep = prepare_image(path, protocol, task.codec.input_size, dataset.spacing_mm, jpeg_scaling)
        except (ImageReadError, OSError, ValueError) as err:
            failed.append((key, str(err)))
            continue
        pending.append((key, prep))
        if len(pending) >= batch_size:
            flush()
    flush()
    n = len(kept)
    return ProtocolResult(
        protocol=protocol.name,
        images=kept,
        pred_xy=np.concatenate(preds).astype(np.float64) if n else np.zeros((0, k, 2)),
        peaks=np.concatenate(peaks).astype(np.float64) if n else np.zeros((0, k)),
        gt_xy=np.stack(gts).astype(np.float64) if n else np.zeros((0, k, 2)),
        spacing=np.stack(spacings).astype(np.float64) if n else np.zeros((0, 2)),
        spacing_source=sources,
        failed=failed,
    )


def resolve_protocols(spec: str | Sequence[str] | None, default: str) -> list[str]:
    """``None`` -> [default]; ``"all"`` -> every protocol of ``list_protocols()``; ``"a,b"`` or a list -> those.

    Raises:
        ProtocolError: an unknown name (the message lists the known ones).
    """
    from landmark_afl.protocols import ProtocolError, list_protocols, load_protocol

    if spec is None:
        names = [default]
    elif isinstance(spec, str):
        names = list_protocols() if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    else:
        names = list(spec)
    if not names:
        raise ProtocolError(f"no protocol given ({spec!r}); use all or a comma-separated list of {list_protocols()}")
    for name in names:
        if name != default:  # the trained protocol is rebuilt from the checkpoint, not looked up
            load_protocol(name)  # validates, with the protocol module's own message
    return list(dict.fromkeys(names))


def run_data_dir(trained) -> Path:
    """The data set a run was trained on: the checkpoint's ``data_dir``, else its config (phantom when unset)."""
    from landmark_afl.recipes.landmarks import resolve_data_dir

    stored = trained.state.get("data_dir")
    if stored:
        return Path(stored)
    return resolve_data_dir(trained.config)


def evaluate_run(
    run: str | Path,
    data: str | Path | None = None,
    split: str = "test",
    protocols: str | Sequence[str] | None = None,
    threshold: float | None = None,
    which: str = "best",
    device: str = "cpu",
    batch_size: int = 8,
    progress: Callable[[str, int, int], None] | None = None,
    amp: str = "auto",
    decode: str | None = None,
) -> Evaluation:
    """Evaluate a run folder (or checkpoint) on a split of a data set under each requested protocol.

    Example:
        >>> ev = evaluate_run("runs/high-afl", split="test", protocols="all")  # doctest: +SKIP
        >>> summarize_outcomes(ev.results["low"].outcomes(ev.threshold))["false_negatives"]  # doctest: +SKIP
        12

    Args:
        run: run folder made by ``landmark-afl train`` or a checkpoint file.
        data: data set folder; default: the data set the run was trained on.
        split: split name of the data set ("test", "val", "train" or one of dataset.yaml).
        protocols: None (the run's own protocol), "all", "name,name" or a list of names / .yaml paths.
        threshold: detection threshold on the peak response (target peak = 1); default: the run's
            ``detect_threshold``.
        which: "best" or "last" checkpoint of a run folder.
        device: "cpu", "cuda", "auto", ...
        batch_size: images per forward pass.
        progress: called as ``progress(protocol, done, total)``.
        amp: mixed precision of the network: "auto" (bf16 on a GPU or CPU that has it, else fp32), "off", "bf16".
        decode: the sub-pixel refinement ("soft-argmax" or "parabola"); default: the run's ``decode``.

    Raises:
        CheckpointError: the run is missing or not a landmark-afl run.
        DatasetError / KeyError: the data set or the split is wrong.
        ProtocolError: an unknown protocol.
        ValueError: the data set's landmarks differ from the run's, or the split is empty.
    """
    from landmark_afl.data.dataset import load_dataset
    from landmark_afl.recipes.landmarks import load_trained_run, resolve_device

    trained = load_trained_run(run, which=which, device=resolve_device(device))
    if decode is not None and decode != trained.config.decode:
        trained.set_decode(decode)
    names = resolve_protocols(protocols, trained.protocol)
    data_dir = Path(data).expanduser().resolve() if data is not None else run_data_dir(trained)
    dataset = load_dataset(data_dir)
    if list(dataset.landmarks) != list(trained.landmarks):
        raise ValueError(
            f"{data_dir} has landmarks {list(dataset.landmarks)[:4]}... ({len(dataset.landmarks)}), the run "
            f"{trained.run_dir} was trained on {trained.landmarks[:4]}... ({len(trained.landmarks)}); evaluate on a "
            "data set with the same landmark list (--data)"
        )
    try:
        images = dataset.split(split)
    except KeyError as err:
        raise ValueError(str(err).strip("'\"")) from err
    if not images:
        raise ValueError(f"split {split!r} of {data_dir} is empty; choose another --split or define it in dataset.yaml")
    thr = float(trained.task.detect_threshold if threshold is None else threshold)
    results = {}
    for name in names:
        protocol = trained.protocol_for(name)
        report = None if progress is None else (lambda done, total, p=protocol.name: progress(p, done, total))
        results[protocol.name] = predict_images(trained.task, dataset, images, protocol, batch_size, report, amp,
                                                trained.config.jpeg_scaling)  # fmt: skip
    from landmark_afl.engine.config import config_to_dict
    from landmark_afl.engine.optim import precision_label

    return Evaluation(
        run_dir=trained.run_dir,
        checkpoint=trained.checkpoint,
        which=which,
        config=config_to_dict(trained.config),
        trained_protocol=trained.protocol,
        epoch=trained.state.get("epoch"),
        data_dir=data_dir,
        dataset_name=dataset.name,
        split=split,
        threshold=thr,
        landmarks=list(trained.landmarks),
        results=results,
        precision=precision_label(amp, next(trained.task.model.parameters()).device),
    )


def summarize_result(result: ProtocolResult, threshold: float, landmarks: Sequence[str]) -> dict:
    """Totals and the ``per_landmark`` list of one protocol (the ``report.json`` entry without the sweep)."""
    outcomes = result.outcomes(threshold)
    total = summarize_outcomes(outcomes)
    per = summarize_outcomes(outcomes, axis=0)
    per_landmark = []
    for j, name in enumerate(landmarks):
        entry = {"landmark": name}
        for key, value in per.items():
            entry[key] = {r: v[j] for r, v in value.items()} if isinstance(value, dict) else value[j]
        per_landmark.append(entry)
    known = sum(1 for s in result.spacing_source if s != "none")
    unit = "mm" if known == len(result.images) and known else ("px" if known == 0 else "mixed")
    return {
        "n_images": len(result.images),
        "n_failed": len(result.failed),
        "failed": [{"image": k, "reason": r} for k, r in result.failed],
        "error_unit": unit,
        "spacing_sources": sorted(set(result.spacing_source)),
        **total,
        "per_landmark": per_landmark,
    }
