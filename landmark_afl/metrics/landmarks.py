"""Per-landmark outcomes of a prediction: present, detected, false negative / positive, radial error.

A landmark is *detected* when the peak response of its heatmap is >= the threshold, a *false negative* when it is
present in the ground truth but not detected, a *false positive* when it is absent but detected. Radial errors are
measured for landmarks that are present and detected, in mm when the pixel spacing is known (else NaN in mm, and
the pixel error is kept beside it), so that a lower false-negative count cannot hide worse placement.

The ``_all`` figures (``error_all_mm``, ``mre_all_mm``, ``sdr_all``) follow the ISBI 2015 challenge's rule instead:
every present landmark is scored at its heatmap's argmax wherever it falls, detected or not, so a missed landmark
counts with its (usually large) error rather than being left out.
"""

from __future__ import annotations

import numpy as np

SDR_RADII_MM = (2.0, 2.5, 3.0, 4.0)


def landmark_outcomes(
    pred_xy: np.ndarray,
    peaks: np.ndarray,
    gt_xy: np.ndarray,
    threshold: float,
    spacing: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Outcomes of N images x K landmarks.

    Args:
        pred_xy: predicted landmarks [N, K, 2] (x, y) in original image pixels.
        peaks: peak responses [N, K].
        gt_xy: ground truth [N, K, 2], NaN = absent.
        threshold: detection threshold on the peak response.
        spacing: [N, 2] (row, col) mm per pixel, NaN where unknown; None = all unknown.

    Returns:
        dict of [N, K] arrays: present, detected, false_negative, false_positive (bool), error_px, error_mm
        (float, NaN where not both present and detected, or where the spacing is unknown for error_mm),
        error_all_px, error_all_mm (the same for every present landmark, detected or not).
    """
    pred_xy = np.asarray(pred_xy, np.float64)
    gt_xy = np.asarray(gt_xy, np.float64)
    peaks = np.asarray(peaks, np.float64)
    if pred_xy.shape != gt_xy.shape or pred_xy.shape[:2] != peaks.shape or pred_xy.shape[-1] != 2:
        raise ValueError(
            f"expected pred_xy and gt_xy [N, K, 2] and peaks [N, K], got {pred_xy.shape}, {gt_xy.shape}, {peaks.shape}"
        )
    n = pred_xy.shape[0]
    spacing = np.full((n, 2), np.nan) if spacing is None else np.asarray(spacing, np.float64).reshape(n, 2)
    present = np.isfinite(gt_xy).all(-1)
    detected = peaks >= threshold
    delta = pred_xy - gt_xy
    scored = present & detected
    col_mm, row_mm = spacing[:, None, 1], spacing[:, None, 0]
    with np.errstate(invalid="ignore"):
        radial_px = np.hypot(delta[..., 0], delta[..., 1])
        radial_mm = np.hypot(delta[..., 0] * col_mm, delta[..., 1] * row_mm)
    error_all_px = np.where(present, radial_px, np.nan)
    error_all_mm = np.where(present, radial_mm, np.nan)
    return {
        "present": present,
        "detected": detected,
        "false_negative": present & ~detected,
        "false_positive": ~present & detected,
        "error_px": np.where(scored, error_all_px, np.nan),
        "error_mm": np.where(scored, error_all_mm, np.nan),
        "error_all_px": error_all_px,
        "error_all_mm": error_all_mm,
    }


def summarize_outcomes(outcomes: dict[str, np.ndarray], axis: int | None = None) -> dict:
    """Counts and localisation figures, over everything (axis None) or per landmark (axis 0) / per image (axis 1).

    Returns a dict with ``present``, ``detected`` (present and detected), ``false_negatives``, ``false_positives``,
    ``absent``, ``mre_mm``, ``sd_mm``, ``mre_px`` and ``sdr`` ({"2": %, ...} over present+detected landmarks
    with a known spacing), and the challenge's figures over every present landmark: ``mre_all_mm``, ``sd_all_mm``,
    ``mre_all_px`` and ``sdr_all`` (only when the outcomes carry ``error_all_mm``). Values are Python scalars
    (axis None) or lists.
    """
    present, detected = outcomes["present"], outcomes["detected"]
    with np.errstate(invalid="ignore", divide="ignore"):
        res = {
            "present": present.sum(axis),
            "detected": (present & detected).sum(axis),
            "false_negatives": outcomes["false_negative"].sum(axis),
            "absent": (~present).sum(axis),
            "false_positives": outcomes["false_positive"].sum(axis),
            **_error_figures(outcomes["error_mm"], outcomes["error_px"], axis, ""),
        }
        if "error_all_mm" in outcomes:
            res.update(_error_figures(outcomes["error_all_mm"], outcomes["error_all_px"], axis, "_all"))
    return _to_python(res)


def _error_figures(err_mm: np.ndarray, err_px: np.ndarray, axis, suffix: str) -> dict:
    """``mre{suffix}_mm``, ``sd{suffix}_mm``, ``mre{suffix}_px`` and ``sdr{suffix}`` of one set of radial errors."""
    measured = np.isfinite(err_mm).sum(axis)
    return {
        f"mre{suffix}_mm": _nanmean(err_mm, axis),
        f"sd{suffix}_mm": _nanstd(err_mm, axis),
        f"mre{suffix}_px": _nanmean(err_px, axis),
        f"sdr{suffix}": {
            f"{r:g}": np.where(measured > 0, 100.0 * (err_mm <= r).sum(axis) / np.maximum(measured, 1), np.nan)
            for r in SDR_RADII_MM
        },
    }


def _nanmean(values: np.ndarray, axis):
    count = np.isfinite(values).sum(axis)
    total = np.nansum(values, axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nanstd(values: np.ndarray, axis):
    mean = _nanmean(values, axis)
    mean_b = mean if axis is None else np.expand_dims(mean, axis)
    return np.sqrt(_nanmean((values - mean_b) ** 2, axis))


def _to_python(value):
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    arr = np.asarray(value)
    if arr.ndim == 0:
        item = arr.item()
        return None if isinstance(item, float) and not np.isfinite(item) else item
    return [_to_python(v) for v in arr]
