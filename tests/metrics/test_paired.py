"""The paired difference and its bootstrap interval, against a loop written from the definition."""

from __future__ import annotations

import numpy as np
import pytest

from landmark_afl.metrics.paired import paired_difference


def _loop_reference(fa, fr, ea, da, er, dr, n_boot, seed):
    """The definition, one resample and one seed at a time (same resampled indices as the function)."""
    idx = np.random.default_rng(seed).integers(0, fa.shape[1], size=(n_boot, fa.shape[1]))
    fn, mre = [], []
    for sel in idx:
        fn.append(np.mean([fa[s, sel].sum() - fr[s, sel].sum() for s in range(fa.shape[0])]))
        mre.append(np.mean([ea[s, sel].sum() / da[s, sel].sum() - er[s, sel].sum() / dr[s, sel].sum()
                            for s in range(fa.shape[0])]))  # fmt: skip
    return np.quantile(fn, [0.025, 0.975]), np.quantile(mre, [0.025, 0.975])


def test_matches_the_definition():
    rng = np.random.default_rng(1)
    s, n = 3, 40
    fr = rng.poisson(2.0, (s, n)).astype(float)
    fa = np.maximum(fr - rng.poisson(0.5, (s, n)), 0)
    dr, da = rng.integers(10, 19, (s, n)).astype(float), rng.integers(10, 19, (s, n)).astype(float)
    er, ea = dr * rng.uniform(1.0, 2.0, (s, n)), da * rng.uniform(1.0, 2.0, (s, n))
    r = paired_difference(fa, fr, ea, da, er, dr, n_boot=300, seed=5)
    fn_ci, mre_ci = _loop_reference(fa, fr, ea, da, er, dr, 300, 5)
    np.testing.assert_allclose(r["fn_ci"], fn_ci, rtol=1e-12)
    np.testing.assert_allclose(r["mre_ci"], mre_ci, rtol=1e-12)
    assert r["fn_diff"] == pytest.approx((fa.sum(1) - fr.sum(1)).mean())
    assert r["mre_diff"] == pytest.approx((ea.sum(1) / da.sum(1) - er.sum(1) / dr.sum(1)).mean())
    assert r["fn_rel"] == pytest.approx(r["fn_diff"] / fr.sum(1).mean())
    assert r["fn_significant"] and r["fn_ci"][1] < 0  # 0.5 fewer misses per image on average is clear at n = 40


def test_identical_arms_differ_by_nothing():
    fn = np.array([[1.0, 0, 3, 2], [0, 0, 1, 1]])
    one = np.ones_like(fn)
    r = paired_difference(fn, fn, one, one, one, one, n_boot=100)
    assert r["fn_diff"] == 0 and r["fn_ci"] == [0.0, 0.0] and not r["fn_significant"]
    assert r["mre_diff"] == 0 and not r["mre_significant"]


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\[S, N\]"):
        paired_difference(np.zeros((2, 3)), np.zeros((2, 4)), *[np.zeros((2, 3))] * 4)
