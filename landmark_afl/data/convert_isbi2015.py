"""Convert the ISBI 2015 cephalometric challenge release into the toolkit's data set layout.

Source layout (the official release)::

    SRC/RawImage/TrainingData/001.bmp ... 150    (.bmp, .jpg or .png)
    SRC/RawImage/Test1Data/151 ... 300
    SRC/RawImage/Test2Data/301 ... 400          (optional)
    SRC/AnnotationsByMD/400_senior/NNN.txt      one "x,y" line per landmark (pixels, origin top-left);
    SRC/AnnotationsByMD/400_junior/NNN.txt      lines after the 19th are ignored

Output: ``DST/images/NNN.ext`` (hard links when SRC and DST share a file system, copies otherwise),
``landmarks.csv`` with the chosen reference (default: the mean of the senior and junior annotations),
``dataset.yaml`` with the 19 landmark names, ``spacing_mm: [0.1, 0.1]`` (the images carry none) and the official
splits: train = TrainingData, test = Test1Data, test2 = Test2Data, and val = the last ``val_count`` TrainingData
images by id (default 10 %: 136-150 of 001-150), which train then leaves out; ``val_count=0`` writes no val.
"""

from __future__ import annotations

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

LANDMARKS = (
    "sella",
    "nasion",
    "orbitale",
    "porion",
    "subspinale",
    "supramentale",
    "pogonion",
    "menton",
    "gnathion",
    "gonion",
    "lower_incisal_incision",
    "upper_incisal_incision",
    "upper_lip",
    "lower_lip",
    "subnasale",
    "soft_tissue_pogonion",
    "posterior_nasal_spine",
    "anterior_nasal_spine",
    "articulare",
)
SPACING_MM = 0.1
FOLDERS = {"TrainingData": "train", "Test1Data": "test", "Test2Data": "test2"}
ANNOTATORS = ("senior", "junior")
REFERENCES = ("mean", "senior", "junior")
IMAGE_EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".png")


def read_annotation(path: Path, n_landmarks: int = len(LANDMARKS)) -> np.ndarray:
    """Read one ISBI annotation file: the first ``n_landmarks`` "x,y" lines, float64 [K, 2]; later lines ignored."""
    if not path.is_file():
        raise DatasetError(f"annotation file {path} is missing; the ISBI layout needs AnnotationsByMD/400_*/NNN.txt")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out = np.empty((n_landmarks, 2))
    if len(lines) < n_landmarks:
        raise DatasetError(f"{path} has {len(lines)} lines; the first {n_landmarks} must be 'x,y' landmark lines")
    for k, line in enumerate(lines[:n_landmarks]):
        parts = line.replace(" ", "").split(",")
        try:
            out[k] = (float(parts[0]), float(parts[1]))
        except (ValueError, IndexError):
            raise DatasetError(f"{path}:{k + 1}: expected 'x,y' in pixels, got {line!r}") from None
    return out


def _find_images(src: Path) -> dict[str, list[Path]]:
    raw = src / "RawImage"
    if not raw.is_dir():
        raise DatasetError(f"{raw} not found; SRC must be the ISBI 2015 root holding RawImage/ and AnnotationsByMD/")
    found: dict[str, list[Path]] = {}
    for folder in FOLDERS:
        d = raw / folder
        if d.is_dir():
            found[folder] = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not any(found.values()):
        raise DatasetError(f"no .bmp/.jpg/.png images under {raw}/{{{','.join(FOLDERS)}}}")
    return found


def convert_isbi2015(
    src: str | Path,
    dst: str | Path,
    reference: str = "mean",
    force: bool = False,
    val_count: int | None = None,
    limit: int | None = None,
) -> ConvertReport:
    """Convert an ISBI 2015 release folder ``src`` into a data set at ``dst``.

    Args:
        src: the release root (RawImage/, AnnotationsByMD/).
        dst: output folder; must be absent or empty unless ``force``.
        reference: "mean" (of senior and junior, the usual reference), "senior" or "junior".
        force: replace a non-empty ``dst``.
        val_count: move the last ``val_count`` TrainingData images (by id) from train to val; None (default):
            :func:`~landmark_afl.data.writer.default_val_count` of them (10 %, 15 of the 150), 0: no val split.
        limit: convert only the first ``limit`` images of each folder (for quick tests).

    Returns:
        A :class:`ConvertReport`.
    """
    if reference not in REFERENCES:
        raise DatasetError(f"reference {reference!r} is not one of {', '.join(REFERENCES)}")
    src = Path(src)
    found = _find_images(src)
    annotators = ANNOTATORS if reference == "mean" else (reference,)
    for who in annotators:
        if not (src / "AnnotationsByMD" / f"400_{who}").is_dir():
            raise DatasetError(f"{src / 'AnnotationsByMD' / f'400_{who}'} not found; it holds the {who} annotations")
    # Read every annotation before writing anything, so a bad file leaves dst untouched.
    coords: dict[str, np.ndarray] = {}
    sources: dict[str, Path] = {}
    splits: dict[str, list[str]] = {}
    for folder, paths in found.items():
        for path in paths[:limit]:
            per = [read_annotation(src / "AnnotationsByMD" / f"400_{who}" / f"{path.stem}.txt") for who in annotators]
            key = path.name
            coords[key] = np.mean(per, axis=0)
            sources[key] = path
            splits.setdefault(FOLDERS[folder], []).append(key)
    splits["train"], splits["val"] = carve_val(splits.get("train", []), val_count, "TrainingData images")
    dst = prepare_output(dst, force)
    report = ConvertReport()
    for key, path in sources.items():
        report.transfer[link_or_copy(path, dst / IMAGES_DIR / key)] += 1
    ordered = {name: splits[name] for name in ("train", "val", "test", "test2") if name in splits}
    write_dataset_files(
        dst,
        "isbi2015-cephalometric",
        LANDMARKS,
        coords,
        splits=ordered,
        spacing_mm=(SPACING_MM, SPACING_MM),
        description=f"ISBI 2015 cephalometric challenge; reference = {reference}"
        + (" of senior and junior annotations" if reference == "mean" else " annotator"),
        source="Wang et al., IEEE TMI 2016 (research use)",
    )
    report.n_images = len(coords)
    report.n_landmarks_written = int(sum(np.isfinite(c).all(axis=1).sum() for c in coords.values()))
    report.splits = {k: len(v) for k, v in ordered.items()}
    return report
