"""Inference engines with one interface: images [B, 1, H, W] -> (landmarks [B, K, 2] in input pixels, peaks [B, K]).

Both engines decode with the run's own heatmap codec, so the torch and ONNX paths differ only in the network
itself. ``TorchEngine`` runs the checkpoint's model; ``OnnxEngine`` runs a file written by ``landmark-afl export``
through onnxruntime (the optional extra ``pip install "landmark-afl[onnx]"``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.engine.optim import autocast_dtype, precision_label


class TorchEngine:
    """The checkpoint's model in PyTorch.

    Args:
        task: a ``LandmarkTask`` in eval mode (``TrainedRun.task``).
        device: where the model is.
        amp: mixed precision as in training (``optim.amp``): "auto" (bf16 on a GPU or CPU that supports it, else
            fp32), "off" (fp32), "bf16"; the output head and the decoding stay float32.

    Example:
        >>> from landmark_afl.engine.config import update_config
        >>> from landmark_afl.recipes.landmarks import LandmarkConfig, build_task
        >>> task = build_task(update_config(LandmarkConfig(), {"input_size": (64, 64)}), 3).eval()
        >>> xy, peaks = TorchEngine(task)(torch.zeros(2, 1, 64, 64))
        >>> xy.shape, peaks.shape
        ((2, 3, 2), (2, 3))
    """

    name = "torch"

    def __init__(self, task, device: str | torch.device = "cpu", amp: str = "auto") -> None:
        self.task = task.eval()
        self.device = torch.device(device)
        self.codec: GaussianHeatmapCodec = task.codec
        self.amp_dtype = autocast_dtype(amp, self.device)
        self.precision = precision_label(amp, self.device)

    @torch.inference_mode()
    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Activated heatmaps [B, K, H, W] float32 (peak 1 = confident)."""
        images = images.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            return self.task.heatmaps(images).float()

    def __call__(self, images: torch.Tensor, valid=None) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks [B, K, 2] (input pixels) and peaks [B, K]; ``valid`` [B, 2]: the unpadded (rows, cols)."""
        xy, peaks = self.codec.decode(self.heatmaps(images), valid)
        return xy.cpu().numpy().astype(np.float64), peaks.cpu().numpy().astype(np.float64)


class OnnxEngine:
    """A model exported with ``landmark-afl export`` run by onnxruntime.

    Args:
        path: the .onnx file (its metadata holds the codec and the checkpoint it came from).
        device: "cpu" or a CUDA device (uses onnxruntime's CUDA provider when it is installed).
        threads: intra-op threads (0 = onnxruntime's default, all cores).
    """

    name = "onnx"
    precision = "fp32"

    def __init__(self, path: str | Path, device: str | torch.device = "cpu", threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError(
                'the onnx engine needs onnxruntime: pip install "landmark-afl[onnx]" (or use --engine torch)'
            ) from err
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file; write one with `landmark-afl export RUN --onnx`")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # idle intra-op threads sleep instead of spinning, leaving the cycles to the reader (thread or processes; as
        # OMP_WAIT_POLICY=PASSIVE does for torch in ``predict``)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        self.metadata = read_onnx_metadata(self.path, self.session)
        codec = self.metadata["codec"]
        # files exported before the refinement was recorded decoded with the parabola
        self.codec = GaussianHeatmapCodec(
            tuple(codec["input_size"]), codec["sigma"], codec["stride"], codec.get("refine", "parabola")
        )
        self.input_name = self.session.get_inputs()[0].name

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])

    def __call__(self, images: torch.Tensor, valid=None) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks [B, K, 2] (input pixels) and peaks [B, K]; ``valid`` [B, 2]: the unpadded (rows, cols)."""
        xy, peaks = self.codec.decode(self.heatmaps(images), valid)
        return xy.numpy().astype(np.float64), peaks.numpy().astype(np.float64)


METADATA_KEY = "landmark_afl"


def read_onnx_metadata(path: Path, session=None) -> dict:
    """The landmark-afl metadata written by :func:`landmark_afl.inference.export.export_onnx`."""
    if session is None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path} has no {METADATA_KEY!r} metadata: export it with `landmark-afl export RUN --onnx`")
    return json.loads(raw)
