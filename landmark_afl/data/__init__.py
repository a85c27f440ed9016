"""Landmark data sets: the toolkit's layout, its checker, converters from public layouts, and the phantom."""

from __future__ import annotations

from landmark_afl.data.check import CheckSummary, check_dataset
from landmark_afl.data.convert_hand_atlas import convert_hand_atlas
from landmark_afl.data.convert_isbi2015 import convert_isbi2015
from landmark_afl.data.dataset import DatasetError, LandmarkDataset, Problem, load_dataset
from landmark_afl.data.default import default_data_dir
from landmark_afl.data.phantom import generate_phantom

__all__ = [
    "CheckSummary",
    "DatasetError",
    "LandmarkDataset",
    "Problem",
    "check_dataset",
    "convert_hand_atlas",
    "convert_isbi2015",
    "default_data_dir",
    "generate_phantom",
    "load_dataset",
]
