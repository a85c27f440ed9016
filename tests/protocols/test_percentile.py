"""percentiles(): np.percentile's values to the last bit, found through the tails."""

import numpy as np
import pytest

from landmark_afl.protocols import percentile as pct


def _images(rng):
    """Images of the kinds a window step meets: smooth, many ties, constant, heavy-tailed, mostly background."""
    yield "uniform", rng.random((600, 484), dtype=np.float32)
    yield "ties", rng.integers(0, 4, (300, 300)).astype(np.float32)
    yield "constant", np.full((200, 150), 7.0, np.float32)
    yield "heavy tails", (rng.normal(size=(400, 333)) ** 3).astype(np.float32)
    background = rng.integers(0, 4096, (512, 512)).astype(np.float32)
    background[:300] = 0.0
    yield "background", background
    yield "strided view", rng.random((900, 700), dtype=np.float32)[::3, ::2]
    yield "float64", rng.random((300, 300))
    yield "tiny", rng.random((3, 5), dtype=np.float32)
    yield "one pixel", np.array([[2.5]], np.float32)


@pytest.mark.parametrize("q", [[0.5, 99.5], [0.0, 100.0], [1.0, 99.0], [0.1, 99.9], [4.9, 50.0, 95.1], [30.0, 70.0]])
def test_percentiles_equal_numpy_bit_for_bit(q):
    for name, x in _images(np.random.default_rng(len(q) + int(q[0] * 10))):
        expected = np.percentile(x, q)
        got = pct.percentiles(x, q)
        assert got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_percentiles_find_the_tails_without_a_full_partition(monkeypatch):
    """Positions near both ends come from the tails: the whole-image partition (the fallback) is not used."""
    x = np.random.default_rng(3).random((600, 484), dtype=np.float32)
    calls = []
    real = pct._from_tail
    monkeypatch.setattr(pct, "_from_tail", lambda *a, **k: calls.append(k["smallest"]) or real(*a, **k))
    monkeypatch.setattr(pct, "_partition_all", lambda *a: pytest.fail("the whole image was partitioned"))
    pct.percentiles(x, [0.5, 99.5])
    assert calls == [True, False]


def test_a_threshold_that_holds_too_few_pixels_falls_back_to_the_full_partition(monkeypatch):
    """When the threshold from the coarse grid holds too few pixels (here: the margin forced to nothing, so it holds
    about 200 of the 6 400 needed for 4 %), the values still come out right, from the whole image."""
    x = np.random.default_rng(4).random((400, 400), dtype=np.float32)
    monkeypatch.setattr(pct, "COARSE_MARGIN", 1e-9)
    fallbacks = []
    real = pct._partition_all
    monkeypatch.setattr(pct, "_partition_all", lambda *a: fallbacks.append(1) or real(*a))
    np.testing.assert_array_equal(pct.percentiles(x, [4.0, 96.0]), np.percentile(x, [4.0, 96.0]))
    assert fallbacks


@pytest.mark.parametrize("q", [[-1.0, 50.0], [50.0, 100.5], [float("nan"), 50.0]])
def test_percentiles_outside_0_100_are_refused(q):
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        pct.percentiles(np.zeros((4, 4), np.float32), q)
