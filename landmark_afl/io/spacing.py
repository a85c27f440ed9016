"""Pixel spacing rules: which header value becomes ``meta["spacing_mm"]`` (row, col), and why.

DICOM, in order:
1. ``PixelSpacing`` (0028,0030) when both values are finite and > 0 (also read from the shared functional
   groups of enhanced multi-frame objects).
2. Else ``ImagerPixelSpacing`` (0018,1164) divided by ``EstimatedRadiographicMagnificationFactor`` (0018,1114)
   when that factor is present and > 0 (source ``"ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"``).
3. Else ``ImagerPixelSpacing`` as is, with the note "detector plane, not corrected for magnification".
4. Else None (source ``"none"``).
A degenerate value (zero, negative, NaN, not two numbers) is never used: it is skipped and the note says so.
Nor is an implausible one: a radiograph's pixels are :data:`MIN_SPACING_MM` to :data:`MAX_SPACING_MM` (0.001-10 mm)
wide; a spacing outside that (1e-30 from a broken export, 50 from a unit mix-up) is skipped the same way, and a
magnification factor that would give one is not applied.

ITK formats (MHA/MHD, NRRD, NIfTI): the header spacing, given by ITK as (x, y) and returned as (row, col), under the
same degenerate / implausible rule.
Plain rasters (PNG, JPEG, BMP, TIFF): None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Spacing = tuple[float, float]
MIN_SPACING_MM = 1e-3
MAX_SPACING_MM = 10.0


def _pair(value: Any) -> Spacing | None:
    """(row, col) from a two-value header element, or None when it is not two finite numbers > 0."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
        return None
    return values[0], values[1]


def plausible_spacing(values) -> bool:
    """Whether every value is a finite pixel size between :data:`MIN_SPACING_MM` and :data:`MAX_SPACING_MM` mm."""
    return all(math.isfinite(v) and MIN_SPACING_MM <= v <= MAX_SPACING_MM for v in values)


def _implausible_note(what: str, outcome: str = "and was not used") -> str:
    return (
        f"{what} mm is implausible for a radiograph (outside {MIN_SPACING_MM:g}-{MAX_SPACING_MM:g} mm per pixel)"
        f"{'' if outcome.startswith(':') else ' '}{outcome}"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _shared_pixel_spacing(ds: Any) -> Any:
    """PixelSpacing from SharedFunctionalGroupsSequence > PixelMeasuresSequence (enhanced objects), or None."""
    try:
        return ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    except Exception:  # noqa: BLE001 - absent, or a malformed nested item pydicom cannot parse: not used either way
        return None


def dicom_spacing(ds: Any) -> tuple[Spacing | None, str, str | None]:
    """Apply the DICOM spacing rules of this module to a pydicom data set.

    Args:
        ds: a ``pydicom.Dataset`` (header only is enough).

    Returns:
        ``(spacing_mm, spacing_source, spacing_note)``; spacing_mm is (row, col) in mm or None.
    """
    notes: list[str] = []
    for source, raw in (
        ("PixelSpacing", ds.get("PixelSpacing")),
        ("PixelSpacing (SharedFunctionalGroupsSequence)", _shared_pixel_spacing(ds)),
    ):
        if raw is None:
            continue
        pair = _pair(raw)
        if pair is None:
            notes.append(f"{source} {_fmt(raw)} is degenerate (zero, negative or not two numbers) and was not used")
            continue
        if not plausible_spacing(pair):
            notes.append(_implausible_note(f"{source} {_fmt(raw)}"))
            continue
        imager = _pair(ds.get("ImagerPixelSpacing"))
        if imager is not None and all(math.isclose(a, b) for a, b in zip(pair, imager, strict=True)):
            notes.append("PixelSpacing equals ImagerPixelSpacing: it may be the detector-plane spacing")
        return pair, source, "; ".join(notes) or None

    raw = ds.get("ImagerPixelSpacing")
    if raw is not None:
        imager = _pair(raw)
        if imager is None:
            notes.append(f"ImagerPixelSpacing {_fmt(raw)} is degenerate and was not used")
        elif not plausible_spacing(imager):
            notes.append(_implausible_note(f"ImagerPixelSpacing {_fmt(raw)}"))
        else:
            factor = ds.get("EstimatedRadiographicMagnificationFactor")
            try:
                factor_value = float(factor) if factor is not None and factor != "" else None
            except (TypeError, ValueError):
                factor_value = None
            if factor_value is not None and math.isfinite(factor_value) and factor_value > 0:
                spacing = (imager[0] / factor_value, imager[1] / factor_value)
                if plausible_spacing(spacing):
                    notes.append(f"ImagerPixelSpacing {_fmt(raw)} divided by the magnification factor {factor_value:g}")
                    return spacing, "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor", "; ".join(notes)
                what = f"ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor {factor!s} = {_fmt(spacing)}"
                notes.append(_implausible_note(what, ": the factor was not applied"))
            elif factor is not None:
                notes.append(f"EstimatedRadiographicMagnificationFactor {factor!s} is degenerate and was not used")
            notes.append("detector plane, not corrected for magnification")
            return imager, "ImagerPixelSpacing", "; ".join(notes)
    if not notes:
        notes.append("no PixelSpacing or ImagerPixelSpacing in the header")
    return None, "none", "; ".join(notes)


def itk_spacing(spacing_xy: Sequence[float]) -> tuple[Spacing | None, str, str | None]:
    """The spacing rule for ITK formats: header spacing (x, y[, z]) -> (row, col) = (y, x).

    Args:
        spacing_xy: ``SimpleITK.Image.GetSpacing()``.

    Returns:
        ``(spacing_mm, spacing_source, spacing_note)``.
    """
    pair = _pair((spacing_xy[1], spacing_xy[0]))
    if pair is None:
        return None, "none", f"ITK header spacing {tuple(spacing_xy)} is degenerate and was not used"
    if not plausible_spacing(pair):
        return None, "none", _implausible_note(f"ITK header spacing {tuple(spacing_xy)}")
    note = None
    if pair == (1.0, 1.0):
        note = "spacing 1.0 x 1.0 is also what ITK reports when the header gives none: check it is real"
    return pair, "itk-header", note
