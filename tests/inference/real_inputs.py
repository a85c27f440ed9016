"""Shared pieces of the inference tests: a run folder with random weights and a real mixed input folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import shared_path

LANDMARKS = ["sella", "nasion", "menton"]

GOOD_DICOM = {  # shared/data/dicom file -> name in the test folder (nested, with and without extension)
    "pydicom_edge/CR_tiny_CR1_6154.dcm": "cr/CR1.dcm",
    "pydicom_edge/CR_tiny_CR2_6247.dcm": "cr/deeper/CR2_noext",
    "pydicom_edge/MR_small.dcm": "mr/MR_small.dcm",
    "pydicom_edge/MR_small_RLE.dcm": "mr/MR_small_RLE",
    "wg04_xray/RG3_J2KI.dcm": "wg04/RG3_J2KI_lossy.dcm",
}
BROKEN_DICOM = {
    "pydicom_edge/MR_truncated.dcm": "mr/MR_truncated.dcm",
    "pydicom_edge/no_meta.dcm": "broken/no_meta.dcm",
    "pydicom_edge/CR_header_only_chrKoreanMulti.dcm": "broken/header_only",
}
ISBI = {"001.jpg": "isbi/001.jpg", "002.jpg": "isbi/002.jpg"}


def make_run(tmp_path: Path) -> Path:
    from tests.run_fixture import make_untrained_run

    return make_untrained_run(tmp_path / "run", LANDMARKS)


def make_real_folder(root: Path) -> tuple[list[Path], list[Path]]:
    """A folder of real files: (good images, broken images); plus non-image files that must be ignored."""
    dicom = shared_path("dicom")
    isbi = shared_path("isbi2015", "RawImage", "TrainingData")
    good, broken = [], []
    for src, dst in GOOD_DICOM.items():
        good.append(_copy(dicom / src, root / dst))
    for src, dst in ISBI.items():
        good.append(_copy(isbi / src, root / dst))
    for src, dst in BROKEN_DICOM.items():
        broken.append(_copy(dicom / src, root / dst))
    truncated = root / "isbi" / "003_truncated.jpg"
    truncated.write_bytes((isbi / "003.jpg").read_bytes()[:4000])
    fake = root / "broken" / "text_as.png"
    fake.write_text("not a picture")
    broken += [truncated, fake]
    (root / "notes.txt").write_text("a readme, not an image\n")
    (root / "broken" / "random_noext").write_bytes(bytes(range(256)) * 4)
    (root / "DICOMDIR").write_bytes((dicom / GOOD_DICOM_FIRST).read_bytes())
    return sorted(p.resolve() for p in good), sorted(p.resolve() for p in broken)


GOOD_DICOM_FIRST = "pydicom_edge/CR_tiny_CR3_6278.dcm"  # copied as DICOMDIR: a DICOM file that must be skipped


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst
