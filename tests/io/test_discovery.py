"""find_images and is_dicom on a folder tree written here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from landmark_afl.io import find_images, is_dicom
from tests.conftest import shared_path
from tests.io.synthetic import write_dicom


def test_find_images(tmp_path):
    pixels = np.zeros((4, 4), np.uint16)
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    write_dicom(tmp_path / "b" / "c" / "IM0001", pixels)  # no extension
    write_dicom(tmp_path / "b" / "scan.dcm", pixels)
    write_dicom(tmp_path / "DICOMDIR", pixels)
    write_dicom(tmp_path / ".hidden" / "x.dcm", pixels)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "blob").write_bytes(b"\x00" * 200)
    found = find_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.png", "b/c/IM0001", "b/scan.dcm"]
    assert find_images(tmp_path / "a.png") == [tmp_path / "a.png"]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_images(tmp_path / "nowhere")


def test_is_dicom(tmp_path):
    assert is_dicom(shared_path("dicom", "wg04_xray", "XA1_UNC.dcm"))
    assert not is_dicom(shared_path("dicom", "DICOM_TABLE.md"))
    png = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png)
    assert not is_dicom(png)
    assert not is_dicom(tmp_path / "missing")
    assert is_dicom(write_dicom(tmp_path / "raw", np.zeros((2, 2), np.uint16), preamble=False))


def test_raster_images_without_an_extension_are_found_and_read(tmp_path):
    import cv2
    import numpy as np

    from landmark_afl.io import find_images, read_image

    pixels = (np.random.default_rng(0).random((40, 30)) * 255).astype(np.uint8)
    for name, ext in (("IMG0001", ".jpg"), ("IMG0002", ".png"), ("IMG0003", ".tif")):
        ok, data = cv2.imencode(ext, pixels)
        (tmp_path / name).write_bytes(data.tobytes())
    (tmp_path / "README").write_text("not an image")
    found = find_images(tmp_path)
    assert [p.name for p in found] == ["IMG0001", "IMG0002", "IMG0003"]
    for path in found:
        image, meta = read_image(path)
        assert image.shape == (40, 30) and meta["format"] in ("jpeg", "png", "tiff")
