"""Paired comparison of two arms trained with the same seeds: the difference and its 95 % interval.

Arm A and the reference arm R are trained with the same seeds (same initialisation and data order per seed) and
evaluated on the same images. Per seed s and image i, ``fn[s, i]`` counts false negatives and ``err[s, i]`` /
``det[s, i]`` sum the radial errors / count the detected landmarks. The statistics:

    FN difference   = mean_s ( sum_i fn_A[s, i] - sum_i fn_R[s, i] )
    MRE difference  = mean_s ( sum_i err_A / sum_i det_A  -  sum_i err_R / sum_i det_R )

and their 95 % intervals come from a paired bootstrap over images: the same resampled image set for both arms and
every seed (Efron and Tibshirani, 1993, percentile interval), so the image-to-image variation that both arms share
cancels. A difference is called significant when its interval excludes 0.
"""

from __future__ import annotations

import numpy as np


def paired_difference(
    fn_arm: np.ndarray,
    fn_ref: np.ndarray,
    err_arm: np.ndarray,
    det_arm: np.ndarray,
    err_ref: np.ndarray,
    det_ref: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """The paired differences (arm minus reference) and their bootstrap intervals.

    Args:
        fn_arm, fn_ref: false negatives per seed and image, [S, N] (the same images in the same order).
        err_arm, err_ref: sums of radial errors of the detected landmarks per seed and image, [S, N].
        det_arm, det_ref: detected landmarks per seed and image, [S, N].
        n_boot: bootstrap resamples of the N images.
        seed: seed of the resampling.
        level: coverage of the interval.

    Returns:
        ``{"fn_arm", "fn_ref"}`` (mean over seeds of the totals), ``"fn_diff"``, ``"fn_ci"`` [lo, hi],
        ``"fn_rel"`` (fn_diff / fn_ref, None when fn_ref is 0), ``"fn_significant"``, the same for MRE
        (``mre_arm``, ``mre_ref``, ``mre_diff``, ``mre_ci``, ``mre_significant``), ``n_seeds`` and ``n_images``.

    Example:
        >>> fn_a, fn_r = np.array([[0, 1, 0, 0]]), np.array([[1, 1, 2, 1]])
        >>> one = np.ones((1, 4))
        >>> r = paired_difference(fn_a, fn_r, one, one, one, one, n_boot=200)
        >>> r["fn_diff"], r["fn_significant"]
        (-4.0, True)
    """
    arrays = [np.asarray(a, np.float64) for a in (fn_arm, fn_ref, err_arm, det_arm, err_ref, det_ref)]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"all inputs must be [S, N] arrays of one shape, got {[a.shape for a in arrays]}")
    fa, fr, ea, da, er, dr = arrays
    n_seeds, n_images = fa.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_images, size=(n_boot, n_images))

    def fn_stat(sel: np.ndarray) -> np.ndarray:  # sel [..., N] image indices -> [...]
        return (fa[:, sel].sum(-1) - fr[:, sel].sum(-1)).mean(0)

    def mre_stat(sel: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (ea[:, sel].sum(-1) / da[:, sel].sum(-1) - er[:, sel].sum(-1) / dr[:, sel].sum(-1)).mean(0)

    full = np.arange(n_images)
    alpha = (1 - level) / 2
    boot_fn, boot_mre = fn_stat(idx), mre_stat(idx)  # [n_boot]
    fn_diff, mre_diff = float(fn_stat(full)), float(mre_stat(full))
    fn_ci = [float(np.quantile(boot_fn, alpha)), float(np.quantile(boot_fn, 1 - alpha))]
    finite = boot_mre[np.isfinite(boot_mre)]
    mre_ci = [float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))] if len(finite) else [None, None]
    fn_ref_total = float(fr.sum(-1).mean())
    with np.errstate(invalid="ignore", divide="ignore"):
        mre_arm = float(np.mean(ea.sum(-1) / da.sum(-1)))
        mre_ref = float(np.mean(er.sum(-1) / dr.sum(-1)))
    return {
        "n_seeds": n_seeds,
        "n_images": n_images,
        "fn_arm": float(fa.sum(-1).mean()),
        "fn_ref": fn_ref_total,
        "fn_diff": fn_diff,
        "fn_rel": fn_diff / fn_ref_total if fn_ref_total else None,
        "fn_ci": fn_ci,
        "fn_significant": bool(fn_ci[0] > 0 or fn_ci[1] < 0),
        "mre_arm": mre_arm if np.isfinite(mre_arm) else None,
        "mre_ref": mre_ref if np.isfinite(mre_ref) else None,
        "mre_diff": mre_diff if np.isfinite(mre_diff) else None,
        "mre_ci": mre_ci,
        "mre_significant": bool(mre_ci[0] is not None and (mre_ci[0] > 0 or mre_ci[1] < 0)),
    }
