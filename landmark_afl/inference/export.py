"""Export a trained run's detector to ONNX (dynamic batch axis) for ``predict --engine onnx``.

The exported graph is the network plus its output activation: images [B, 1, H, W] -> activated heatmaps
[B, K, H, W]. Decoding stays in Python (the run's codec), shared with the torch engine. The file's metadata
(``landmark_afl`` key, JSON) records the landmark names, codec, protocol, detection threshold and the SHA-256 of the
checkpoint it came from, so ``predict`` can refuse an ONNX file that does not belong to the run.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from landmark_afl.engine.checkpoint import checkpoint_digest
from landmark_afl.inference.engines import METADATA_KEY

DEFAULT_OPSET = 17


class HeatmapNet(nn.Module):
    """The task's network with its output activation: images [B, 1, H, W] -> heatmaps [B, K, H, W]."""

    def __init__(self, task) -> None:
        super().__init__()
        self.task = task

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.task.heatmaps(images)


def export_onnx(run, out: str | Path, opset: int = DEFAULT_OPSET, check: bool = True) -> Path:
    """Write ``run``'s model to ``out`` as ONNX with a dynamic batch axis; returns the path.

    Args:
        run: a ``TrainedRun`` (``landmark_afl.recipes.landmarks.load_trained_run``).
        out: the .onnx file to write (replaced atomically).
        opset: ONNX opset version.
        check: run the file with onnxruntime on a batch of 2 and compare with PyTorch (max |diff| <= 1e-3).

    Raises:
        ImportError: the ``onnx`` package is missing (``pip install "landmark-afl[onnx]"``).
        RuntimeError: the exported graph disagrees with PyTorch.
    """
    try:
        import onnx
    except ImportError as err:
        raise ImportError('ONNX export needs the onnx package: pip install "landmark-afl[onnx]"') from err
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    task = run.task.to("cpu").eval()
    net = HeatmapNet(task).eval()
    h, w = task.codec.input_size
    example = torch.zeros(1, 1, h, w)
    tmp = out.with_name(f".{out.name}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # GroupNorm's batch-size check is traced as a constant (harmless: it only raises in training), and the
        # TorchScript exporter announces its deprecation; neither concerns the user of this command.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            net,
            (example,),
            str(tmp),
            input_names=["images"],
            output_names=["heatmaps"],
            dynamic_axes={"images": {0: "batch"}, "heatmaps": {0: "batch"}},
            opset_version=opset,
            dynamo=False,  # the TorchScript exporter: no onnxscript dependency, dynamic batch via dynamic_axes
        )
    model = onnx.load(str(tmp))
    meta = {
        "landmarks": list(run.landmarks),
        "codec": task.codec.config(),
        "protocol": run.protocol,
        "detect_threshold": task.detect_threshold,
        "activation": task.loss.activation,
        "checkpoint": str(run.checkpoint),
        "checkpoint_sha256": checkpoint_digest(run.checkpoint),
    }
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(model, str(tmp))
    if check:
        _check_against_torch(tmp, net, (h, w))
    os.replace(tmp, out)
    return out


def _check_against_torch(path: Path, net: nn.Module, size: tuple[int, int]) -> None:
    import numpy as np
    import onnxruntime as ort

    images = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(images).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": images.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if got.shape != expected.shape or diff > 1e-3:
        path.unlink(missing_ok=True)
        raise RuntimeError(
            f"ONNX export disagrees with PyTorch (shapes {got.shape} vs {expected.shape}, max |diff| {diff:.2e}); "
            "try another --opset or report the encoder name"
        )
