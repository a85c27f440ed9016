"""Convert the Digital Hand Atlas radiographs as published with Payer et al.'s setup files.

Source layout (christianpayer/MedicalDataAugmentationTool-HeatmapRegression, hand_xray)::

    SRC/images/ID.mha                         MetaImage radiographs (2D, stored with a third dimension of 1)
    SRC/setup/all.csv                         one row per image id: id, x1, y1, ..., x37, y37 (pixels, no header)
    SRC/setup/cv_reduced/set{1,2,3}/{train,test}.txt   optional cross-validation folds (one id per line)

The CSV covers the whole atlas (hundreds of ids) while a copy may hold only some images: rows whose image is
absent are skipped and counted, images without a row are skipped and listed. The pixel spacing stays in each MHA
header (read by :func:`landmark_afl.io.read_image`); it is checked here with SimpleITK's header reader and no
fallback is written to dataset.yaml. Splits come from ``setup/cv_reduced/set{cv_set}`` when present (train, test;
val = the last ``val_count`` training images by id, default 10 %, which train then leaves out), otherwise
dataset.yaml has none and the loader's fallback applies. Images are hard-linked into
``DST/images`` when possible, copied otherwise.

The landmark names are ``hand_01`` ... ``hand_37`` in the order of the setup CSV (Payer et al. 2019 do not name
them in the release).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from landmark_afl.data.dataset import IMAGES_DIR, DatasetError
from landmark_afl.data.writer import (
    ConvertReport,
    carve_val,
    link_or_copy,
    prepare_output,
    write_dataset_files,
)

N_LANDMARKS = 37
LANDMARKS = tuple(f"hand_{i:02d}" for i in range(1, N_LANDMARKS + 1))


def read_setup_csv(path: Path) -> dict[str, np.ndarray]:
    """Read setup/all.csv into {image id: float64 [37, 2]}."""
    if not path.is_file():
        raise DatasetError(f"{path} not found; SRC must hold setup/all.csv (id, x1, y1, ..., x37, y37 per row)")
    out: dict[str, np.ndarray] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.reader(fh), start=1):
            if not row or not row[0].strip():
                continue
            if len(row) != 1 + 2 * N_LANDMARKS:
                raise DatasetError(f"{path}:{line}: {len(row)} fields; expected id + {N_LANDMARKS} x,y pairs")
            try:
                values = np.asarray([float(v) for v in row[1:]], dtype=np.float64)
            except ValueError:
                raise DatasetError(f"{path}:{line}: non-numeric coordinate in {row[1:5]}...") from None
            if not np.isfinite(values).all():
                raise DatasetError(f"{path}:{line}: NaN or infinite coordinate; every landmark needs x,y pixels")
            key = row[0].strip()
            if key in out:
                raise DatasetError(f"{path}:{line}: id {key} appears twice")
            out[key] = values.reshape(N_LANDMARKS, 2)
    return out


def _header_spacing(path: Path) -> tuple[float, float] | None:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise DatasetError(f"{path} is not a readable MetaImage ({str(err).strip().splitlines()[-1]})") from None
    spacing = reader.GetSpacing()
    if len(spacing) < 2 or not all(s > 0 for s in spacing[:2]):
        return None
    return (float(spacing[1]), float(spacing[0]))  # (row, col)


def _read_ids(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def convert_hand_atlas(
    src: str | Path, dst: str | Path, force: bool = False, cv_set: int = 1, val_count: int | None = None
) -> ConvertReport:
    """Convert a hand_xray folder ``src`` (images/*.mha, setup/all.csv) into a data set at ``dst``.

    Args:
        src: the source root.
        dst: output folder; must be absent or empty unless ``force``.
        force: replace a non-empty ``dst``.
        cv_set: which ``setup/cv_reduced/set{N}`` fold gives the train/test split.

    Returns:
        A :class:`~landmark_afl.data.writer.ConvertReport`; ``skipped`` lists the CSV ids without an image.
    """
    src = Path(src)
    images_dir = src / "images"
    images = {p.stem: p for p in sorted(images_dir.glob("*.mha"))} if images_dir.is_dir() else {}
    if not images:
        raise DatasetError(f"no .mha images under {images_dir}; SRC must hold images/ID.mha and setup/all.csv")
    table = read_setup_csv(src / "setup" / "all.csv")
    report = ConvertReport()
    report.skipped = sorted(k for k in table if k not in images)
    unannotated = sorted(k for k in images if k not in table)
    spacings = {k: _header_spacing(p) for k, p in images.items() if k in table}
    coords = {f"{k}.mha": table[k] for k in spacings}
    splits = None
    fold = src / "setup" / "cv_reduced" / f"set{cv_set}"
    if fold.is_dir():
        splits = {"train": [], "val": [], "test": []}
        for name in ("train", "test"):
            if (fold / f"{name}.txt").is_file():
                splits[name] = [f"{i}.mha" for i in _read_ids(fold / f"{name}.txt") if f"{i}.mha" in coords]
        splits["train"], splits["val"] = carve_val(splits["train"], val_count, "the fold's training images")
    dst = prepare_output(dst, force)
    for key in spacings:
        report.transfer[link_or_copy(images[key], dst / IMAGES_DIR / f"{key}.mha")] += 1
    write_dataset_files(
        dst,
        "digital-hand-atlas",
        LANDMARKS,
        coords,
        splits=splits,
        description="Digital Hand Atlas radiographs with Payer et al.'s 37 landmarks (setup/all.csv order); "
        "pixel spacing from each MHA header",
        source="Digital Hand Atlas Database System (ipilab.org) via Payer et al. (research use)",
    )
    report.n_images = len(coords)
    report.n_landmarks_written = N_LANDMARKS * len(coords)
    report.splits = {k: len(v) for k, v in (splits or {}).items()}
    no_spacing = sorted(k for k, s in spacings.items() if s is None)
    unique = sorted({s for s in spacings.values() if s is not None})
    report.notes.append(f"{len(report.skipped)} CSV row(s) without an image skipped")
    if unannotated:
        report.notes.append(f"{len(unannotated)} image(s) without a CSV row skipped: {', '.join(unannotated)}")
    if unique:
        report.notes.append(f"header spacing {unique[0][0]:.4g}-{unique[-1][0]:.4g} mm ({len(unique)} distinct)")
    if no_spacing:
        report.notes.append(f"no valid spacing in the header of: {', '.join(no_spacing)}")
    if splits is None:
        report.notes.append(f"{fold} not found: no splits written (the loader's fallback applies)")
    return report
