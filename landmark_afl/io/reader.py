"""``read_image(path)``: any supported X-ray file -> (float32 [H, W], meta), bone bright."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from landmark_afl.io.discovery import image_format, is_dicom
from landmark_afl.io.errors import ImageNotFoundError, ImageReadError

SUPPORTED = (
    "DICOM (any name), PNG, JPEG, BMP, TIFF, JPEG 2000 (.jp2, .j2k, .j2c, .jpc), MHA/MHD, NRRD, NIfTI (.nii, .nii.gz)"
)


def check_target_size(target_size: Any) -> tuple[int, int] | None:
    """``target_size`` as ``(H, W)`` positive ints, or None; a ValueError says what was given otherwise."""
    if target_size is None:
        return None
    try:
        h, w = target_size
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"target_size must be (H, W) with two positive ints, e.g. (512, 512); got {target_size!r}")
    return int(h), int(w)


def read_image(path: str | Path, target_size: tuple[int, int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a 2D X-ray image.

    DICOM is recognised by content whatever the file name; the other formats by extension. DICOM pixels get the
    modality LUT, MONOCHROME1 / Presentation LUT Shape INVERSE inversion (bone bright) and colour -> grey; the VOI
    window is only reported (``meta["voi_window"]``). Multi-frame files give their first frame.

    With ``target_size``, JPEG 2000 (DICOM JPEG 2000 / HTJ2K, ``.jp2`` / ``.j2k``) is decoded at the coarsest
    resolution level whose image still covers ``target_size`` as the letterbox fits it (``meta["decode_scale"]``
    = 2**level, a 20x faster decode at 1/8): decoded pixel ``i`` covers original pixels ``f * i .. f * i + f - 1``
    and ``meta["spacing_mm"]`` is the decoded pixels' spacing; ``original_shape`` stays the file's. Where the
    reduced decode is not exact (colour, > 16 bits, ...) the file is decoded in full and ``meta["decode_note"]``
    says why. Every other format ignores ``target_size``.

    Args:
        path: the file.
        target_size: (H, W) the image will be letterboxed to (the network input), or None for a full decode.

    Returns:
        ``(image float32 [H, W], meta)``; meta keys: :data:`landmark_afl.io.meta.META_KEYS`.

    Raises:
        ImageNotFoundError: the file does not exist (an ImageReadError and a FileNotFoundError).
        ImageReadError: anything else that makes the file unreadable; the message names the file, the cause and
            the fix.

    Example:
        >>> image, meta = read_image("chest.dcm")  # doctest: +SKIP
        >>> image.dtype, meta["spacing_mm"], meta["spacing_source"]  # doctest: +SKIP
        (dtype('float32'), (0.16, 0.16), 'PixelSpacing')
    """
    target_size = check_target_size(target_size)
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise ImageReadError(path, "is a folder, not an image file", "pass a file, or use find_images(folder)")
        raise ImageNotFoundError(path)
    fmt = image_format(path)
    if fmt == "dicom" or (fmt is None and is_dicom(path)):
        from landmark_afl.io.dicom import read_dicom

        return read_dicom(path, target_size)
    if fmt in ("png", "jpeg", "bmp", "tiff", "jpeg2000"):
        from landmark_afl.io.raster import read_raster

        return read_raster(path, fmt, target_size)
    if fmt in ("mha", "mhd", "nrrd", "nifti"):
        from landmark_afl.io.itk import read_itk

        return read_itk(path, fmt)
    raise ImageReadError(
        path,
        f"not an image this toolkit reads (extension {path.suffix or 'none'}, not DICOM by content)",
        f"convert it to one of: {SUPPORTED}",
    )
