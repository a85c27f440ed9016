"""``check_dataset``: validate a data set folder before training (reads every image).

Checks, on top of the structural checks of :func:`~landmark_afl.data.dataset.parse_dataset` (YAML keys, CSV
columns, numeric coordinates, known landmark names, known images, no duplicate rows, splits naming existing
images): every image is readable by :func:`landmark_afl.io.read_image`, every landmark lies inside its image
(pixel centres run from 0 to W - 1, so the image covers [-0.5, W - 0.5]), and images without any landmark row are
reported (a warning: all their landmarks would count as absent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landmark_afl.data.dataset import CSV_NAME, Problem, parse_dataset
from landmark_afl.data.letterbox import inside_image


@dataclass
class CheckSummary:
    """Counts shown by ``landmark-afl data check`` (filled by :func:`check_dataset`)."""

    name: str = ""
    n_images: int = 0
    n_landmarks: int = 0
    n_present: int = 0
    n_absent: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    explicit_splits: bool = False
    spacing_sources: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)
    unreadable: int = 0


def check_dataset(
    root: str | Path,
    summary: CheckSummary | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Problem]:
    """Validate a data set folder and return every problem found (empty list: the data set is fine).

    Args:
        root: the data set folder (with dataset.yaml, images/, landmarks.csv).
        summary: filled with counts for a report when given.
        progress: called as ``progress(done, total)`` after each image read.

    Returns:
        Problems with file, row and message; ``severity`` is "error" or "warning".
    """
    from landmark_afl.io import read_image

    summary = summary if summary is not None else CheckSummary()
    ds, problems, lines = parse_dataset(root)
    with_rows = {image for image, _ in lines}
    if ds is None:
        return problems
    summary.name, summary.n_images, summary.n_landmarks = ds.name, len(ds.images), len(ds.landmarks)
    summary.explicit_splits = ds.has_explicit_splits
    summary.splits = {name: len(ds.split(name)) for name in ds.split_names}
    csv_path = str(Path(root) / CSV_NAME)
    names = ds.landmarks
    for i, image in enumerate(ds.images):
        xy = ds.coords(image)
        present = np.isfinite(xy).all(axis=1)
        summary.n_present += int(present.sum())
        summary.n_absent += int((~present).sum())
        if image not in with_rows:
            problems.append(
                Problem(
                    csv_path,
                    None,
                    f"image {image!r} has no row in landmarks.csv (all its landmarks count as absent); "
                    "add its landmarks or remove the image",
                    severity="warning",
                )
            )
        path = ds.image_path(image)
        try:
            pixels, meta = read_image(path)
        except Exception as err:  # noqa: BLE001 - a check reports every bad file and goes on
            summary.unreadable += 1
            problems.append(Problem(str(path), None, f"unreadable: {err}"))
        else:
            summary.formats[str(meta.get("format"))] += 1
            source = meta.get("spacing_source") if meta.get("spacing_mm") is not None else None
            if source is None or source == "none":
                source = "dataset.yaml spacing_mm" if ds.spacing_mm is not None else "none"
            summary.spacing_sources[str(source)] += 1
            outside = present & ~inside_image(xy, pixels.shape[:2])
            for k in np.flatnonzero(outside):
                x, y = xy[k]
                problems.append(
                    Problem(
                        csv_path,
                        lines.get((image, names[k])),
                        f"landmark {names[k]!r} of {image!r} at (x={x:g}, y={y:g}) lies outside the "
                        f"{pixels.shape[1]} x {pixels.shape[0]} image (W x H); fix the coordinates "
                        "(pixels, x = column, y = row) or drop the row if the landmark is not visible",
                    )
                )
        if progress is not None:
            progress(i + 1, len(ds.images))
    if summary.n_present == 0 and ds.images:
        problems.append(Problem(csv_path, None, "no landmark coordinates at all; fill landmarks.csv"))
    yaml_path = str(Path(root) / "dataset.yaml")
    for name, role in (("train", "trains on"), ("val", "chooses its checkpoints on")):
        if ds.images and not ds.split(name):
            problems.append(
                Problem(
                    yaml_path,
                    None,
                    f"split {name!r} is empty, and `landmark-afl train` {role} it (train_split={name} / "
                    f"val_split={name} by default); list images under '{name}' (for val: a few training images, "
                    "never test ones), or convert again (converters make a 10 % val split by default)",
                    severity="warning",
                )
            )
    return problems
