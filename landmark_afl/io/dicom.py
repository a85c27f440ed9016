"""DICOM reader: header once with pydicom, pixels with pydicom's codecs, SimpleITK (GDCM) where pydicom has none.

Decoders: pydicom with the pylibjpeg openjpeg and rle plugins (and Pillow for 8-bit JPEG) decodes uncompressed
(little/big endian, implicit/explicit VR, deflated), RLE, JPEG 2000 and 8-bit JPEG, and JPEG-LS through
``pyjpegls`` (MIT; installed with highdicom). Without the GPL ``pylibjpeg-libjpeg`` (extra ``landmark-afl[libjpeg]``)
or ``python-gdcm`` it has no codec for JPEG lossless and 12-bit JPEG extended (nor JPEG-LS without pyjpegls): those
go to :func:`landmark_afl.io.itk.decode_dicom_with_sitk`, which returns
the same stored values (lossless files decode bit-identical to their uncompressed originals).
``meta["decoder"]`` says which one decoded the file. Only the first frame is decoded.

Given a ``target_size``, a JPEG 2000 / HTJ2K frame is decoded at the coarsest resolution level that still covers it
(:mod:`landmark_afl.io.j2k`, Pillow's OpenJPEG); the pixel steps after decoding are the same. Anything that level
decode does not handle exactly (colour, > 16 bits, a sign that pydicom would correct, a non-linear modality LUT, a
decoder error) is decoded in full instead, and ``meta["decode_note"]`` says why.

Before any decoder runs, :mod:`landmark_afl.io.dicom_header` checks the header against the pixel limit and the bytes
present. After the pixel steps, non-finite pixels are an error naming the tag (:mod:`dicom_pixels`). Whatever
pydicom or SimpleITK raise becomes an ``ImageReadError`` with the original as ``__cause__``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from landmark_afl.io import dicom_pixels as px
from landmark_afl.io import j2k
from landmark_afl.io.dicom_header import PIXEL_ELEMENTS as _PIXEL_ELEMENTS
from landmark_afl.io.dicom_header import RECOPY_FIX as _RECOPY_FIX
from landmark_afl.io.dicom_header import check_declared_size, header_int, read_header
from landmark_afl.io.dicom_header import first_frame as _first_frame
from landmark_afl.io.dicom_header import last_line as _last_line
from landmark_afl.io.errors import ImageReadError, decoder_failure
from landmark_afl.io.meta import new_meta
from landmark_afl.io.spacing import dicom_spacing

_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "PALETTE COLOR")
_NO_CODEC_FIX = (
    "convert it to an uncompressed or JPEG 2000 DICOM, or install a codec: pip install 'landmark-afl[libjpeg]' "
    "(GPL pylibjpeg-libjpeg) or python-gdcm"
)


def _transfer_syntax(ds: Any, path: Path) -> Any:
    from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    file_meta = getattr(ds, "file_meta", None)
    ts = getattr(file_meta, "TransferSyntaxUID", None) if file_meta is not None else None
    if ts:
        return UID(ts)
    # no file meta: pydicom guessed the encoding while reading (only uncompressed data can be read this way)
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        return None
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _header_meta(ds: Any, meta: dict[str, Any], n_frames: int) -> None:
    def text(keyword: str) -> str | None:
        value = ds.get(keyword)
        return str(value) if value not in (None, "") else None

    meta.update(
        photometric=text("PhotometricInterpretation"),
        bits_stored=int(ds.BitsStored) if ds.get("BitsStored") not in (None, "") else None,  # checked before
        modality=text("Modality"),
        sop_instance_uid=text("SOPInstanceUID"),
        study_instance_uid=text("StudyInstanceUID"),
        series_instance_uid=text("SeriesInstanceUID"),
        n_frames=n_frames,
        frame_used=0,
    )
    meta["spacing_mm"], meta["spacing_source"], meta["spacing_note"] = dicom_spacing(ds)


def _decode(ds: Any, ts: Any, path: Path, meta: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """First frame as decoded pixels (stored values, or RGB for colour), and the decode steps."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(ts)
    except NotImplementedError as err:
        raise ImageReadError(path, f"unknown transfer syntax {ts}", _NO_CODEC_FIX) from err
    pydicom_error: Exception | None = None
    if decoder.is_available:
        try:
            arr, _ = decoder.as_array(ds, index=0)
            meta["decoder"] = "pydicom"
            return arr, [f"decode (pydicom, {ts.name}, first frame)"]
        except MemoryError as err:
            raise decoder_failure(path, "pydicom", err) from err
        except ValueError as err:
            text = str(err)
            if "less than expected" in text or "truncated" in text.lower() or "missing" in text.lower():
                reason = f"the pixel data is truncated ({text.split(' - ')[0]})"
                raise ImageReadError(path, reason, _RECOPY_FIX) from err
            pydicom_error = err
        except Exception as err:  # the pydicom boundary: its codecs raise RuntimeError, NotImplementedError, ...
            pydicom_error = err
    if ts.is_compressed and int(ds.get("SamplesPerPixel") or 1) == 1:
        try:
            arr, steps = _sitk_decode(ds, path)
        except ImageReadError as err:
            reason = f"no installed codec decodes its {ts.name} pixel data"
            if pydicom_error is not None:
                reason += f" (pydicom: {_last_line(pydicom_error)}; SimpleITK: {err.reason})"
            raise ImageReadError(path, reason, _NO_CODEC_FIX) from err
        meta["decoder"] = "SimpleITK"
        return arr, steps
    if pydicom_error is not None:
        raise ImageReadError(
            path, f"pydicom cannot decode its pixel data ({_last_line(pydicom_error)})", "check the file is complete"
        ) from pydicom_error
    raise ImageReadError(path, f"no installed codec decodes its {ts.name} pixel data", _NO_CODEC_FIX)


def _sitk_decode(ds: Any, path: Path) -> tuple[np.ndarray, list[str]]:
    from landmark_afl.io.itk import decode_dicom_with_sitk

    return decode_dicom_with_sitk(ds, path)


def _decode_reduced(
    ds: Any, ts: Any, photometric: str, target_size: tuple[int, int], meta: dict[str, Any]
) -> tuple[np.ndarray, list[str], int] | None:
    """Frame 0 of a JPEG 2000 file at the coarsest level covering ``target_size``, or None (full decode; why in
    ``meta["decode_note"]``).

    Returns:
        ``(stored values float32 [ceil(Rows / f), ceil(Columns / f)], steps, f)``, re-centred so that decoded pixel
        ``i`` covers full pixels ``f * i .. f * i + f - 1``.
    """
    rows, cols = int(ds.Rows), int(ds.Columns)
    try:
        if photometric not in ("MONOCHROME1", "MONOCHROME2") or int(ds.get("SamplesPerPixel") or 1) != 1:
            raise j2k.ReducedDecodeUnsupported(f"colour image ({photometric})")
        if int(ds.get("BitsStored") or ds.BitsAllocated) > 16:
            raise j2k.ReducedDecodeUnsupported(f"{ds.get('BitsStored')} bits stored (at most 16 are reduced)")
        if "ModalityLUTSequence" in ds:
            raise j2k.ReducedDecodeUnsupported("a Modality LUT Sequence (a non-linear LUT of averaged pixels differs)")
        if "PixelData" not in ds:
            raise j2k.ReducedDecodeUnsupported("no encapsulated PixelData")
        try:
            frame = _first_frame(ds)
        except (ValueError, TypeError, KeyError) as err:
            raise j2k.ReducedDecodeUnsupported(f"frame 0 cannot be taken from the pixel data ({err})") from err
        info = j2k.parse_header(frame)
        j2k.check_grey(info)
        if (info.height, info.width) != (rows, cols):
            raise j2k.ReducedDecodeUnsupported(
                f"codestream size {info.height}x{info.width} differs from Rows x Columns {rows}x{cols}"
            )
        pixel_signed = int(ds.get("PixelRepresentation") or 0) == 1
        if info.signed != pixel_signed:
            raise j2k.ReducedDecodeUnsupported(
                f"the codestream is {'signed' if info.signed else 'unsigned'} but Pixel Representation says "
                f"{'signed' if pixel_signed else 'unsigned'} (pydicom's sign correction applies)"
            )
        level = j2k.level_for(info, target_size)
        if level == 0:
            meta["decode_note"] = (
                f"full resolution: target {target_size[0]}x{target_size[1]} needs more than level 1 "
                f"({'x'.join(str(n) for n in j2k.reduced_shape((rows, cols), 1))}) gives"
            )
            return None
        arr, level, steps = j2k.decode_reduced(frame, info, level, label=f"{ts.name}, first frame")
    except j2k.ReducedDecodeUnsupported as err:
        meta["decode_note"] = f"full decode, reduced JPEG 2000 decode not used: {err}"
        return None
    f = 1 << level
    meta["decoder"] = f"Pillow-OpenJPEG (level {level}, 1/{f})"
    meta["decode_note"] = f"JPEG 2000 resolution level {level} of {info.levels} for target {tuple(target_size)}"
    return arr, steps, f


def read_dicom(
    path: Path, target_size: tuple[int, int] | None = None, max_pixels: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read the first frame of a DICOM file as float32 [H, W], bone bright; see :mod:`dicom_pixels` for the steps.

    Args:
        path: the file (any name, with or without extension).
        target_size: (H, W) the image will be letterboxed to, or None for a full decode. Only JPEG 2000 / HTJ2K
            use it: they decode at 1 / ``meta["decode_scale"]`` of the full size (see the module docstring).
        max_pixels: the per-call pixel limit, or None (:func:`landmark_afl.io.limits.max_pixels`).

    Returns:
        ``(image, meta)`` with the keys of :data:`landmark_afl.io.meta.META_KEYS`.

    Raises:
        ImageReadError: not DICOM, no pixel data, a size the bytes do not hold, truncated pixel data, no codec,
            non-finite pixels, a 3D image, ...
    """
    ds = read_header(path)
    meta = new_meta(path, "dicom")
    file_meta = getattr(ds, "file_meta", None)
    declared_ts = getattr(file_meta, "TransferSyntaxUID", None) if file_meta is not None else None
    ts = _transfer_syntax(ds, path)
    has_pixels = any(k in ds for k in _PIXEL_ELEMENTS)
    missing = [k for k in ("Rows", "Columns", "BitsAllocated") if ds.get(k) in (None, "")]
    if not declared_ts and (not has_pixels or missing):
        lacks = "no pixel data" if not has_pixels else f"no {', '.join(missing)}"
        raise ImageReadError(
            path,
            f"not a DICOM image: no file meta / transfer syntax and {lacks} ({len(ds)} elements could be parsed)",
            "export the image again as standard DICOM (with file meta)",
        )
    if not has_pixels:
        raise ImageReadError(
            path, "the file holds no pixel data (a header-only DICOM object)", "export the image, not only its header"
        )
    if missing:
        raise ImageReadError(path, f"the image header lacks {', '.join(missing)}", "re-export the file as an image")
    if ts is None or not ts.is_transfer_syntax:
        raise ImageReadError(path, f"unknown transfer syntax {ts}", _NO_CODEC_FIX)
    n_frames = header_int(ds, path, "NumberOfFrames", 1, minimum=1)
    check_declared_size(ds, ts, path, n_frames, max_pixels)
    meta["transfer_syntax"] = str(ts)
    _header_meta(ds, meta, n_frames)
    photometric = (meta["photometric"] or "MONOCHROME2").strip().upper()
    try:
        grey, steps, scale = _pixels(ds, ts, path, photometric, target_size, meta)
    except px.PixelStepError as err:
        raise ImageReadError(path, err.reason, err.fix) from err
    meta["original_shape"] = (int(ds.Rows), int(ds.Columns))
    meta["decode_scale"] = scale
    if scale != 1 and meta["spacing_mm"] is not None:
        meta["spacing_mm"] = tuple(float(v) * scale for v in meta["spacing_mm"])
        note = f"x {scale}: spacing of the decoded (1/{scale} size) pixels"
        meta["spacing_note"] = f"{meta['spacing_note']}; {note}" if meta["spacing_note"] else note
    meta["steps"] = steps
    return np.ascontiguousarray(grey, dtype=np.float32), meta


def _pixels(
    ds: Any, ts: Any, path: Path, photometric: str, target_size: tuple[int, int] | None, meta: dict[str, Any]
) -> tuple[np.ndarray, list[str], int]:
    """Decode frame 0 and apply the pixel steps: ``(grey float32, steps, decode scale)``; the VOI into meta
    (``voi_window`` / ``voi_source``, the linear summary, and ``voi``, what is applied exactly)."""
    reduced = None
    if target_size is not None and str(ts) in j2k.J2K_TRANSFER_SYNTAXES:
        reduced = _decode_reduced(ds, ts, photometric, target_size, meta)
    if reduced is None:
        arr, steps = _decode(ds, ts, path, meta)
        if meta["decode_note"] is not None:
            steps.insert(0, meta["decode_note"])
        scale = 1
    else:
        arr, steps, scale = reduced
    if photometric in _COLOUR or (arr.ndim == 3 and arr.shape[-1] == 3):
        grey, value_range = px.colour_to_grey(arr, ds, photometric, steps)
        inverted = False
    else:
        if arr.ndim != 2:
            raise ImageReadError(path, f"decoded an array of shape {arr.shape} where a 2D frame was expected")
        grey, value_range = px.apply_modality(arr, ds, steps)
        why = px.needs_inversion(ds, photometric)
        inverted = why is not None
        if inverted:
            grey = px.invert(grey, value_range, why, steps)
    px.check_finite(grey, ds, next(k for k in _PIXEL_ELEMENTS if k in ds))
    meta["voi_window"], meta["voi_source"] = px.voi_window(ds, value_range, inverted)
    meta["voi"] = px.voi_record(ds, value_range, inverted, photometric)
    return grey, steps, scale
