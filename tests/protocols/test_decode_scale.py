"""Protocol sizes are in pixels of the stored image, also for a JPEG 2000 file decoded at a reduced level."""

from __future__ import annotations

import cv2
import numpy as np

from landmark_afl.protocols import load_protocol


def _area(x: np.ndarray, f: int) -> np.ndarray:
    h, w = x.shape
    return cv2.resize(x, (w // f, h // f), interpolation=cv2.INTER_AREA)


def test_the_high_protocol_on_a_quarter_decode_matches_the_full_decode_shrunk():
    rng = np.random.default_rng(0)
    # a radiograph-like image: smooth anatomy plus edges at the unsharp mask's scale (sigma 5 stored px)
    base = cv2.GaussianBlur(rng.random((512, 512)).astype(np.float32), (0, 0), 12)
    base[200:320, 150:400] += 0.3
    image = (base * 4000).astype(np.float32)
    protocol = load_protocol("high")
    f = 4
    full_then_shrunk = _area(protocol(image.copy(), {}), f)
    quarter = _area(image, f)  # what a reduced decode at level 2 gives (an area average, up to the wavelet)
    scaled = protocol(quarter.copy(), {"decode_scale": f})
    unscaled = protocol(quarter.copy(), {})  # the sizes read as decoded pixels: 4x too large
    err_scaled = np.abs(scaled - full_then_shrunk).mean()
    err_unscaled = np.abs(unscaled - full_then_shrunk).mean()
    assert err_scaled < 0.25 * err_unscaled
    assert err_scaled < 0.005  # on the [0, 1] output range
