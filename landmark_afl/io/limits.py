"""Size limits checked before any decoder allocates: the pixel limit and the compression-ratio bound.

A header can claim any size; these checks compare that claim with a limit and with the bytes actually present,
so that a tiny file claiming 60000 x 60000 pixels is refused in microseconds instead of allocating gigabytes.

- Pixel limit: at most :data:`DEFAULT_MAX_PIXELS` (30 000 x 30 000 = 9e8, far above any radiograph) pixels per
  2D image. Set it per call with ``read_image(path, max_pixels=N)`` or for the process with the environment
  variable ``LANDMARK_AFL_MAX_PIXELS`` (an integer; ``9e8`` style is accepted); the keyword wins. Pillow keeps its
  own decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, 2 x 89 M pixels) for PNG / JPEG / BMP / TIFF:
  the stricter of the two applies there.
- Compression-ratio bound: a compressed image (DICOM encapsulated pixel data, gzip NIfTI, compressed MHA / NRRD)
  whose decoded size exceeds :data:`RATIO_CHECK_FROM_BYTES` may be at most :data:`MAX_COMPRESSION_RATIO` times
  larger than its compressed bytes. Real radiographs compress 2-50:1 (lossless 2-4:1); 1000:1 only comes from a
  header that lies about the size (or an empty image).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from landmark_afl.io.errors import ImageReadError

DEFAULT_MAX_PIXELS = 30_000 * 30_000
ENV_MAX_PIXELS = "LANDMARK_AFL_MAX_PIXELS"
MAX_COMPRESSION_RATIO = 1000
RATIO_CHECK_FROM_BYTES = 64 * 2**20


def max_pixels(override: int | None = None) -> int:
    """The pixel limit in force: ``override``, else ``$LANDMARK_AFL_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`.

    Args:
        override: a per-call limit (``read_image(..., max_pixels=...)``), or None.

    Raises:
        ValueError: ``override`` or the environment variable is not a positive whole number.

    Example:
        >>> max_pixels(), max_pixels(4096 * 4096)
        (900000000, 16777216)
    """
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, int) or override < 1:
            raise ValueError(f"max_pixels must be a positive int (e.g. 900_000_000) or None; got {override!r}")
        return override
    text = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise ValueError(f"{ENV_MAX_PIXELS}={text!r} is not a positive whole number of pixels (e.g. 900000000 or 9e8)")
    return int(value)


def limit_source(override: int | None) -> str:
    """Where the limit came from, for messages: the keyword, the environment variable or the default."""
    if override is not None:
        return "the max_pixels argument"
    if os.environ.get(ENV_MAX_PIXELS, "").strip():
        return f"${ENV_MAX_PIXELS}"
    return f"the default; raise it with ${ENV_MAX_PIXELS} or read_image(..., max_pixels=N)"


def check_pixels(path: str | Path, shape: tuple[int, ...], override: int | None, what: str = "the header") -> None:
    """Raise :class:`ImageReadError` when ``shape`` (rows, cols[, ...]) has more pixels than the limit in force.

    Args:
        path: the file, for the message.
        shape: the declared size, rows first.
        override: the per-call limit or None (see :func:`max_pixels`).
        what: who declares the size ("Rows x Columns", "the PNG header", ...).
    """
    limit = max_pixels(override)
    n = math.prod(int(v) for v in shape)
    if n > limit:
        dims = " x ".join(str(int(v)) for v in shape)
        raise ImageReadError(
            path,
            f"{what} declares {dims} = {n:,} pixels, more than the limit of {limit:,} pixels "
            f"({limit_source(override)})",
            f"if the image is genuine, set {ENV_MAX_PIXELS} above {n} (or pass max_pixels); otherwise the header is "
            "damaged: export the image again",
        )
    if n == 0:
        dims = " x ".join(str(int(v)) for v in shape)
        raise ImageReadError(path, f"{what} declares an empty image ({dims} pixels)", "export the image again")


def check_ratio(path: str | Path, decoded_bytes: int, stored_bytes: int, what: str) -> None:
    """Raise :class:`ImageReadError` when ``stored_bytes`` of compressed data cannot plausibly hold ``what``.

    Args:
        path: the file, for the message.
        decoded_bytes: the size the header declares once decoded.
        stored_bytes: the compressed bytes present.
        what: the declared image in words, e.g. ``"20000 x 20000 x 1 x 16-bit image"``.
    """
    if decoded_bytes <= RATIO_CHECK_FROM_BYTES or decoded_bytes <= MAX_COMPRESSION_RATIO * stored_bytes:
        return
    ratio = decoded_bytes / max(stored_bytes, 1)
    raise ImageReadError(
        path,
        f"the compressed pixel data ({stored_bytes:,} bytes) is implausibly small for the declared {what} "
        f"({decoded_bytes:,} bytes decoded, a ratio of {ratio:,.0f}:1; more than {MAX_COMPRESSION_RATIO}:1 is "
        "refused before decoding)",
        "the header's size is probably wrong or the pixel data truncated: export the image again",
    )
