"""Evaluation: false negatives, false positives and localisation error of decoded landmarks."""

from landmark_afl.evaluation.evaluator import Evaluation, ProtocolResult, evaluate_run, predict_images
from landmark_afl.evaluation.outcomes import SDR_RADII_MM, landmark_outcomes, summarize_outcomes
from landmark_afl.evaluation.report import load_report, side_by_side, write_evaluation
from landmark_afl.evaluation.sweep import threshold_sweep

__all__ = [
    "SDR_RADII_MM",
    "Evaluation",
    "ProtocolResult",
    "evaluate_run",
    "landmark_outcomes",
    "load_report",
    "predict_images",
    "side_by_side",
    "summarize_outcomes",
    "threshold_sweep",
    "write_evaluation",
]
