"""DICOM pixel steps after decoding, each explicit and recorded in ``meta["steps"]``.

Order (pydicom ``pixels/processing.py``, DICOM PS3.4 grayscale pipeline):
1. colour -> grey: ``PALETTE COLOR`` through its palette (``apply_color_lut``), then RGB (YBR_* are already RGB
   after pydicom's decode) to luma ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, the Y of YBR_FULL).
2. modality LUT: Rescale Slope / Intercept (in float32), or the Modality LUT Sequence
   (``pydicom.pixels.apply_modality_lut``).
3. inversion, so that bone is bright in every output: ``out = lo + hi - v`` where ``[lo, hi]`` is the range the
   modality LUT can produce from the stored bit depth. Applied once when Photometric Interpretation is
   MONOCHROME1 or Presentation LUT Shape is INVERSE (in DX objects INVERSE accompanies MONOCHROME1 and denotes the
   same single inversion, so both together invert once).
Rescale Slope and Intercept must be finite (and the slope non-zero) and map the stored range into float32; the
pixels after these steps must be finite. Otherwise :class:`PixelStepError` names the tag (the reader turns it into
an ``ImageReadError``).
The VOI (PS3.3 C.11.2: Window Center / Width with its VOI LUT Function, or a VOI LUT Sequence) is NOT applied by
the reader. It is recorded twice:

- ``meta["voi_window"]``: a linear summary ``(center, width)`` in output units, i.e. after the modality LUT and
  mirrored like the pixels when they were inverted (``center' = lo + hi - center``; the width is unchanged), so
  ``[c - w/2, c + w/2]`` of the output is the window (for a LUT: its input range). :func:`voi_window`.
- ``meta["voi"]``: everything needed to apply the file's VOI exactly (:func:`voi_record`), applied by
  :func:`apply_voi` (the protocol step ``voi_window`` and the overlays use it). It follows pydicom's
  ``apply_voi_lut`` (``prefer_lut=True``): the first VOI LUT Sequence item when it has LUT Descriptor and LUT Data,
  else the first Window Center / Width with VOILUTFunction LINEAR (the default), LINEAR_EXACT or SIGMOID. The VOI
  works on the modality output; the pixels here may have been inverted after it, so :func:`apply_voi` maps them
  back (``v = lo + hi - x``), applies the VOI, scales its output range to [0, 1] and inverts that (``1 - y``): the
  MONOCHROME1 display, bone bright. Colour images get no ``voi`` (pydicom windows MONOCHROME1/2 only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

LUMA_BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)
FLOAT32_MAX = float(np.finfo(np.float32).max)


class PixelStepError(ValueError):
    """A pixel step cannot be applied to this data set: ``reason`` in plain words (naming the tag) and a ``fix``."""

    def __init__(self, reason: str, fix: str = "correct the tag or export the image again") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


def stored_range(ds: Any) -> tuple[float, float]:
    """(lo, hi) of the stored values allowed by BitsStored and PixelRepresentation."""
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
    if int(ds.get("PixelRepresentation") or 0) == 1:
        return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    return 0.0, float(2**bits - 1)


def colour_to_grey(arr: np.ndarray, ds: Any, photometric: str, steps: list[str]) -> tuple[np.ndarray, tuple]:
    """Grey float32 image and its value range from a colour-stored frame (RGB, YBR_* decoded as RGB, palette).

    Args:
        arr: the decoded first frame, [H, W] (palette indices) or [H, W, 3].
        ds: the data set (for the palette).
        photometric: Photometric Interpretation.
        steps: the step list, appended to.
    """
    lo, hi = stored_range(ds)
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        try:
            arr = apply_color_lut(arr, ds)
        except Exception as err:  # the pydicom boundary: a missing or malformed palette
            raise PixelStepError(
                f"its palette colour lookup table (Red/Green/Blue Palette Color Lookup Table Descriptor and Data) is "
                f"missing or unusable ({type(err).__name__}: {err})",
                "export the image again with its palette, or as MONOCHROME2 / RGB",
            ) from err
        hi = float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "ui" else float(arr.max())
        lo = 0.0
        steps.append(f"palette colour -> RGB ({arr.dtype})")
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise PixelStepError(
            f"Photometric Interpretation {photometric} needs 3 colour samples per pixel; decoded an array of shape "
            f"{arr.shape}"
        )
    grey = arr.astype(np.float32) @ LUMA_BT601
    steps.append("RGB -> grey: luma 0.299 R + 0.587 G + 0.114 B (BT.601)")
    return grey, (lo, hi)


def apply_modality(arr: np.ndarray, ds: Any, steps: list[str]) -> tuple[np.ndarray, tuple[float, float]]:
    """Modality LUT: rescale slope/intercept or the Modality LUT Sequence; float32 out with its value range.

    Args:
        arr: stored values of one frame, [H, W].
        ds: the data set.
        steps: the step list, appended to.

    Returns:
        ``(values float32, (lo, hi))``: the range the modality LUT can produce from the stored bit depth.
    """
    lo, hi = stored_range(ds)
    if "ModalityLUTSequence" in ds and len(ds.ModalityLUTSequence):
        from pydicom.pixels import apply_modality_lut

        try:
            item = ds.ModalityLUTSequence[0]
            out = apply_modality_lut(arr, ds).astype(np.float32)
            n, first = (int(v) for v in list(item.LUTDescriptor)[:2])
            n = n or 65536
            # inputs outside the LUT are clamped to its ends, so the LUT entries are every possible output
            entries = apply_modality_lut(np.arange(first, first + n, dtype=np.int64), ds)
        except Exception as err:  # the pydicom boundary: a malformed LUT
            raise PixelStepError(
                f"its Modality LUT Sequence is unusable ({type(err).__name__}: {err})", "export the image again"
            ) from err
        lut_lo, lut_hi = float(entries.min()), float(entries.max())
        steps.append(f"modality LUT sequence ({n} entries from {first}, {item.get('ModalityLUTType', '')})")
        return out, (lut_lo, lut_hi)
    slope = _rescale_value(ds, "RescaleSlope", 1.0)
    intercept = _rescale_value(ds, "RescaleIntercept", 0.0)
    out = arr.astype(np.float32, copy=False)
    if slope != 1.0 or intercept != 0.0:
        lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
        if not max(abs(lo), abs(hi), abs(lo + hi)) <= FLOAT32_MAX:
            raise PixelStepError(
                f"RescaleSlope {_text(ds, 'RescaleSlope')} and RescaleIntercept {_text(ds, 'RescaleIntercept')} map "
                f"the stored range to [{lo:g}, {hi:g}], beyond float32 (+-{FLOAT32_MAX:.3g}): the pixels would not be "
                "finite"
            )
        out = out * np.float32(slope) + np.float32(intercept)
        steps.append(f"rescale: stored * {slope:g} + {intercept:g}")
    return out, (lo, hi)


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword)
    return "(absent)" if value in (None, "") else str(value).strip()


def _rescale_value(ds: Any, keyword: str, default: float) -> float:
    """RescaleSlope / RescaleIntercept as a finite float (the slope non-zero), or :class:`PixelStepError`."""
    raw = ds.get(keyword)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise PixelStepError(f"{keyword} is {str(raw)!r}, not a number") from None
    if not np.isfinite(value):
        raise PixelStepError(f"{keyword} is {str(raw).strip()}: it must be a finite number")
    if keyword == "RescaleSlope" and value == 0.0:
        raise PixelStepError("RescaleSlope is 0: every pixel would equal the intercept")
    return value


def check_finite(arr: np.ndarray, ds: Any, stored_as: str) -> None:
    """Raise :class:`PixelStepError` when ``arr`` (after the modality LUT) holds NaN or infinity, naming the source.

    Args:
        arr: the output pixels.
        ds: the data set (which tags were applied).
        stored_as: the pixel element, "PixelData", "FloatPixelData" or "DoubleFloatPixelData".
    """
    if np.isfinite(np.sum(arr, dtype=np.float32)) or np.isfinite(arr).all():  # the sum is the fast common case
        return
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if stored_as != "PixelData":
        where = f"{stored_as} holds"
    elif "ModalityLUTSequence" in ds:
        where = "the Modality LUT Sequence gives"
    else:
        where = f"RescaleSlope {_text(ds, 'RescaleSlope')} / RescaleIntercept {_text(ds, 'RescaleIntercept')} give"
    raise PixelStepError(f"{where} {bad} non-finite pixel values (NaN or infinity)")


def needs_inversion(ds: Any, photometric: str) -> str | None:
    """Why the image must be inverted (bone bright), or None. See the module docstring for the rule."""
    shape = str(ds.get("PresentationLUTShape") or "").strip().upper()
    if photometric == "MONOCHROME1" and shape == "INVERSE":
        return "MONOCHROME1 (Presentation LUT Shape INVERSE agrees: one inversion)"
    if photometric == "MONOCHROME1":
        return "MONOCHROME1"
    if shape == "INVERSE":
        return "Presentation LUT Shape INVERSE"
    return None


def invert(arr: np.ndarray, value_range: tuple[float, float], why: str, steps: list[str]) -> np.ndarray:
    """``lo + hi - v`` in place (float32), recorded in ``steps``."""
    lo, hi = value_range
    np.subtract(np.float32(lo + hi), arr, out=arr)
    steps.append(f"invert ({why}): out = {lo + hi:g} - v")
    return arr


def voi_window(
    ds: Any, value_range: tuple[float, float], inverted: bool
) -> tuple[tuple[float, float] | None, str | None]:
    """The first VOI window as a linear summary in output units (see the module docstring), and where it came from.

    Returns:
        ``((center, width) or None, source)``; source is ``"WindowCenter/WindowWidth"``,
        ``"VOILUTSequence (input range)"`` or None. What is applied exactly is :func:`voi_record`.
    """
    center = ds.get("WindowCenter")
    width = ds.get("WindowWidth")
    window: tuple[float, float] | None = None
    source = None
    try:
        if center is not None and width is not None and center != "" and width != "":
            c = float(center[0] if _is_multi(center) else center)
            w = float(width[0] if _is_multi(width) else width)
            if w > 0:
                window, source = (c, w), "WindowCenter/WindowWidth"
        elif "VOILUTSequence" in ds and len(ds.VOILUTSequence):
            n, first = (int(v) for v in list(ds.VOILUTSequence[0].LUTDescriptor)[:2])
            n = n or 65536
            if int(ds.get("PixelRepresentation") or 0) == 1 and first > 32767:
                first -= 65536
            window, source = (first + (n - 1) / 2.0, float(n)), "VOILUTSequence (input range)"
    except (TypeError, ValueError, AttributeError, IndexError):
        return None, None
    if window is not None and inverted:
        lo, hi = value_range
        window = (lo + hi - window[0], window[1])
    return window, source


VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")  # VOILUTFunction (0028,1056), PS3.3 C.11.2.1.3
_WINDOW_BITS = 16  # the windowing functions are evaluated into [0, 2**16 - 1] (pydicom's y range), then scaled


def voi_record(ds: Any, value_range: tuple[float, float], inverted: bool, photometric: str) -> dict[str, Any] | None:
    """What :func:`apply_voi` needs to apply the file's VOI exactly (``meta["voi"]``); None without a usable one.

    Chosen as pydicom's ``apply_voi_lut`` chooses (index 0, ``prefer_lut=True``): the first VOI LUT Sequence item
    that has LUT Descriptor and LUT Data, else the first Window Center / Width. JSON-friendly (numbers, strings,
    tuples); a LUT holds its entries (at most 65 536 ints).

    Args:
        ds: the data set.
        value_range: ``(lo, hi)`` of the modality output (:func:`apply_modality`), used for the inversion.
        inverted: whether the pixels were inverted after the modality LUT (``lo + hi - v``).
        photometric: Photometric Interpretation; only MONOCHROME1 / MONOCHROME2 get a record.

    Returns:
        ``{"function", "center", "width", "lut_first", "lut_bits", "lut", "inverted", "value_range", "source"}``:
        ``function`` is ``"LINEAR"``, ``"LINEAR_EXACT"``, ``"SIGMOID"`` or ``"LUT"``; ``center`` / ``width`` the
        window in modality-output units (before any inversion; None for a LUT); ``lut_first`` the first input value
        the LUT maps, ``lut_bits`` its output bits (output scaled by ``2**lut_bits - 1``: the LUT Descriptor's third
        value, or the bits its largest entry needs when that is more), ``lut`` its entries (None for a window);
        ``source`` the tags used, in words. None when the file has no VOI, a colour image, a window width the
        function cannot use (LINEAR needs more than 1, the others more than 0; the same fallback as before), or a
        LUT pydicom cannot read.
    """
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return None
    try:
        record = _lut_record(ds) if _has_voi_lut(ds) else _window_record(ds)
    except (TypeError, ValueError, AttributeError, IndexError, KeyError, NotImplementedError):
        return None
    if record is not None:
        record.update(inverted=bool(inverted), value_range=(float(value_range[0]), float(value_range[1])))
    return record


def _has_voi_lut(ds: Any) -> bool:
    """pydicom's test in ``apply_voi_lut``: a first VOI LUT Sequence item with LUT Descriptor and LUT Data."""
    seq = ds.get("VOILUTSequence")
    return bool(seq) and seq[0].get("LUTDescriptor") is not None and seq[0].get("LUTData") is not None


def _lut_record(ds: Any) -> dict[str, Any]:
    from pydicom.pixels import apply_voi

    item = ds.VOILUTSequence[0]
    n_raw, first_raw, bits = (int(v) for v in list(item.LUTDescriptor)[:3])
    n = n_raw or 65536
    # the entries in order, exactly as pydicom reads LUT Data (US, or OW in the file's byte order)
    entries = apply_voi(np.arange(first_raw, first_raw + n, dtype=np.int64), ds)
    first = first_raw - 65536 if int(ds.get("PixelRepresentation") or 0) == 1 and first_raw > 32767 else first_raw
    out_bits = max(bits, int(entries.max()).bit_length())
    source = f"VOILUTSequence[0] ({n} entries from {first}, {bits} bits)"
    if len(ds.VOILUTSequence) > 1:
        source += f", first of {len(ds.VOILUTSequence)} views"
    if out_bits != bits:
        source += f"; entries up to {int(entries.max())} need {out_bits} bits"
    return dict(
        function="LUT", center=None, width=None, lut_first=int(first), lut_bits=int(out_bits),
        lut=tuple(int(v) for v in entries), source=source,
    )  # fmt: skip


def _window_record(ds: Any) -> dict[str, Any] | None:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center in (None, "") or width in (None, ""):
        return None
    views = len(center) if _is_multi(center) else 1
    c = float(center[0] if _is_multi(center) else center)
    w = float(width[0] if _is_multi(width) else width)
    raw = str(ds.get("VOILUTFunction") or "").strip().upper()
    function = raw if raw in VOI_FUNCTIONS else "LINEAR"
    if not (np.isfinite(c) and np.isfinite(w)) or w <= (1.0 if function == "LINEAR" else 0.0):
        return None
    source = f"WindowCenter/WindowWidth[0], VOILUTFunction {function}"
    if not raw:
        source += " (absent: the default)"
    elif raw != function:
        source += f" (unknown value {raw!r}: the default used)"
    if views > 1:
        source += f", first of {views} windows"
    return dict(function=function, center=c, width=w, lut_first=None, lut_bits=None, lut=None, source=source)


def apply_voi(x: np.ndarray, voi: dict[str, Any], width_scale: float = 1.0) -> np.ndarray:
    """The file's VOI (``meta["voi"]``, :func:`voi_record`) applied to the reader's pixels ``x``, as float32 [0, 1].

    ``x`` [H, W] is the reader's output (modality LUT applied, inverted when ``voi["inverted"]``); it may be
    overwritten. The VOI acts on the modality output ``v`` (``v = lo + hi - x`` when inverted), its output range is
    scaled to [0, 1] and inverted back when the pixels were (``1 - y``, the MONOCHROME1 display):

    - LINEAR (PS3.3 C.11.2.1.2.1): ``y = (v - (c - 0.5)) / (w - 1) + 0.5`` clipped; LINEAR_EXACT (C.11.2.1.3.2):
      ``y = (v - c) / w + 0.5`` clipped. Evaluated in float32 on ``x`` (in place, no float64 copy): the same numbers
      as pydicom's ``apply_windowing`` to float32 rounding (tested). Inverted pixels get the window mirrored,
      ``c' = lo + hi - c``, as this reader has always done: exact for LINEAR_EXACT, while for LINEAR the half-unit
      offset of its formula does not mirror, so the window sits one modality unit (``1 / (w - 1)`` of the output)
      from ``1 - pydicom``; kept so that protocol outputs of MONOCHROME1 files, and runs trained on them, do not
      change.
    - SIGMOID (C.11.2.1.3.1): ``y = 1 / (1 + exp(-4 (v - c) / w))``, by pydicom's ``apply_windowing``.
    - LUT (C.11.2.1.1): pydicom's ``apply_voi`` on ``v`` rounded to integers (the LUT's inputs; integer modality
      outputs are unchanged; averaged values of a reduced JPEG 2000 decode take the nearest entry); inputs below
      / above the table take its first / last entry; ``y = entry / (2**lut_bits - 1)``.

    ``width_scale`` widens the VOI around its centre: the window width is multiplied by it (LINEAR: ``w - 1``),
    and a LUT is stretched along its input axis around the middle of its input range (``width_scale`` 1 = exact).

    Example:
        >>> voi = dict(function="SIGMOID", center=100.0, width=40.0, inverted=False, value_range=(0.0, 4095.0))
        >>> [round(float(v), 4) for v in apply_voi(np.array([[100.0, 140.0]], np.float32), voi)[0]]
        [0.5, 0.982]
    """
    function = voi["function"]
    lo, hi = (float(v) for v in voi["value_range"])
    inverted = bool(voi["inverted"])
    x = np.asarray(x, dtype=np.float32)
    if function in ("LINEAR", "LINEAR_EXACT"):
        c, w = float(voi["center"]), float(voi["width"])
        if inverted:  # the window mirrored onto the inverted pixels (see the docstring)
            c = lo + hi - c
        if function == "LINEAR":
            c, w = c - 0.5, w - 1.0
        w = max(w * float(width_scale), 1e-12)
        x = np.array(x, dtype=np.float32, copy=True) if not x.flags.writeable else x
        x -= np.float32(c - w / 2.0)
        x *= np.float32(1.0 / w)
        return np.clip(x, 0.0, 1.0, out=x)
    v = np.float32(lo + hi) - x if inverted else x  # back to the modality output (the invert step's exact inverse)
    if function == "SIGMOID":
        from pydicom.pixels import apply_windowing

        y = apply_windowing(v, _window_dataset(float(voi["center"]), float(voi["width"]) * float(width_scale)))
        y = (y / float(2**_WINDOW_BITS - 1)).astype(np.float32)
    elif function == "LUT":
        from pydicom.pixels import apply_voi as pydicom_apply_voi

        lut, first = voi["lut"], int(voi["lut_first"])
        n = len(lut)
        if float(width_scale) != 1.0:
            middle = first + (n - 1) / 2.0
            v = middle + (v.astype(np.float64) - middle) / float(width_scale)
        # clipped to the table first: pydicom clamps too, but its uint16 index would wrap beyond first + 65535
        idx = np.clip(np.rint(v), first, first + n - 1).astype(np.int64)
        y = pydicom_apply_voi(idx, _lut_dataset(lut, first)).astype(np.float32)
        y *= np.float32(1.0 / float(2 ** int(voi["lut_bits"]) - 1))
    else:
        raise ValueError(f"meta['voi'] function {function!r} is not one of {(*VOI_FUNCTIONS, 'LUT')}")
    if inverted:
        np.subtract(np.float32(1.0), y, out=y)
    return np.clip(y, 0.0, 1.0, out=y)


def _window_dataset(center: float, width: float) -> Any:
    """The smallest data set pydicom's ``apply_windowing`` takes: 16-bit unsigned output, no rescale, SIGMOID."""
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = _WINDOW_BITS
    ds.PixelRepresentation = 0
    # FD keeps the float exactly (a DS string would be rounded to 16 characters)
    ds.add(DataElement(0x00281050, "FD", center))
    ds.add(DataElement(0x00281051, "FD", width))
    ds.VOILUTFunction = "SIGMOID"
    return ds


def _lut_dataset(lut: tuple[int, ...], first: int) -> Any:
    """A data set holding one VOI LUT Sequence item with these entries, for pydicom's ``apply_voi``."""
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    n = len(lut)
    bits = max(int(max(lut)).bit_length(), 8)
    item = Dataset()
    item.add(DataElement(0x00283002, "SS" if first < 0 else "US", [n % 65536, first, 8 if bits <= 8 else 16]))
    item.add(DataElement(0x00283006, "US", list(lut)))
    ds = Dataset()
    ds.VOILUTSequence = Sequence([item])
    return ds


def _is_multi(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
