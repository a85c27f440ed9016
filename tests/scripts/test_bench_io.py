"""scripts/bench_io.py: the per-step breakdown of a protocol's time."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from bench_io import step_times  # noqa: E402

from landmark_afl.protocols import load_protocol  # noqa: E402


def test_step_times_name_every_step_in_order_and_leave_the_image_alone():
    protocol = load_protocol("high")
    image = np.random.default_rng(0).random((64, 48), dtype=np.float32) * 1000
    before = image.copy()
    times = step_times(protocol, image, {}, repeat=2)
    assert list(times) == [f"{i} {s.name}" for i, s in enumerate(protocol.steps, start=1)]
    assert all(v >= 0 for v in times.values())
    np.testing.assert_array_equal(image, before)
