"""JPEG decoded at the model's resolution (libjpeg's DCT-domain scaling): ``read_image(path, target_size=...)``.

References: an area downsample (block mean) of the full decode for the pixels, a lossless PNG twin of the file for
the landmark geometry. Synthetic files run everywhere; the ISBI 2015 cephalogram of ../shared/data is skipped when
absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from landmark_afl.data.training import prepare_image
from landmark_afl.io import META_KEYS, read_image
from tests.conftest import shared_path
from tests.io.blobs import BLOBS, blob_centroids, blob_image, identity, relative_errors


def grey8() -> np.ndarray:
    return blob_image(dtype=np.uint8, base=40.0, peak=180.0)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("jpeg")
    img = grey8()
    Image.fromarray(img).save(tmp / "twin.png")
    Image.fromarray(img).save(tmp / "grey.jpg", quality=95)
    colour = np.stack([img, np.clip(img.astype(int) + 30, 0, 255), img // 2], -1).astype(np.uint8)
    Image.fromarray(colour).save(tmp / "colour.jpg", quality=95)
    Image.fromarray(colour).convert("CMYK").save(tmp / "cmyk.jpg", quality=95)
    Image.fromarray(img).save(tmp / "progressive.jpg", quality=95, progressive=True)
    return {p.stem: p for p in tmp.iterdir()}


@pytest.mark.parametrize(
    ("target", "f"),
    [((1100, 1300), 1), ((600, 600), 2), ((256, 256), 4), ((200, 320), 4), ((120, 150), 8), ((64, 64), 8)],
)
def test_scale_is_the_coarsest_that_covers_the_target(files, target, f):
    image, meta = read_image(files["grey"], target_size=target)
    assert meta["decode_scale"] == f
    assert image.shape == (-(-1001 // f), -(-1203 // f))
    assert meta["original_shape"] == (1001, 1203) and set(meta) == set(META_KEYS)
    if f > 1:
        assert min(target[0] / image.shape[0], target[1] / image.shape[1]) <= 1.0  # the letterbox never enlarges it
        assert meta["decoder"] == f"Pillow-libjpeg (DCT scaling 1/{f})"
        assert meta["steps"][0].startswith(f"decode (Pillow/libjpeg, DCT scaling 1/{f}")
    else:
        assert meta["decoder"] == "Pillow" and meta["decode_note"].startswith("full resolution")


@pytest.mark.parametrize("name", ["grey", "progressive"])
@pytest.mark.parametrize("f_target", [(2, (300, 400)), (4, (200, 300)), (8, (100, 150))])
def test_pixels_are_the_block_means_of_the_full_decode(files, name, f_target):
    f, target = f_target
    full, _ = read_image(files[name])
    image, meta = read_image(files[name], target_size=target)
    assert meta["decode_scale"] == f and meta["photometric"] == "MONOCHROME2" and meta["bits_stored"] == 8
    mean, p99 = relative_errors(image, full, f)
    assert mean < 0.003 and p99 < 0.01, (mean, p99)


def test_colour_jpeg_gives_the_luma_of_the_full_decode(files):
    full, full_meta = read_image(files["colour"])
    image, meta = read_image(files["colour"], target_size=(200, 300))
    assert meta["decode_scale"] == 4 and meta["photometric"] == full_meta["photometric"] == "RGB"
    assert "luma (Y) only" in meta["steps"][0]
    mean, p99 = relative_errors(image, full, 4)
    assert mean < 0.003 and p99 < 0.01, (mean, p99)


def test_landmarks_map_back_to_the_same_original_coordinates(files):
    """Blob centroids through prepare_image, DCT-scaled JPEG vs the lossless PNG twin: within 0.5 original px."""
    for size, f in [((600, 600), 2), ((256, 256), 4), ((200, 320), 4), ((128, 128), 8)]:
        assert read_image(files["grey"], target_size=size)[1]["decode_scale"] == f
        twin = prepare_image(files["twin"], identity, size, (0.1, 0.1))
        reduced = prepare_image(files["grey"], identity, size, (0.1, 0.1))
        assert reduced.shape == twin.shape == (1001, 1203)
        np.testing.assert_allclose(reduced.spacing, [0.1, 0.1])  # a data set's spacing is the original pixels'
        a, b = blob_centroids(twin), blob_centroids(reduced)
        assert np.abs(a - np.array(BLOBS)).max() < 0.25
        assert np.abs(b - a).max() < 0.3, (size, b - a)  # measured 0.01-0.2; a half-pixel shift at f=2 is 0.5


def test_no_target_and_other_formats_decode_in_full(files):
    image, meta = read_image(files["grey"])
    assert meta["decode_scale"] == 1 and image.shape == (1001, 1203) and meta["decoder"] == "Pillow"
    image, meta = read_image(files["twin"], target_size=(64, 64))  # PNG has no reduced decode
    assert meta["decode_scale"] == 1 and image.shape == (1001, 1203)


def test_runs_trained_before_the_scaling_read_jpeg_in_full(files):
    """``jpeg_scaling=False`` (runs saved before the key): training, evaluation and predict read the JPEG in full."""
    from landmark_afl.inference.stream import InferenceSet

    full = prepare_image(files["grey"], identity, (128, 128), None, jpeg_scaling=False)
    scaled = prepare_image(files["grey"], identity, (128, 128), None)
    twin = prepare_image(files["twin"], identity, (128, 128), None)
    np.testing.assert_allclose(full.scale, scaled.scale, rtol=0.01)
    assert not np.array_equal(full.image, scaled.image)
    assert np.abs(full.image - twin.image).max() < 3.0  # the same pipeline as a lossless file: JPEG noise only
    for flag, ref in ((False, full), (True, scaled)):
        item = InferenceSet([files["grey"]], identity, (128, 128), jpeg_scaling=flag)[0]
        np.testing.assert_array_equal(item["image"][0].numpy(), ref.image)


def test_a_side_thinner_than_the_scale_lowers_it(tmp_path):
    """6 px wide: 1/8 would leave no column, so the scale drops to 1/4 (Pillow divides by W // f)."""
    path = tmp_path / "thin.jpg"
    Image.fromarray(np.full((4000, 6), 128, np.uint8)).save(path, quality=95)
    image, meta = read_image(path, target_size=(64, 64))
    assert meta["decode_scale"] == 4 and image.shape == (1000, 2)
    assert np.allclose(image, 128, atol=2)


def test_cmyk_falls_back_to_a_full_decode_with_a_note(files):
    image, meta = read_image(files["cmyk"], target_size=(128, 128))
    assert meta["decode_scale"] == 1 and image.shape == (1001, 1203)
    assert meta["decode_note"] == "full decode, JPEG DCT scaling not used: CMYK"


def test_the_pixel_limit_is_checked_before_a_scaled_decode(files, monkeypatch):
    from landmark_afl.io import ImageReadError

    monkeypatch.setenv("LANDMARK_AFL_MAX_PIXELS", "1000000")  # the file has 1 204 203 pixels
    with pytest.raises(ImageReadError, match="grey.jpg"):
        read_image(files["grey"], target_size=(64, 64))


def test_isbi_cephalogram_at_the_recipe_size():
    folder = shared_path("isbi2015", "RawImage", "TrainingData")
    path = next(iter(sorted(folder.glob("001.jp*g"))), None)
    if path is None:
        pytest.skip(f"no 001.jpg in {folder}")
    full, _ = read_image(path)
    image, meta = read_image(path, target_size=(448, 352))
    assert meta["decode_scale"] == 4 and image.shape == (600, 484) and meta["original_shape"] == (2400, 1935)
    mean, p99 = relative_errors(image, full, 4)
    assert mean < 0.003 and p99 < 0.01, (mean, p99)
