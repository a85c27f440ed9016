"""Tasks: an nn.Module whose ``forward(batch)`` returns a dict with ``"loss"``; the trainer does the rest."""

from landmark_afl.tasks.base import TrainTask
from landmark_afl.tasks.landmark import LandmarkTask

__all__ = ["LandmarkTask", "TrainTask"]
