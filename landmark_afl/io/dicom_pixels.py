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
The VOI window (Window Center / Width, or VOI LUT Sequence) is NOT applied: it is returned as ``(center, width)``
in output units, i.e. after the modality LUT and mirrored like the pixels when they were inverted
(``center' = lo + hi - center``; the width is unchanged), so ``[c - w/2, c + w/2]`` of the output is the window.
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
    """The first VOI window in output units (see the module docstring), and where it came from.

    Returns:
        ``((center, width) or None, source)``; source is ``"WindowCenter/WindowWidth"``,
        ``"VOILUTSequence (input range)"`` or None.
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


def _is_multi(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
