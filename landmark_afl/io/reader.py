"""``read_image(path)``: any supported X-ray file -> (float32 [H, W], meta), bone bright."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from landmark_afl.io.discovery import image_format, is_dicom
from landmark_afl.io.errors import ImageNotFoundError, ImageReadError, decoder_failure
from landmark_afl.io.limits import max_pixels as pixel_limit

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


def read_image(
    path: str | Path, target_size: tuple[int, int] | None = None, *, max_pixels: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a 2D X-ray image.

    DICOM is recognised by content whatever the file name; the other formats by extension. DICOM pixels get the
    modality LUT, MONOCHROME1 / Presentation LUT Shape INVERSE inversion (bone bright) and colour -> grey; the VOI
    window is only reported (``meta["voi_window"]``). Multi-frame files give their first frame.

    With ``target_size``, JPEG 2000 (DICOM JPEG 2000 / HTJ2K, ``.jp2`` / ``.j2k``) is decoded at the coarsest
    resolution level whose image still covers ``target_size`` as the letterbox fits it (``meta["decode_scale"]``
    = 2**level, a 20x faster decode at 1/8): decoded pixel ``i`` covers original pixels ``f * i .. f * i + f - 1``
    and ``meta["spacing_mm"]`` is the decoded pixels' spacing; ``original_shape`` stays the file's. Where the
    reduced decode is not exact (colour, > 16 bits, ...) the file is decoded in full and ``meta["decode_note"]``
    says why. A JPEG file is decoded by libjpeg's DCT scaling at the coarsest of 1/2, 1/4, 1/8 that covers the target
    (pixel ``i`` is the block's, centred on it; a colour JPEG gives its luma; see :mod:`landmark_afl.io.raster`).
    Every other format ignores ``target_size``.

    Hostile input is refused before anything is decoded (:mod:`landmark_afl.io.limits`): a header declaring more
    than ``max_pixels`` pixels (default 9e8 = 30 000 x 30 000, or ``$LANDMARK_AFL_MAX_PIXELS``), uncompressed pixel
    data shorter than the header's size, compressed data implausibly small for it (> 1000:1), a truncated JPEG 2000
    codestream. Non-finite pixels after the modality LUT are refused (naming the tag); an implausible pixel spacing
    is not used (``spacing_mm`` None, the reason in ``spacing_note``). Whatever a decoder raises (MemoryError
    included) comes out as :class:`ImageReadError` with the original as ``__cause__``.

    Args:
        path: the file.
        target_size: (H, W) the image will be letterboxed to (the network input), or None for a full decode.
        max_pixels: the most pixels a 2D image may declare, or None for ``$LANDMARK_AFL_MAX_PIXELS`` / the default.

    Returns:
        ``(image float32 [H, W], meta)``; meta keys: :data:`landmark_afl.io.meta.META_KEYS`.

    Raises:
        ImageNotFoundError: the file does not exist (an ImageReadError and a FileNotFoundError).
        ImageReadError: anything else that makes the file unreadable; the message names the file, the cause and
            the fix.
        ValueError: ``target_size``, ``max_pixels`` or ``$LANDMARK_AFL_MAX_PIXELS`` is not valid (a usage error).

    Example:
        >>> image, meta = read_image("chest.dcm")  # doctest: +SKIP
        >>> image.dtype, meta["spacing_mm"], meta["spacing_source"]  # doctest: +SKIP
        (dtype('float32'), (0.16, 0.16), 'PixelSpacing')
    """
    target_size = check_target_size(target_size)
    pixel_limit(max_pixels)  # a bad limit is a usage error (ValueError), whatever the file
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise ImageReadError(path, "is a folder, not an image file", "pass a file, or use find_images(folder)")
        raise ImageNotFoundError(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ImageReadError(path, f"cannot be read ({err})", "check the file permissions") from err
    if size == 0:
        raise ImageReadError(path, "is empty (0 bytes)", "copy the file again from its source")
    fmt = image_format(path)
    if fmt == "dicom" and not is_dicom(path):
        raise ImageReadError(
            path,
            f"not an image this toolkit reads (named {path.suffix}, but the content is not DICOM: no 'DICM' marker at "
            "byte 128 and no DICOM data elements at the start)",
            f"check the file is the image you meant; readable formats: {SUPPORTED}",
        )
    try:
        if fmt == "dicom" or (fmt is None and is_dicom(path)):
            from landmark_afl.io.dicom import read_dicom

            return read_dicom(path, target_size, max_pixels)
        if fmt in ("png", "jpeg", "bmp", "tiff", "jpeg2000"):
            from landmark_afl.io.raster import read_raster

            return read_raster(path, fmt, target_size, max_pixels)
        if fmt in ("mha", "mhd", "nrrd", "nifti"):
            from landmark_afl.io.itk import read_itk

            return read_itk(path, fmt, max_pixels)
    except MemoryError as err:  # a genuine image within the limit that this machine cannot hold (float32 copies)
        raise decoder_failure(path, "the reader", err) from err
    raise ImageReadError(
        path,
        f"not an image this toolkit reads (extension {path.suffix or 'none'}, not DICOM by content)",
        f"convert it to one of: {SUPPORTED}",
    )
