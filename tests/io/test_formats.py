"""Non-DICOM formats round-trip through files written here; errors for what is not an image."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from landmark_afl.io import ImageNotFoundError, ImageReadError, read_image
from tests.conftest import shared_path

RNG = np.random.default_rng(0)
GREY8 = RNG.integers(0, 256, size=(17, 23), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, size=(17, 23), dtype=np.uint16)


@pytest.mark.parametrize("suffix, fmt", [(".png", "png"), (".bmp", "bmp"), (".tif", "tiff")])
def test_lossless_raster_8bit(tmp_path, suffix, fmt):
    path = tmp_path / f"a{suffix}"
    Image.fromarray(GREY8).save(path)
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, GREY8)
    assert meta["format"] == fmt and meta["spacing_mm"] is None and meta["bits_stored"] == 8


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_16bit_kept(tmp_path, suffix):
    import cv2

    path = tmp_path / f"a{suffix}"
    assert cv2.imwrite(str(path), GREY16)
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, GREY16)
    assert image.max() > 255 and meta["bits_stored"] == 16


def test_jpeg_close_to_source_and_colour_to_grey(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (48, 1))
    path = tmp_path / "a.jpg"
    Image.fromarray(smooth.astype(np.uint8)).save(path, quality=95)
    image, meta = read_image(path)
    assert meta["format"] == "jpeg" and np.abs(image - smooth).max() < 4
    rgb = np.stack([GREY8, GREY8 // 2, 255 - GREY8], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    image, meta = read_image(tmp_path / "c.png")
    np.testing.assert_allclose(image, rgb.astype(np.float64) @ [0.299, 0.587, 0.114], atol=1e-3)
    assert meta["photometric"] == "RGB"


@pytest.mark.parametrize("suffix, fmt", [(".mha", "mha"), (".nrrd", "nrrd"), (".nii", "nifti"), (".nii.gz", "nifti")])
def test_itk_formats_round_trip_with_spacing(tmp_path, suffix, fmt):
    itk_image = sitk.GetImageFromArray(GREY16)
    itk_image.SetSpacing((0.3, 0.2))  # (x, y) = (col, row)
    path = tmp_path / f"a{suffix}"
    sitk.WriteImage(itk_image, str(path))
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, GREY16)
    assert meta["format"] == fmt
    assert meta["spacing_mm"] == pytest.approx((0.2, 0.3)) and meta["spacing_source"] == "itk-header"


def test_hand_atlas_mha_is_2d():
    path = sorted(shared_path("hand_xray", "images").glob("*.mha"))[0]
    header = sitk.ReadImage(str(path))
    assert header.GetDimension() == 3 and header.GetSize()[2] == 1
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, sitk.GetArrayFromImage(header)[0])
    sx, sy = header.GetSpacing()[:2]
    assert meta["spacing_mm"] == pytest.approx((sy, sx)) and meta["original_shape"] == image.shape


def test_3d_volume_is_refused(tmp_path):
    path = tmp_path / "vol.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.uint8)), str(path))
    with pytest.raises(ImageReadError, match=r"vol\.nrrd.*3D volume"):
        read_image(path)


def test_not_an_image(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    noise = tmp_path / "blob"
    noise.write_bytes(RNG.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    fake_png = tmp_path / "fake.png"
    fake_png.write_bytes(b"\x89PNG but not really")
    fake_dcm = tmp_path / "fake.dcm"
    fake_dcm.write_bytes(RNG.integers(0, 256, size=300, dtype=np.uint8).tobytes())
    for path in (text, noise, fake_png, fake_dcm):
        with pytest.raises(ImageReadError) as info:
            read_image(path)
        assert path.name in str(info.value) and "Fix:" in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageNotFoundError, match="missing.dcm") as info:
        read_image(tmp_path / "missing.dcm")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ImageReadError)
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(GREY16).save(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(path)
