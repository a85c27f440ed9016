"""DICOM header checks before any decoding: parse the header, read integer tags safely, and compare the size the
header (and the compressed first frame) declares with the pixel limit and the bytes present.

- :func:`read_header`: ``pydicom.dcmread`` plus an eager parse of every top-level element, so that a malformed one
  is named at once (group 0028 / 7FE0) or dropped (any other: the reader never uses it).
- :func:`header_int`: ``NumberOfFrames`` "1A" and other non-integers become an error naming the tag and its value.
- :func:`check_declared_size`: the pixel limit (:mod:`landmark_afl.io.limits`) on Rows x Columns; uncompressed
  pixel data at least ``Rows x Columns x SamplesPerPixel x BitsAllocated / 8 x NumberOfFrames`` bytes (else
  "truncated"); compressed data within the ratio bound; the first frame's own JPEG SOF / JPEG 2000 SIZ size within
  the pixel limit (the decoders allocate what the stream says); a JPEG 2000 first frame not truncated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from landmark_afl.io import j2k
from landmark_afl.io.errors import ImageReadError, decoder_failure
from landmark_afl.io.limits import check_pixels, check_ratio

PIXEL_ELEMENTS = {"PixelData": None, "FloatPixelData": 32, "DoubleFloatPixelData": 64}  # keyword -> fixed bits
RECOPY_FIX = "copy the file again from its source"


def last_line(err: BaseException) -> str:
    """The last non-empty line of an exception's message (pydicom's are multi-line), or its type name."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def read_header(path: Path) -> Any:
    """The full pydicom data set (pixel bytes included, not decoded); files without preamble are accepted."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, force=True)
    except MemoryError as err:
        raise decoder_failure(path, "pydicom", err) from err
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, OverflowError) as err:
        raise ImageReadError(path, f"not a readable DICOM file ({err})", "check the file is complete DICOM") from err
    except Exception as err:  # the pydicom boundary: any other parse failure
        raise decoder_failure(path, "pydicom", err, "check the file is complete DICOM") from err
    _parse_elements(ds, path)
    return ds


def _parse_elements(ds: Any, path: Path) -> None:
    """Convert every top-level element now, so that a malformed one is named here and not met later.

    An element of the image pixel module (group 0x0028) or the pixel data (0x7FE0) that pydicom cannot parse is an
    error; any other (a private tag, a malformed description) is dropped: the reader needs none of them.
    """
    for tag in list(ds.keys()):
        try:
            ds[tag]
        except Exception as err:  # the pydicom boundary: values are converted lazily, on first access
            if tag.group in (0x0028, 0x7FE0):
                from pydicom.datadict import keyword_for_tag

                name = keyword_for_tag(tag) or "element"
                raise ImageReadError(
                    path,
                    f"its header element {name} {tag} cannot be parsed ({type(err).__name__}: {last_line(err)})",
                    "export the image again (the element is malformed)",
                ) from err
            del ds[tag]


def header_int(ds: Any, path: Path, keyword: str, default: int | None = None, minimum: int = 0) -> int | None:
    """An integer header value (US, IS, ...), ``default`` when absent or empty; a clear error when it is not one.

    Args:
        ds: the data set.
        path: the file, for the message.
        keyword: the DICOM keyword, e.g. ``"NumberOfFrames"``.
        default: the value when the element is absent or empty.
        minimum: the smallest valid value.

    Raises:
        ImageReadError: the value is text (``NumberOfFrames`` "1A"), several values, a fraction, or < ``minimum``.
    """
    raw = ds.get(keyword)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
        ok = value == int(value) and value >= minimum
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        shown = str(raw).strip() if isinstance(raw, str) else _fmt_value(raw)
        raise ImageReadError(
            path,
            f"{keyword} is {shown!r}, not a whole number >= {minimum}",
            f"correct {keyword} in the header (e.g. with dcmodify) or export the image again",
        )
    return int(value)


def _fmt_value(raw: Any) -> str:
    if isinstance(raw, (list, tuple)) or type(raw).__name__ == "MultiValue":
        return "\\".join(str(v) for v in raw)
    return str(raw)


def first_frame(ds: Any) -> bytes:
    """The encapsulated bytes of frame 0 (basic or extended offset table, or none)."""
    from pydicom.encaps import get_frame

    extended = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    return get_frame(ds.PixelData, 0, extended_offsets=extended, number_of_frames=int(ds.get("NumberOfFrames") or 1))


def check_declared_size(
    ds: Any, ts: Any, path: Path, n_frames: int, max_pixels: int | None = None
) -> tuple[int, int, int, int]:
    """Check what the header declares against the pixel limit and the bytes present, before any decoding.

    Args:
        ds: the data set (pixel bytes read, not decoded).
        ts: its transfer syntax.
        path: the file, for messages.
        n_frames: NumberOfFrames (checked).
        max_pixels: the per-call pixel limit, or None (:func:`landmark_afl.io.limits.max_pixels`).

    Returns:
        ``(rows, cols, samples per pixel, bits allocated)``.

    Raises:
        ImageReadError: more pixels than the limit; uncompressed data shorter than the declared size ("truncated");
            compressed data implausibly small for it; a JPEG 2000 first frame that is truncated.
    """
    rows = header_int(ds, path, "Rows", minimum=1)
    cols = header_int(ds, path, "Columns", minimum=1)
    samples = header_int(ds, path, "SamplesPerPixel", 1, minimum=1)
    keyword = next(k for k in PIXEL_ELEMENTS if k in ds)
    bits = PIXEL_ELEMENTS[keyword] or header_int(ds, path, "BitsAllocated", minimum=1)
    header_int(ds, path, "BitsStored", minimum=1)
    header_int(ds, path, "PixelRepresentation", minimum=0)
    check_pixels(path, (rows, cols), max_pixels, "Rows x Columns")
    stored = len(ds[keyword].value or b"")
    what = f"{rows} x {cols} x {samples} x {bits}-bit image"
    if keyword == "PixelData" and ts.is_encapsulated:
        check_ratio(path, rows * cols * samples * -(-bits // 8), stored, what)
        _check_first_frame(ds, ts, path, max_pixels)
        return rows, cols, samples, bits
    photometric = str(ds.get("PhotometricInterpretation") or "").strip().upper()
    per_pixel = 2 if (photometric == "YBR_FULL_422" and samples == 3) else samples  # 4:2:2 stores 2 of 3 values
    expected = -(-(rows * cols * per_pixel * bits * n_frames) // 8)
    if stored < expected:
        formula = f"Rows x Columns x SamplesPerPixel x BitsAllocated / 8 x NumberOfFrames = {rows} x {cols} x "
        formula += f"{samples}{' (4:2:2: 2 values)' if per_pixel != samples else ''} x {bits} / 8 x {n_frames}"
        raise ImageReadError(
            path,
            f"the pixel data is truncated: {keyword} holds {stored} bytes where {formula} needs {expected}",
            RECOPY_FIX + " (or correct the header if its size is wrong)",
        )
    return rows, cols, samples, bits


def _check_first_frame(ds: Any, ts: Any, path: Path, max_pixels: int | None) -> None:
    """The size the compressed first frame itself declares (JPEG SOF, JPEG 2000 SIZ) against the pixel limit, since
    the decoders allocate what the stream says; a JPEG 2000 codestream also for truncation."""
    from landmark_afl.io.itk import jpeg_sof

    try:
        frame = first_frame(ds)
    except Exception:  # noqa: BLE001 - a broken encapsulation is for the decoder to report
        return
    sof = jpeg_sof(frame)
    if sof is not None and sof[1] and sof[2]:
        check_pixels(path, sof[1:], max_pixels, "the JPEG stream of frame 0")
    if str(ts) not in j2k.J2K_TRANSFER_SYNTAXES:
        return
    try:
        info = j2k.parse_header(frame)
        check_pixels(path, (info.height, info.width), max_pixels, "the JPEG 2000 codestream of frame 0")
        j2k.check_complete(frame)
    except j2k.TruncatedCodestream as err:
        raise ImageReadError(path, f"frame 0: {err}", RECOPY_FIX) from err
    except j2k.ReducedDecodeUnsupported:
        pass  # not a codestream the parser knows: the decoder reports it
