"""Writing a data set in the toolkit's layout (used by the converters and the phantom)."""

from __future__ import annotations

import csv
import os
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from landmark_afl.data.dataset import CSV_COLUMNS, CSV_NAME, IMAGES_DIR, YAML_NAME, DatasetError


@dataclass
class ConvertReport:
    """What a converter did (printed by the CLI)."""

    n_images: int = 0
    n_landmarks_written: int = 0
    skipped: list[str] = field(default_factory=list)
    transfer: Counter = field(default_factory=Counter)
    splits: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


VAL_FRACTION = 0.1


def default_val_count(n_train: int) -> int:
    """Images a converter moves from train to val by default: 10 % of the training images (at least 1 of 2 or more,
    15 of ISBI 2015's 150); the checkpoints are chosen on them, never on the test split."""
    return max(1, round(VAL_FRACTION * n_train)) if n_train >= 2 else 0


def carve_val(train: list[str], val_count: int | None, what: str) -> tuple[list[str], list[str]]:
    """(train, val): the last ``val_count`` of the sorted training images move to val (None: the
    :func:`default_val_count`; 0: no val split). ``what`` names the images in the error, e.g. "TrainingData images".

    Raises:
        DatasetError: ``val_count`` outside [0, len(train) - 1].
    """
    train = sorted(train)
    n_val = default_val_count(len(train)) if val_count is None else val_count
    if n_val < 0 or (n_val and n_val >= len(train)):
        raise DatasetError(f"the val count (--val) {n_val} must be in [0, {max(len(train) - 1, 0)}] ({what})")
    return train[: len(train) - n_val], train[len(train) - n_val :] if n_val else []


def prepare_output(dst: str | Path, force: bool = False) -> Path:
    """Make ``dst`` ready to receive a data set; never overwrites without ``force``.

    Raises:
        DatasetError: ``dst`` exists and is not empty (and ``force`` is False), or is a file.
    """
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise DatasetError(f"output {dst} is a file; give a folder path")
    if dst.is_dir() and any(dst.iterdir()):
        if not force:
            raise DatasetError(f"output folder {dst} exists and is not empty; choose another folder or pass --force")
        shutil.rmtree(dst)
    (dst / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    return dst


def link_or_copy(src: Path, dst: Path) -> str:
    """Hard-link ``src`` to ``dst`` when both are on one file system, else copy it; returns "link" or "copy"."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return "link"
    except OSError:
        shutil.copy2(src, dst)
        return "copy"


def write_landmarks_csv(
    path: Path, landmarks: Sequence[str], coords: Mapping[str, np.ndarray], decimals: int = 3
) -> None:
    """Write landmarks.csv: one row per present landmark (absent ones, NaN, get no row), images sorted."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for image in sorted(coords):
            for name, (x, y) in zip(landmarks, np.asarray(coords[image], dtype=np.float64), strict=True):
                if np.isfinite(x) and np.isfinite(y):
                    writer.writerow([image, name, f"{round(float(x), decimals):g}", f"{round(float(y), decimals):g}"])


def write_dataset_yaml(
    path: Path,
    name: str,
    landmarks: Sequence[str],
    splits: Mapping[str, Sequence[str]] | None = None,
    spacing_mm: tuple[float, float] | None = None,
    flip_pairs: Sequence[tuple[str, str]] = (),
    description: str | None = None,
    source: str | None = None,
) -> None:
    """Write dataset.yaml (keys in a fixed order so the file is stable)."""
    doc: dict = {"name": name}
    if description:
        doc["description"] = description
    if source:
        doc["source"] = source
    doc["landmarks"] = list(landmarks)
    doc["flip_pairs"] = [list(p) for p in flip_pairs]
    if spacing_mm is not None:
        doc["spacing_mm"] = [float(spacing_mm[0]), float(spacing_mm[1])]
    if splits is not None:
        doc["splits"] = {k: sorted(v) for k, v in splits.items()}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=120), encoding="utf-8")


def write_dataset_files(
    dst: Path, name: str, landmarks: Sequence[str], coords: Mapping[str, np.ndarray], **yaml_kw
) -> None:
    """Write dataset.yaml and landmarks.csv into ``dst`` (the images must already be under ``dst/images``)."""
    write_dataset_yaml(dst / YAML_NAME, name, landmarks, **yaml_kw)
    write_landmarks_csv(dst / CSV_NAME, landmarks, coords)
