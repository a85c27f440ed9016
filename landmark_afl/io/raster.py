"""Plain rasters (PNG, JPEG, BMP, TIFF, JPEG 2000) through Pillow: grey kept at full depth, colour -> grey.

EXIF orientation is ignored on purpose: landmark coordinates refer to the stored pixel grid. Multi-page TIFF:
the first page. Spacing is None (a raster carries no trustworthy physical spacing; a data set gives it).
Grey JPEG 2000 (``.jp2``, ``.j2k``, ``.j2c``, ``.jpc``) gives the codestream's sample values (Pillow's scaling to
16 bits undone, signed samples kept signed) and, given a target size, is decoded at the coarsest resolution level
that covers it (:mod:`landmark_afl.io.j2k`). A JPEG, given a target size, is decoded by libjpeg's DCT-domain
scaling at the coarsest of 1/2, 1/4, 1/8 that covers it (the same rule, :func:`landmark_afl.io.j2k.choose_level`
with 3 levels): a scaled inverse DCT of each 8 x 8 block, so decoded pixel ``i`` stands for original pixels
``f * i .. f * i + f - 1`` and sits at their centre (no re-centring, unlike JPEG 2000). Colour JPEG is decoded to
its luma (Y) channel directly, the BT.601 grey that the full decode computes from RGB (the same up to rounding);
a JPEG stored as RGB without the YCbCr transform, CMYK, or a file Pillow cannot scale is decoded in full.

Before decoding: the header's size against the pixel limit (:mod:`landmark_afl.io.limits`; Pillow's own
decompression-bomb limit ``PIL.Image.MAX_IMAGE_PIXELS`` also applies and is reported the same way), a JPEG 2000
codestream checked for truncation, a palette image checked for its colour table. Whatever Pillow raises while
decoding (MemoryError included) becomes an ``ImageReadError``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from landmark_afl.io.errors import ImageReadError, decoder_failure
from landmark_afl.io.limits import check_pixels, check_ratio
from landmark_afl.io.meta import new_meta

RASTER_FORMATS = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".bmp": "bmp",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".jp2": "jpeg2000",
    ".j2k": "jpeg2000",
    ".j2c": "jpeg2000",
    ".jpc": "jpeg2000",
}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _read_jpeg2000_grey(
    path: Path, target_size: tuple[int, int] | None, meta: dict[str, Any], max_pixels: int | None
) -> tuple[np.ndarray, list[str]] | None:
    """A grey JPEG 2000 file through :mod:`landmark_afl.io.j2k`, or None for the generic Pillow path (colour, ...).

    Any codestream found is first checked for truncation, the pixel limit and the compression-ratio bound.
    """
    from landmark_afl.io import j2k

    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImageReadError(path, f"cannot be read ({err})", "check the file permissions") from err
    try:
        info = j2k.parse_header(data)
    except j2k.TruncatedCodestream as err:
        raise ImageReadError(path, str(err), "copy the file again from its source") from err
    except j2k.ReducedDecodeUnsupported as err:
        if target_size is not None:
            meta["decode_note"] = f"full decode, reduced JPEG 2000 decode not used: {err}"
        return None
    check_pixels(path, (info.height, info.width), max_pixels, "the JPEG 2000 header")
    depth = -(-info.precision // 8) * info.components
    check_ratio(path, info.height * info.width * depth, len(data), f"{info.height} x {info.width} JPEG 2000 image")
    try:
        j2k.check_complete(data)
    except j2k.TruncatedCodestream as err:
        raise ImageReadError(path, str(err), "copy the file again from its source") from err
    try:
        j2k.check_grey(info)
    except j2k.ReducedDecodeUnsupported as err:
        if target_size is not None:
            meta["decode_note"] = f"full decode, reduced JPEG 2000 decode not used: {err}"
        return None
    meta.update(photometric="MONOCHROME2", bits_stored=info.precision, original_shape=(info.height, info.width))
    level = j2k.level_for(info, target_size) if target_size is not None else 0
    if level:
        try:
            arr, level, steps = j2k.decode_reduced(data, info, level)
            meta["decode_scale"] = 1 << level
            meta["decoder"] = f"Pillow-OpenJPEG (level {level}, 1/{1 << level})"
            meta["decode_note"] = f"JPEG 2000 resolution level {level} of {info.levels} for target {tuple(target_size)}"
            return arr, steps
        except j2k.ReducedDecodeUnsupported as err:
            meta["decode_note"] = f"full decode, reduced JPEG 2000 decode not used: {err}"
    elif target_size is not None:
        meta["decode_note"] = f"full resolution: target {target_size[0]}x{target_size[1]} needs it"
    try:
        arr = j2k.decode_level(data, info, 0)
    except j2k.ReducedDecodeUnsupported as err:
        raise ImageReadError(path, f"the JPEG 2000 data cannot be decoded ({err})", "check the file") from err
    meta["decoder"] = "Pillow-OpenJPEG"
    steps = [f"decode (Pillow/OpenJPEG, {info.precision}-bit {'signed' if info.signed else 'unsigned'} samples)"]
    return arr, ([meta["decode_note"], *steps] if meta["decode_note"] else steps)


def read_raster(
    path: Path, fmt: str, target_size: tuple[int, int] | None = None, max_pixels: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a PNG / JPEG / BMP / TIFF / JPEG 2000 file as float32 [H, W] in its stored units (0-255, 0-65535, ...).

    Args:
        path: the file.
        fmt: the format name for ``meta["format"]``.
        target_size: (H, W) the image will be letterboxed to; grey JPEG 2000 and JPEG use it (a reduced decode,
            ``meta["decode_scale"]``), the other formats ignore it.
        max_pixels: the per-call pixel limit, or None (:func:`landmark_afl.io.limits.max_pixels`).

    Returns:
        ``(image, meta)``; ``spacing_mm`` None.
    """
    meta = new_meta(path, fmt)
    if fmt == "jpeg2000":
        grey_steps = _read_jpeg2000_grey(path, target_size, meta, max_pixels)
        if grey_steps is not None:
            grey, steps = grey_steps
            meta.update(
                steps=steps,
                spacing_note="plain raster: no physical spacing in the file (give spacing_mm in dataset.yaml)",
            )
            return np.ascontiguousarray(grey, dtype=np.float32), meta
    steps: list[str] = [meta["decode_note"]] if meta["decode_note"] else []
    arr, mode = _pillow_decode(path, fmt, max_pixels, steps, meta, target_size if fmt == "jpeg" else None)
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
        meta["photometric"] = "RGB" if mode == "RGB" else "MONOCHROME2"  # RGB: the luma of a DCT-scaled colour JPEG
    else:
        raise ImageReadError(path, f"decoded an array of shape {arr.shape}, not a 2D image")
    bits = {"1": 1, "L": 8, "LA": 8, "P": 8, "RGB": 8, "RGBA": 8, "I;16": 16, "I;16B": 16, "I;16L": 16}.get(mode)
    f = int(meta["decode_scale"])  # > 1: a DCT-scaled JPEG (its original size is in meta already)
    meta.update(
        bits_stored=bits,
        original_shape=meta["original_shape"] if f > 1 else (int(grey.shape[0]), int(grey.shape[1])),
        decoder=f"Pillow-libjpeg (DCT scaling 1/{f})" if f > 1 else "Pillow",
        steps=steps,
        spacing_note="plain raster: no physical spacing in the file (give spacing_mm in dataset.yaml)",
    )
    return np.ascontiguousarray(grey, dtype=np.float32), meta


def _pillow_decode(
    path: Path,
    fmt: str,
    max_pixels: int | None,
    steps: list[str],
    meta: dict[str, Any],
    jpeg_target: tuple[int, int] | None = None,
) -> tuple[np.ndarray, str]:
    """Open with Pillow, check the header, decode: ``(array [H, W] or [H, W, C], the file's Pillow mode)``.

    With ``jpeg_target`` (a JPEG's target size) the decode may be DCT-scaled (:func:`_jpeg_draft`): then the array
    is the grey (a colour file's luma) [ceil(H / f), ceil(W / f)], the mode stays the file's ("RGB" for colour), and
    ``meta`` gets ``decode_scale``, ``original_shape`` and ``decode_note``.

    The Pillow boundary: everything Pillow raises becomes an :class:`ImageReadError` naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    name = fmt.upper().replace("JPEG2000", "JPEG 2000")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below decides
            im = Image.open(path)
    except UnidentifiedImageError as err:
        raise ImageReadError(
            path,
            f"not an image this toolkit reads (the content is not {name}: Pillow cannot identify it)",
            "check the file is the image you meant and that its extension matches its content",
        ) from err
    except Image.DecompressionBombError as err:
        raise ImageReadError(
            path,
            f"its {name} header declares more pixels than Pillow's decompression-bomb limit allows ({err})",
            "if the image is genuine, raise PIL.Image.MAX_IMAGE_PIXELS; otherwise the header is damaged",
        ) from err
    except Exception as err:  # the Pillow boundary: OSError, SyntaxError, struct.error, MemoryError, ...
        raise decoder_failure(path, "Pillow", err, "check the file is complete") from err
    with im:
        width, height = im.size
        check_pixels(path, (height, width), max_pixels, f"the {name} header")
        per_pixel = len(im.getbands()) * {"I": 4, "F": 4}.get(im.mode, 2 if im.mode.startswith("I;16") else 1)
        check_ratio(path, width * height * per_pixel, path.stat().st_size, f"{height} x {width} {name} image")
        try:
            meta["n_frames"] = int(getattr(im, "n_frames", 1))
            file_mode = im.mode
            if jpeg_target is not None:
                try:
                    _jpeg_draft(im, jpeg_target, steps, meta)
                except _ScalingMismatch as err:
                    steps.append(f"full decode, JPEG DCT scaling not used: {err}")
                    meta["decode_note"] = steps[-1]
                    return _pillow_decode(path, fmt, max_pixels, steps, meta)
            mode = im.mode
            if mode == "P":
                if not im.getpalette():
                    raise ImageReadError(
                        path,
                        f"a palette (colour-indexed) {name} without its colour table "
                        f"({'no PLTE chunk' if fmt == 'png' else 'no palette'}): the pixel colours are unknown",
                        "export the image again (as greyscale if possible)",
                    )
                converted = im.convert("RGBA" if "transparency" in im.info else "RGB")
                steps.append("palette -> RGB")
            elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
                converted = im.convert("RGB" if mode != "1" else "L")
                steps.append(f"{mode} -> {converted.mode}")
            else:
                converted = im
            arr = np.asarray(converted)
        except ImageReadError:
            raise
        except MemoryError as err:
            raise decoder_failure(path, "Pillow", err) from err
        except (OSError, ValueError, SyntaxError) as err:
            raise ImageReadError(
                path, f"the {name} data is damaged or truncated ({err})", "copy the file again from its source"
            ) from err
        except Exception as err:  # the Pillow boundary
            raise decoder_failure(path, "Pillow", err, "check the file is complete") from err
    return arr, file_mode


class _ScalingMismatch(Exception):
    """Pillow's draft gave another size or mode than the one the coordinates would assume (the file is reopened)."""


def _jpeg_draft(im: Any, target_size: tuple[int, int], steps: list[str], meta: dict[str, Any]) -> None:
    """Set a JPEG's DCT-domain scaling (Pillow's ``draft``) for ``target_size`` where it is exact; else note why not.

    The scale f is the coarsest of 1, 2, 4, 8 whose ``ceil(n / f)`` image still covers the target as the letterbox
    fits it. Pillow picks the largest scale <= ``min(W // w, H // h)`` of the size it is asked for; asked for
    ``(W // f, H // f)`` that is exactly f (``W // (W // f)`` lies in [f, 2f)), and it decodes ``ceil(W / f)`` x
    ``ceil(H / f)``, which is checked.
    """
    from landmark_afl.io.j2k import choose_level

    width, height = im.size
    f = 1 << choose_level((height, width), target_size, 3)
    while f > 1 and min(width, height) // f == 0:  # a side thinner than f pixels: Pillow cannot scale by f
        f //= 2
    source = im.mode
    if f == 1:
        note = f"full resolution: target {target_size[0]}x{target_size[1]} needs it"
    elif source not in ("L", "RGB") or (source == "RGB" and im.info.get("adobe_transform") == 0):
        why = "CMYK" if source == "CMYK" else "RGB stored without the YCbCr transform" if source == "RGB" else source
        note = f"full decode, JPEG DCT scaling not used: {why}"
    elif im.draft("L", (width // f, height // f)) is None:
        note = "full decode, JPEG DCT scaling not used: Pillow cannot scale this file"
    else:
        note = None
    if note is not None:
        meta["decode_note"] = note
        steps.append(note)
        return
    if im.size != (-(-width // f), -(-height // f)) or im.mode != "L":  # draft has changed the image: start again
        raise _ScalingMismatch(f"Pillow scaled {width}x{height} by 1/{f} to {im.size[0]}x{im.size[1]} {im.mode}")
    meta.update(
        decode_scale=f,
        original_shape=(height, width),
        decode_note=f"JPEG DCT scaling 1/{f} for target {tuple(target_size)}",
    )
    luma = ", luma (Y) only: the BT.601 grey of the RGB" if source == "RGB" else ""
    steps.append(f"decode (Pillow/libjpeg, DCT scaling 1/{f}: {im.size[1]}x{im.size[0]}{luma})")
