"""Plain rasters (PNG, JPEG, BMP, TIFF) through Pillow: 8-bit and 16-bit grey kept at full depth, colour -> grey.

EXIF orientation is ignored on purpose: landmark coordinates refer to the stored pixel grid. Multi-page TIFF:
the first page. Spacing is None (a raster carries no trustworthy physical spacing; a data set gives it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from landmark_afl.io.errors import ImageReadError
from landmark_afl.io.meta import new_meta

RASTER_FORMATS = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".bmp": "bmp",
    ".tif": "tiff",
    ".tiff": "tiff",
}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def read_raster(path: Path, fmt: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a PNG / JPEG / BMP / TIFF file as float32 [H, W] in its stored units (0-255, 0-65535, ...).

    Args:
        path: the file.
        fmt: the format name for ``meta["format"]``.

    Returns:
        ``(image, meta)``; ``spacing_mm`` None.
    """
    from PIL import Image, UnidentifiedImageError

    meta = new_meta(path, fmt)
    steps: list[str] = []
    try:
        with Image.open(path) as im:
            meta["n_frames"] = int(getattr(im, "n_frames", 1))
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                steps.append("palette -> RGB")
            elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB" if mode != "1" else "L")
                steps.append(f"{mode} -> {im.mode}")
            arr = np.asarray(im)
    except UnidentifiedImageError as err:
        raise ImageReadError(path, f"not a {fmt.upper()} image (Pillow cannot identify it)", "check the file") from err
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageReadError(path, f"the {fmt.upper()} data is damaged or truncated ({err})", "check the file") from err
    if arr.ndim == 3:
        if arr.shape[-1] in (2, 4):  # grey+alpha, RGB+alpha: alpha dropped
            arr = arr[..., :-1]
            steps.append("alpha channel dropped")
        if arr.shape[-1] == 3:
            grey = arr.astype(np.float32) @ _LUMA
            steps.append("RGB -> grey: luma 0.299 R + 0.587 G + 0.114 B (BT.601)")
            meta["photometric"] = "RGB"
        else:
            grey = arr[..., 0].astype(np.float32)
            meta["photometric"] = "MONOCHROME2"
    elif arr.ndim == 2:
        grey = arr.astype(np.float32)
        meta["photometric"] = "MONOCHROME2"
    else:
        raise ImageReadError(path, f"decoded an array of shape {arr.shape}, not a 2D image")
    bits = {"1": 1, "L": 8, "LA": 8, "P": 8, "RGB": 8, "RGBA": 8, "I;16": 16, "I;16B": 16, "I;16L": 16}.get(mode)
    meta.update(
        bits_stored=bits,
        original_shape=(int(grey.shape[0]), int(grey.shape[1])),
        decoder="Pillow",
        steps=steps,
        spacing_note="plain raster: no physical spacing in the file (give spacing_mm in dataset.yaml)",
    )
    return np.ascontiguousarray(grey, dtype=np.float32), meta
