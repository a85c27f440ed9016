"""Reading X-ray images: ``read_image(path) -> (float32 [H, W], meta)``, ``find_images``, ``is_dicom``.

See ``docs/CONTRACTS.md`` (io) for the meta keys. Heavy libraries (pydicom, SimpleITK, Pillow) are imported
only when a file of their kind is read. Hostile input (a header claiming more pixels than ``max_pixels`` /
``$LANDMARK_AFL_MAX_PIXELS``, data shorter than its header, non-finite pixels) is refused before decoding:
:mod:`landmark_afl.io.limits`.
"""

from __future__ import annotations

from landmark_afl.io.discovery import find_images, image_format, is_dicom
from landmark_afl.io.errors import ImageNotFoundError, ImageReadError
from landmark_afl.io.meta import META_KEYS
from landmark_afl.io.reader import SUPPORTED, read_image

__all__ = [
    "META_KEYS",
    "SUPPORTED",
    "ImageNotFoundError",
    "ImageReadError",
    "find_images",
    "image_format",
    "is_dicom",
    "read_image",
]
