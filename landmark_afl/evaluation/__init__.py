"""Evaluation: false negatives, false positives and localisation error of decoded landmarks."""

from landmark_afl.evaluation.outcomes import SDR_RADII_MM, landmark_outcomes, summarize_outcomes

__all__ = ["SDR_RADII_MM", "landmark_outcomes", "summarize_outcomes"]
