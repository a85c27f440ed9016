"""The Python API: ``Detector.load(run)`` and ``detector(image)`` -> landmarks, the same numbers as ``predict``.

Example:
    >>> from landmark_afl import Detector  # doctest: +SKIP
    >>> detector = Detector.load("runs/high-afl")  # doctest: +SKIP
    >>> result = detector("ceph_001.dcm")  # doctest: +SKIP
    >>> result.xy[result.names.index("sella")], result.present.sum()  # doctest: +SKIP
    (array([812.3, 904.9]), 19)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class Landmarks:
    """The landmarks of one image.

    Attributes:
        names: the run's landmark names, K of them (the order of every array below).
        xy: [K, 2] (x, y) in pixels of the stored image: x = column, y = row, from the centre of the top-left pixel.
        xy_mm: [K, 2] the same in mm (``x * column spacing``, ``y * row spacing``), or None when no spacing is known.
        peaks: [K] the peak heatmap response (a confident landmark is near 1).
        present: [K] ``peaks >= threshold``: the landmark is detected.
        threshold: the detection threshold used.
        spacing_mm: (row, col) mm per pixel, or None.
        spacing_source: where the spacing came from ("PixelSpacing", "--spacing" for the ``spacing_mm`` argument,
            "none", ...).
        shape: (rows, cols) of the stored image.
        path: the file, or None for an array.
    """

    names: list[str]
    xy: np.ndarray
    xy_mm: np.ndarray | None
    peaks: np.ndarray
    present: np.ndarray
    threshold: float
    spacing_mm: tuple[float, float] | None
    spacing_source: str
    shape: tuple[int, int]
    path: str | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``{name: {"x", "y", "x_mm", "y_mm", "peak", "present"}}`` plus the image fields."""
        marks = {}
        for k, name in enumerate(self.names):
            mm = self.xy_mm[k] if self.xy_mm is not None else (None, None)
            marks[name] = {
                "x": float(self.xy[k, 0]), "y": float(self.xy[k, 1]),
                "x_mm": None if mm[0] is None else float(mm[0]), "y_mm": None if mm[1] is None else float(mm[1]),
                "peak": float(self.peaks[k]), "present": bool(self.present[k]),
            }  # fmt: skip
        return {
            "path": self.path,
            "shape": list(self.shape),
            "spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
            "spacing_source": self.spacing_source,
            "threshold": self.threshold,
            "landmarks": marks,
        }


class Detector:
    """A trained landmark run, ready to find its landmarks in images.

    The image goes through exactly the steps of ``landmark-afl predict``: ``read_image`` (a file, decoded for the
    network's input size) or the array as given, the run's contrast protocol, the letterbox into the network input,
    the torch engine (bf16 where the device has it, unless ``amp="off"``) and the codec's decoding, mapped back to
    the stored image's pixels.

    Args:
        run: a ``TrainedRun`` (``landmark_afl.recipes.landmarks.load_trained_run``).
        device: where the model runs ("auto", "cpu", "cuda", ...).
        amp: network precision: "auto", "off" (fp32) or "bf16".
        protocol: a protocol name or .yaml path to use instead of the run's own.

    Example:
        >>> detector = Detector.load("runs/high-afl", amp="off")  # doctest: +SKIP
        >>> detector(pixels_2d_array, spacing_mm=0.1).xy_mm.shape  # doctest: +SKIP
        (19, 2)
    """

    def __init__(self, run, device: str = "auto", amp: str = "auto", protocol: str | None = None) -> None:
        from landmark_afl.engine.device import resolve_device
        from landmark_afl.inference.engines import TorchEngine

        self.run = run
        self.device = resolve_device(device)
        self.run.task.to(self.device)
        self.engine = TorchEngine(run.task, self.device, amp=amp)
        self.protocol = run.protocol_for(protocol)
        self.names = list(run.landmarks)
        self.threshold = float(run.task.detect_threshold)

    @classmethod
    def load(
        cls, run: str | Path, which: str = "best", device: str = "auto", amp: str = "auto", protocol: str | None = None
    ) -> Detector:
        """Load a run folder made by ``landmark-afl train`` (or one of its checkpoints).

        Args:
            run: the run folder, or a checkpoint ``.pt`` file.
            which: "best" or "last" checkpoint of a run folder.
            device: where the model runs ("auto": CUDA when available).
            amp: network precision: "auto" (bf16 where the GPU or CPU has it), "off" (fp32), "bf16".
            protocol: a protocol name or .yaml path instead of the run's own.

        Raises:
            CheckpointError: not a landmark run, or a damaged checkpoint.
        """
        from landmark_afl.recipes.landmarks import load_trained_run

        return cls(load_trained_run(run, which=which, device="cpu"), device=device, amp=amp, protocol=protocol)

    def __call__(
        self,
        image: str | Path | np.ndarray,
        spacing_mm: float | tuple[float, float] | None = None,
        threshold: float | None = None,
    ) -> Landmarks:
        """Find the run's landmarks in one image.

        Args:
            image: a file ``read_image`` reads (DICOM, PNG, JPEG, TIFF, JPEG 2000, MHA, NIfTI...), or a 2-D array
                of raw pixel values (bone bright, as ``read_image`` returns them; the protocol windows them).
            spacing_mm: (row, col) or one value in mm per pixel, used when the image carries no spacing (as
                ``predict --spacing``); an array has none of its own.
            threshold: the detection threshold on the peak response (default: the run's ``detect_threshold``).

        Raises:
            ImageReadError: the file cannot be read (the message names it and the fix).
            ValueError: an array that is not 2-D or has non-finite values; a bad ``spacing_mm`` or ``threshold``.
        """
        from landmark_afl.data.letterbox import to_image_coords

        threshold = self.threshold if threshold is None else float(threshold)
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be a finite peak response > 0 (e.g. 0.5), got {threshold}")
        fallback = _spacing_pair(spacing_mm)
        prep, path = self._prepare(image, fallback)
        images = torch.from_numpy(np.ascontiguousarray(prep.image, dtype=np.float32))[None, None]
        xy_input, peaks = self.engine(images, torch.tensor([prep.valid]))
        xy = to_image_coords(xy_input[0], np.asarray(prep.scale, np.float64)[None, :])
        peaks = peaks[0]
        spacing = np.asarray(prep.spacing, np.float64)
        known = bool(np.all(np.isfinite(spacing)))
        source = prep.spacing_source if known else "none"
        if source == "dataset.yaml":  # prepare_image's name for the fallback
            source = "--spacing"
        return Landmarks(
            names=self.names,
            xy=xy,
            xy_mm=xy * spacing[::-1][None, :] if known else None,  # x * col spacing, y * row spacing
            peaks=peaks,
            present=peaks >= threshold,
            threshold=threshold,
            spacing_mm=(float(spacing[0]), float(spacing[1])) if known else None,
            spacing_source=source,
            shape=tuple(int(s) for s in prep.shape),
            path=path,
        )

    def _prepare(self, image, fallback):
        from landmark_afl.data.training import prepare_image, prepare_pixels

        size = self.engine.codec.input_size
        if isinstance(image, (str, Path)):
            return prepare_image(image, self.protocol, size, fallback, self.run.config.jpeg_scaling), str(image)
        array = np.asarray(image)
        if array.ndim != 2:
            raise ValueError(f"an image array must be 2-D [rows, cols] (grey), got shape {array.shape}")
        array = array.astype(np.float32)  # a copy: the protocol may work in place
        if not np.all(np.isfinite(array)):
            raise ValueError("the image array has NaN or infinite values; clean it before predicting")
        return prepare_pixels(array, {}, self.protocol, size, fallback), None

    def __repr__(self) -> str:
        return (
            f"Detector({self.run.run_dir}, {len(self.names)} landmarks, protocol {self.protocol.name!r}, "
            f"input {self.engine.codec.input_size}, {self.engine.precision})"
        )


def _spacing_pair(spacing_mm) -> tuple[float, float] | None:
    if spacing_mm is None:
        return None
    values = [float(spacing_mm)] * 2 if np.isscalar(spacing_mm) else [float(v) for v in spacing_mm]
    from landmark_afl.io.spacing import plausible_spacing

    if len(values) != 2 or not plausible_spacing(values):
        raise ValueError(f"spacing_mm must be one or two pixel sizes in mm between 0.001 and 10, got {spacing_mm}")
    return values[0], values[1]
