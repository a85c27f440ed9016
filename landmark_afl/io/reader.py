"""``read_image(path)``: any supported X-ray file -> (float32 [H, W], meta), bone bright."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from landmark_afl.io.discovery import image_format, is_dicom
from landmark_afl.io.errors import ImageNotFoundError, ImageReadError

SUPPORTED = "DICOM (any name), PNG, JPEG, BMP, TIFF, MHA/MHD, NRRD, NIfTI (.nii, .nii.gz)"


def read_image(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a 2D X-ray image.

    DICOM is recognised by content whatever the file name; the other formats by extension. DICOM pixels get the
    modality LUT, MONOCHROME1 / Presentation LUT Shape INVERSE inversion (bone bright) and colour -> grey; the VOI
    window is only reported (``meta["voi_window"]``). Multi-frame files give their first frame.

    Args:
        path: the file.

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
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise ImageReadError(path, "is a folder, not an image file", "pass a file, or use find_images(folder)")
        raise ImageNotFoundError(path)
    fmt = image_format(path)
    if fmt == "dicom" or (fmt is None and is_dicom(path)):
        from landmark_afl.io.dicom import read_dicom

        return read_dicom(path)
    if fmt in ("png", "jpeg", "bmp", "tiff"):
        from landmark_afl.io.raster import read_raster

        return read_raster(path, fmt)
    if fmt in ("mha", "mhd", "nrrd", "nifti"):
        from landmark_afl.io.itk import read_itk

        return read_itk(path, fmt)
    raise ImageReadError(
        path,
        f"not an image this toolkit reads (extension {path.suffix or 'none'}, not DICOM by content)",
        f"convert it to one of: {SUPPORTED}",
    )
