"""Which files are images: :func:`is_dicom` (by content) and :func:`find_images` (recursive, sorted)."""

from __future__ import annotations

from pathlib import Path

from landmark_afl.io.itk import ITK_FORMATS
from landmark_afl.io.raster import RASTER_FORMATS

DICOM_EXTENSIONS = (".dcm", ".dicom", ".dic")
# companions and formats that are never images on their own (the .raw of an .mhd is read through the .mhd)
_NOT_IMAGES = {".raw", ".zraw", ".txt", ".csv", ".json", ".yaml", ".yml", ".md", ".py", ".xml", ".html", ".pdf"}


# raster formats recognised by their first bytes, for files whose name says nothing (a JPEG saved as "IMG0001")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"BM", "bmp"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jpeg2000"),
    (b"\xff\x4f\xff\x51", "jpeg2000"),
)


def sniff_raster_format(path: str | Path) -> str | None:
    """The raster format of a file from its first bytes ("png", "jpeg", "tiff", "bmp", "jpeg2000"), or None."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(132)
    except OSError:
        return None
    if head[128:132] == b"DICM":  # a DICOM preamble may itself hold a TIFF header (dual-format files): DICOM wins
        return None
    return next((fmt for magic, fmt in _MAGIC if head.startswith(magic)), None)


def image_format(path: str | Path) -> str | None:
    """Format name from the file name ("png", "jpeg", "mha", "nifti", "dicom", ...), or None when not known.

    A file without an extension is recognised by its first bytes when it is a raster image (PNG, JPEG, TIFF, BMP,
    JPEG 2000); DICOM without an extension is found by :func:`is_dicom`.
    """
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return "nifti"
    suffix = Path(name).suffix
    if suffix in RASTER_FORMATS:
        return RASTER_FORMATS[suffix]
    if suffix in ITK_FORMATS:
        return ITK_FORMATS[suffix]
    if suffix in DICOM_EXTENSIONS:
        return "dicom"
    if not suffix:
        return sniff_raster_format(path)
    return None


def is_dicom(path: str | Path) -> bool:
    """True when the file is DICOM: the 128-byte preamble + ``DICM``, or (no preamble) a data set pydicom parses.

    The second test first checks that the file starts with a group 0x0002 or 0x0008 tag, so that arbitrary files
    are rejected after reading 132 bytes.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(132)
    except OSError:
        return False
    if len(head) == 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group_le = int.from_bytes(head[0:2], "little")
    group_be = int.from_bytes(head[0:2], "big")
    if group_le not in (0x0002, 0x0008) and group_be not in (0x0002, 0x0008):
        return False
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - any parse failure means "not DICOM"
        return False
    return len(ds) > 0 and any(elem.tag.group in (0x0008, 0x0010, 0x0020, 0x0028) for elem in ds)


def find_images(root: str | Path) -> list[Path]:
    """Every readable image under ``root`` (recursive, sorted): known extensions plus DICOM found by content.

    DICOMDIR files, hidden files and folders, and companions such as ``.raw`` are skipped.

    Args:
        root: a folder (or a single file, returned as a one-element list when it is an image).

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder (check the path)")
    candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    found = []
    for path in candidates:
        rel = path.relative_to(root) if path != root else Path(path.name)
        if any(part.startswith(".") for part in rel.parts) or path.name.upper() == "DICOMDIR":
            continue
        if image_format(path) is not None:
            found.append(path)
        elif path.suffix.lower() not in _NOT_IMAGES and is_dicom(path):
            found.append(path)
    return found
