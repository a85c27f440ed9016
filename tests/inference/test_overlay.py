"""Overlay PNGs: label placement (no overlap, never clipped), the size rule, the display (the file's VOI, not the
protocol output), undetected marks, the title band and atomic writing."""

from __future__ import annotations

from itertools import combinations

import cv2
import numpy as np
import pytest

from landmark_afl.inference.overlay import (
    BAND,
    MAX_SIDE,
    MISSED,
    display_image,
    display_scale,
    place_labels,
    render_overlay,
    write_overlay,
)
from landmark_afl.io import read_image
from landmark_afl.io.dicom_pixels import apply_voi
from tests.conftest import shared_path


def _disjoint(boxes) -> bool:
    return all(a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1] for a, b in combinations(boxes, 2))


def _inside(box, area) -> bool:
    return area[0] <= box[0] and area[1] <= box[1] and box[2] <= area[2] and box[3] <= area[3]


@pytest.mark.parametrize("seed", range(5))
def test_place_labels_never_overlap_and_stay_inside(seed):
    rng = np.random.default_rng(seed)
    area = (0, 0, 400, 300)
    anchors = np.r_[rng.uniform(150, 200, (20, 2)), rng.uniform(0, [400, 300], (10, 2))]  # a dense cluster + spread
    sizes = [(int(rng.integers(30, 90)), 14) for _ in anchors]
    boxes = place_labels(anchors, sizes, area, 4, 7)
    placed = [b for b in boxes if b is not None]
    assert len(placed) >= 20 and _disjoint(placed) and all(_inside(b, area) for b in placed)
    for b, (w, h) in zip(boxes, sizes, strict=True):
        assert b is None or (b[2] - b[0], b[3] - b[1]) == (w, h)


def test_crowded_overlay_labels_disjoint_inside_the_canvas_and_off_the_title():
    """36 long labels around a 60 px cluster in a 600 x 500 image: some go to the side column; none overlap."""
    rng = np.random.default_rng(0)
    k = 36
    xy = np.r_[rng.uniform(270, 330, (26, 2)), [[1, 1], [598, 1], [1, 498], [598, 498]], rng.uniform(0, 600, (6, 2))]
    peaks = rng.uniform(0, 1, k)
    names = [f"landmark_with_a_long_name_{i}" for i in range(k)]
    image = rng.uniform(0, 1, (500, 600)).astype(np.float32)
    ov = render_overlay(image, xy, peaks, peaks >= 0.5, names, title=[["crowded.dcm", "run r", "threshold 0.5"]])
    h, w = ov.image.shape[:2]
    assert len(ov.label_boxes) == k and _disjoint(ov.label_boxes)
    assert all(_inside(b, (0, ov.image_box[1], w, h)) for b in ov.label_boxes)  # in the canvas, below the title
    in_image = [b for b in ov.label_boxes if _inside(b, ov.image_box)]
    assert ov.overflow > 0 and len(in_image) == k - ov.overflow  # the rest lie in the column right of the image
    assert w > ov.image_box[2]


def test_size_rule_full_resolution_up_to_max_side():
    assert display_scale((2400, 1935)) == pytest.approx(MAX_SIDE / 2400)
    assert display_scale((1500, 1000)) == 1.0
    assert display_scale((64, 64)) == 8.0  # enlarged by a whole factor to the minimum side
    assert display_scale((4000, 3000), max_side=None) == 1.0
    ov = render_overlay(np.zeros((1500, 1000), np.float32), np.array([[10.0, 20.0]]), np.ones(1), [True], ["a"])
    assert ov.image_box[2:] == (1000, ov.image_box[1] + 1500) and "full resolution" in ov.title_lines[-1]
    ov = render_overlay(np.zeros((3000, 1000), np.float32), np.array([[10.0, 20.0]]), np.ones(1), [True], ["a"])
    assert ov.image_box[3] - ov.image_box[1] == MAX_SIDE and "scaled 0.683x" in ov.title_lines[-1]


def test_marks_sit_on_the_landmarks_and_missed_ones_are_drawn_differently():
    image = np.full((300, 400), 0.5, np.float32)
    xy = np.array([[50.0, 60.0], [300.0, 200.0]])
    ov = render_overlay(image, xy, np.array([0.9, 0.1]), np.array([True, False]), ["a", "b"])
    pic, top = ov.image, ov.image_box[1]
    scale = ov.scale
    (x0, y0), (x1, y1) = (np.round((xy + 0.5) * scale - 0.5).astype(int) + [0, top]).tolist()
    assert pic[y0, x0].tolist() == [40, 220, 40]  # a filled green disc at the detected one
    ring = pic[y1 - 12 : y1 + 13, x1 - 12 : x1 + 13].reshape(-1, 3)
    assert (np.abs(ring.astype(int) - MISSED).sum(1) < 30).any()  # a red ring at the missed one
    assert pic[y1, x1].tolist() != [40, 220, 40]
    assert tuple(pic[0, 0]) == BAND


def test_display_is_the_files_voi_not_the_protocol():
    path = shared_path("dicom", "pydicom_edge", "MR_small.dcm")
    pixels, meta = read_image(path)
    shown, label = display_image(pixels, meta)
    np.testing.assert_array_equal(shown, apply_voi(pixels.copy(), meta["voi"]))
    assert "VOI window c 600 w 1600 LINEAR" in label
    jpeg = shared_path("isbi2015", "RawImage", "TrainingData", "001.jpg")
    pixels, meta = read_image(jpeg)
    shown, label = display_image(pixels, meta)
    lo, hi = np.percentile(pixels[::2, ::2], [0.5, 99.5])
    assert (
        label.startswith("percentile window") and np.abs(shown - np.clip((pixels - lo) / (hi - lo), 0, 1)).max() < 0.01
    )


def test_write_overlay_ignores_the_protocol_output_and_writes_atomically(tmp_path):
    path = shared_path("dicom", "pydicom_edge", "MR_small.dcm")

    class Protocol:
        name = "high"

        def __call__(self, pixels, meta):
            raise AssertionError("the overlay must not show the protocol output")

    out = tmp_path / "sub" / "é x.png"
    xy = np.array([[20.0, 30.0], [40.0, 10.0]])
    write_overlay(path, Protocol(), xy, np.array([0.8, 0.2]), np.array([True, False]), ["n1", "n2"], out,
                  run_name="my-run", threshold=0.5)  # fmt: skip
    assert [p.name for p in out.parent.iterdir()] == ["é x.png"]  # no temporary file left
    pic = cv2.imdecode(np.frombuffer(out.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    pixels, meta = read_image(path)
    shown, _ = display_image(pixels, meta)
    band = pic.shape[0] - 512
    grey = pic[band:, :512, 0].astype(int)
    expected = np.kron(np.clip(shown * 255 + 0.5, 0, 255).astype(int), np.ones((8, 8), int))  # enlarged 8x
    untouched = (pic[band:, :512].max(-1) == pic[band:, :512].min(-1)) & (grey == expected)
    assert untouched.mean() > 0.8  # the image under the marks is the file's VOI display


def test_long_and_non_ascii_titles_fit_the_band():
    ov = render_overlay(np.zeros((600, 600), np.float32), np.array([[10.0, 10.0]]), np.ones(1), [True], ["ä\nb"],
                        title=[["x" * 300 + ".dcm", "run caf\udce9", "threshold 0.5"]])  # fmt: skip
    assert all(line.isascii() for line in ov.title_lines)
    widths = [cv2.getTextSize(line, 0, 0.5, 1)[0][0] for line in ov.title_lines]
    assert max(widths) <= ov.image.shape[1]
    assert any("..." in line for line in ov.title_lines)
