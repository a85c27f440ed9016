"""Batch inference over clinical image folders: ``landmark-afl predict`` and ``landmark-afl export``.

Inputs (:mod:`.inputs`) -> streaming reads (:mod:`.stream`) -> an engine (:mod:`.engines`, torch or ONNX) ->
append-only, resumable outputs (:mod:`.writer`) with DICOM fields filtered by :mod:`.phi`; optional overlays
(:mod:`.overlay`); torchrun sharding (:mod:`.distributed`); ONNX export (:mod:`.export`).
"""

from __future__ import annotations

from landmark_afl.inference.distributed import DistContext, init_distributed
from landmark_afl.inference.engines import OnnxEngine, TorchEngine
from landmark_afl.inference.inputs import collect_inputs
from landmark_afl.inference.predictor import PredictOptions, PredictSummary, result_columns, run_predict
from landmark_afl.inference.stream import InferenceSet, make_loader, stream_batches

__all__ = [
    "DistContext",
    "InferenceSet",
    "OnnxEngine",
    "PredictOptions",
    "PredictSummary",
    "TorchEngine",
    "collect_inputs",
    "init_distributed",
    "make_loader",
    "result_columns",
    "run_predict",
    "stream_batches",
]
