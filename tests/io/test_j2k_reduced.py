"""JPEG 2000 decoded at the model's resolution: ``read_image(path, target_size=...)`` and ``prepare_image``.

References: an area downsample (block mean) of the full decode for the pixels, the uncompressed twin of the file
for the landmark geometry, pydicom's decode for level 0. Synthetic files run everywhere; the real NEMA / pydicom
files of ../shared/data are skipped when absent.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from landmark_afl.data.letterbox import to_image_coords, to_input_coords
from landmark_afl.data.training import prepare_image
from landmark_afl.io import META_KEYS, find_images, j2k, read_image
from tests.conftest import shared_path
from tests.io.blobs import BLOBS, blob_centroids, blob_image, identity, relative_errors
from tests.io.synthetic import write_dicom, write_j2k_dicom

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"  # bundled; never get_testdata_files (hangs)


@pytest.fixture(scope="module")
def blob_files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("j2k")
    img = blob_image()
    tags = {"PixelSpacing": [0.1, 0.1]}
    return {
        "unc": write_dicom(tmp / "unc.dcm", img, **tags),
        "j2k": write_j2k_dicom(tmp / "j2k.dcm", img, **tags),
        "j2k_lossy": write_j2k_dicom(tmp / "j2k_lossy.dcm", img, lossy=True, **tags),
    }


# ---------------------------------------------------------------------------------------------- level choice
def test_choose_level_examples():
    assert j2k.choose_level((1760, 1760), (512, 512), 5) == 1  # 880 covers 512, 440 does not
    assert j2k.choose_level((1760, 1760), (256, 256), 5) == 2
    assert j2k.choose_level((1760, 1760), (64, 64), 5) == 4  # 110 >= 64 > 55
    assert j2k.choose_level((1760, 1760), (64, 64), 3) == 3  # capped by the decomposition levels
    assert j2k.choose_level((300, 300), (512, 512), 5) == 0  # the target is larger: no reduction
    assert j2k.choose_level((2140, 1760), (256, 256), 5) == 3  # 268x220: W limits the letterbox, 220 < 256 is fine


@pytest.mark.parametrize("shape", [(1760, 1760), (2140, 1760), (1955, 1841), (1001, 1203), (4664, 3064)])
@pytest.mark.parametrize("target", [(256, 256), (512, 512), (200, 320), (128, 96)])
def test_chosen_level_never_upsamples_and_is_coarsest(shape, target):
    r = j2k.choose_level(shape, target, 10)
    h, w = j2k.reduced_shape(shape, r)
    assert min(target[0] / h, target[1] / w) <= 1.0
    h2, w2 = j2k.reduced_shape(shape, r + 1)
    assert min(target[0] / h2, target[1] / w2) > 1.0


# ------------------------------------------------------------------------------------- codestream and decode
def test_parse_header_and_level0_exact():
    signed = (np.arange(60 * 81).reshape(60, 81) % 3000 - 1500).astype(np.int16)
    from openjpeg.utils import encode_array

    cs = encode_array(signed, bits_stored=12)
    info = j2k.parse_header(cs)
    assert (info.width, info.height, info.precision, info.signed, info.levels) == (81, 60, 12, True, 5)
    np.testing.assert_array_equal(j2k.decode_level(cs, info, 0), signed)  # Pillow's offset and shift undone
    reduced = j2k.decode_level(cs, info, 2)
    assert reduced.shape == (15, 21)  # ceil(60 / 4), ceil(81 / 4): Pillow alone would ask for 21 -> 20 and fail


def test_recentre_moves_samples_to_block_centres():
    # a ramp sampled at f*i (OpenJPEG's position) must become the ramp at f*i + (f-1)/2 (the block centre)
    f = 8
    ramp = np.tile(np.arange(10, dtype=np.float32) * f, (3, 1))
    out = j2k.recentre(ramp, 3)
    np.testing.assert_allclose(out[:, :-1], ramp[:, :-1] + (f - 1) / 2, atol=1e-5)


# ----------------------------------------------------------------------------------------- synthetic DICOM
def test_read_image_without_target_is_unchanged(blob_files):
    ref, ref_meta = read_image(blob_files["unc"])
    image, meta = read_image(blob_files["j2k"])
    np.testing.assert_array_equal(image, ref)
    assert meta["decode_scale"] == 1 and meta["decode_note"] is None and meta["decoder"] == "pydicom"
    assert meta["spacing_mm"] == ref_meta["spacing_mm"] == (0.1, 0.1)
    assert set(META_KEYS) <= set(meta)


@pytest.mark.parametrize(("target", "f"), [((512, 512), 2), ((256, 256), 4), ((128, 128), 8)])
@pytest.mark.parametrize("kind", ["j2k", "j2k_lossy"])
def test_reduced_dicom_close_to_area_downsample(blob_files, kind, target, f):
    full, _ = read_image(blob_files[kind])
    image, meta = read_image(blob_files[kind], target_size=target)
    assert meta["decode_scale"] == f
    assert image.shape == j2k.reduced_shape(full.shape, int(np.log2(f)))
    assert meta["original_shape"] == full.shape
    assert meta["spacing_mm"] == (0.1 * f, 0.1 * f)
    assert meta["decoder"].startswith("Pillow-OpenJPEG")
    assert any("resolution level" in s for s in meta["steps"]) and any("re-centre" in s for s in meta["steps"])
    mean, p99 = relative_errors(image, full, f)
    assert mean < 0.002 and p99 < 0.01, (mean, p99)


def test_pixel_semantics_monochrome1_rescale_signed(tmp_path):
    """MONOCHROME1 inversion, rescale and signed 12-bit samples give the same values as the full decode."""
    img = blob_image((300, 401), dtype=np.int16, base=-1500.0, ramp=200.0)  # -1500 .. 1700: 12-bit signed
    tags = {"PixelRepresentation": 1, "RescaleSlope": "0.5", "RescaleIntercept": "-100"}
    path = write_j2k_dicom(tmp_path / "m1.dcm", img, photometric="MONOCHROME1", **tags)
    full, full_meta = read_image(path)
    image, meta = read_image(path, target_size=(64, 64))
    assert meta["decode_scale"] == 4
    assert [s.split(":")[0] for s in meta["steps"][-2:]] == [s.split(":")[0] for s in full_meta["steps"][-2:]]
    assert meta["voi_window"] == full_meta["voi_window"]
    mean, p99 = relative_errors(image, full, 4)
    assert mean < 0.003 and p99 < 0.02, (mean, p99)


def test_landmarks_map_back_to_the_same_original_coordinates(blob_files):
    """Blob centroids through prepare_image, reduced J2K vs the uncompressed twin: within 0.5 original px."""

    for size in [(256, 256), (200, 320), (128, 128)]:
        full = prepare_image(blob_files["unc"], identity, size, None)
        reduced = prepare_image(blob_files["j2k"], identity, size, None)
        assert reduced.shape == full.shape == (1001, 1203)
        np.testing.assert_allclose(reduced.spacing, full.spacing)  # original spacing, not the decoded pixels'
        a, b = blob_centroids(full), blob_centroids(reduced)
        assert np.abs(a - np.array(BLOBS)).max() < 0.25
        assert np.abs(b - a).max() < 0.5, (size, b - a)
        # the two letterboxes differ only by the ragged last block: the reduced image spans f * ceil(n / f) >= n
        # original pixels, so the far corner lands at most that excess (+ rounding) apart; bound for f <= 8:
        corners = np.array([[0.0, 0.0], [1202.0, 1000.0]])
        back = to_image_coords(to_input_coords(corners, full.scale), reduced.scale)
        assert np.abs(back[0] - corners[0]).max() < 0.05
        assert np.all(np.abs(back[1] - corners[1]) <= np.array([8 - 1203 % 8, 8 - 1001 % 8]) + 1.0)


def test_prepare_image_keeps_fallback_spacing(tmp_path):
    img = blob_image((200, 300))
    path = write_j2k_dicom(tmp_path / "nospacing.dcm", img)
    prep = prepare_image(path, identity, (64, 64), (0.2, 0.3))
    assert prep.spacing_source == "dataset.yaml"
    np.testing.assert_allclose(prep.spacing, [0.2, 0.3])
    assert prep.shape == (200, 300)


# -------------------------------------------------------------------------------------------- fallbacks
def test_target_larger_than_level1_decodes_in_full(blob_files):
    image, meta = read_image(blob_files["j2k"], target_size=(900, 900))
    assert meta["decode_scale"] == 1 and image.shape == (1001, 1203)
    assert meta["decode_note"].startswith("full resolution")


def test_sign_mismatch_falls_back(tmp_path):
    img = blob_image((100, 120))
    from openjpeg.utils import encode_array

    unsigned_cs = encode_array(img, bits_stored=12)
    path = write_j2k_dicom(tmp_path / "mismatch.dcm", img, codestream=unsigned_cs, PixelRepresentation=1)
    image, meta = read_image(path, target_size=(32, 32))
    assert meta["decode_scale"] == 1 and meta["decoder"] == "pydicom"
    assert "sign correction" in meta["decode_note"] and meta["steps"][0] == meta["decode_note"]
    np.testing.assert_array_equal(image, read_image(path)[0])


def test_modality_lut_sequence_falls_back(tmp_path):
    from pydicom.dataset import Dataset

    img = blob_image((100, 120))
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.ModalityLUTType = "US"
    item.add_new(0x00283006, "US", list(range(4096)))  # LUT Data
    path = write_j2k_dicom(tmp_path / "mlut.dcm", img, ModalityLUTSequence=[item])
    _, meta = read_image(path, target_size=(32, 32))
    assert meta["decode_scale"] == 1 and "Modality LUT Sequence" in meta["decode_note"]


def test_decoder_error_backs_off_then_falls_back(blob_files, monkeypatch):
    real = j2k.decode_level

    def fail_above(limit):
        def decode(data, info, level):
            if level > limit:
                raise j2k.ReducedDecodeUnsupported(f"simulated failure at level {level}")
            return real(data, info, level)

        return decode

    monkeypatch.setattr(j2k, "decode_level", fail_above(2))  # level 3 wanted: one level finer works
    _, meta = read_image(blob_files["j2k"], target_size=(128, 128))
    assert meta["decode_scale"] == 4 and "backed off to level 2" in meta["steps"][0]
    monkeypatch.setattr(j2k, "decode_level", fail_above(0))  # nothing reduced decodes: full decode, reason kept
    image, meta = read_image(blob_files["j2k"], target_size=(128, 128))
    assert meta["decode_scale"] == 1 and meta["decoder"] == "pydicom" and image.shape == (1001, 1203)
    assert "simulated failure at level 3" in meta["decode_note"]


def test_other_formats_ignore_target(tmp_path, blob_files):
    png = tmp_path / "x.png"
    Image.fromarray(blob_image((90, 70), dtype=np.uint8, base=10, peak=200)).save(png)
    for path in (png, blob_files["unc"]):
        a, meta_a = read_image(path)
        b, meta_b = read_image(path, target_size=(16, 16))
        np.testing.assert_array_equal(a, b)
        assert meta_b["decode_scale"] == 1 and meta_b["decode_note"] is None


@pytest.mark.parametrize("bad", [(0, 5), (5,), "512", (5.0, 5), (True, 4)])
def test_bad_target_size(blob_files, bad):
    with pytest.raises(ValueError, match="target_size"):
        read_image(blob_files["j2k"], target_size=bad)


# ------------------------------------------------------------------------------------------ .jp2 / .j2k files
def test_jp2_and_j2k_files(tmp_path):
    from openjpeg.utils import encode_array

    img = blob_image((301, 405))
    jp2 = tmp_path / "a.jp2"
    Image.fromarray(img).save(jp2, num_resolutions=4)  # Pillow: 16-bit precision, 3 levels
    j2c = tmp_path / "b.j2k"
    j2c.write_bytes(encode_array(img, bits_stored=12))  # raw codestream, 12-bit: Pillow's << 4 must be undone
    assert find_images(tmp_path) == [jp2, j2c]
    for path, levels in ((jp2, 3), (j2c, 5)):
        full, meta = read_image(path)
        np.testing.assert_array_equal(full, img)
        assert meta["format"] == "jpeg2000" and meta["decode_scale"] == 1
        image, meta = read_image(path, target_size=(16, 16))
        f = 1 << min(levels, 4)
        assert meta["decode_scale"] == f and meta["original_shape"] == (301, 405) and meta["spacing_mm"] is None
        mean, p99 = relative_errors(image, full, f)
        assert mean < 0.01 and p99 < 0.05, (path.name, mean, p99)


def test_colour_jp2_uses_the_generic_path(tmp_path):
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[..., 0] = 200
    path = tmp_path / "c.jp2"
    Image.fromarray(rgb).save(path)
    image, meta = read_image(path, target_size=(8, 8))
    assert image.shape == (40, 50) and meta["decode_scale"] == 1
    assert "components" in meta["decode_note"]
    np.testing.assert_allclose(image, 0.299 * 200, rtol=1e-5)


# -------------------------------------------------------------------------------------------- real files
def _wg04(name: str) -> Path:
    return shared_path("dicom", "wg04_xray", f"{name}.dcm")


@pytest.mark.parametrize(("target", "f"), [((512, 512), 2), ((256, 256), 4)])
def test_rg3_j2kr_reduced(target, f):
    path = _wg04("RG3_J2KR")
    full, full_meta = read_image(path)
    np.testing.assert_array_equal(full, read_image(_wg04("RG3_UNC"))[0])  # the full path is still exact
    image, meta = read_image(path, target_size=target)
    assert meta["decode_scale"] == f and image.shape == (1760 // f, 1760 // f)
    assert meta["original_shape"] == (1760, 1760) and meta["photometric"] == "MONOCHROME1"
    assert any(s.startswith("invert") for s in meta["steps"])
    mean, p99 = relative_errors(image, full, f)
    assert mean < 0.005 and p99 < 0.03, (mean, p99)


def test_rg3_prepare_image_matches_uncompressed():
    size = (256, 256)
    unc = prepare_image(_wg04("RG3_UNC"), identity, size, None)
    red = prepare_image(_wg04("RG3_J2KR"), identity, size, None)
    np.testing.assert_allclose(red.scale, unc.scale)  # 256/440/4 == 256/1760
    assert red.shape == unc.shape == (1760, 1760)
    err = np.abs(red.image - unc.image)
    assert err.mean() / np.ptp(unc.image) < 0.005


@pytest.mark.parametrize(
    "rel",
    [
        "wg04_xray/RG1_J2KI.dcm",  # 1955 x 1841: ceil sizes at every level
        "pydicom_edge/693_J2KI.dcm",  # signed, 14 bits stored in a 16-bit codestream
        "pydicom_edge/JPEG2000.dcm",  # signed, NumberOfFrames 1
    ],
)
def test_real_level0_equals_pydicom(rel):
    path = shared_path("dicom", *rel.split("/"))
    ds = pydicom.dcmread(path)
    from landmark_afl.io.dicom import _first_frame

    frame = _first_frame(ds)
    info = j2k.parse_header(frame)
    np.testing.assert_array_equal(j2k.decode_level(frame, info, 0), ds.pixel_array.astype(np.float32))
    full, _ = read_image(path)
    image, meta = read_image(path, target_size=(64, 64))
    f = meta["decode_scale"]
    assert f > 1
    mean, _ = relative_errors(image, full, f)
    assert mean < 0.01


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        (("shared", "xray_misc/JPEG2KLossless_1s_1f_u_16_16.dcm"), "Pillow/OpenJPEG failed"),  # 11 levels
        (("pydicom", "J2K_pixelrep_mismatch.dcm"), "sign correction"),
        (("pydicom", "examples_jpeg2k.dcm"), "colour image"),
    ],
)
def test_real_fallbacks(where, reason):
    source, rel = where
    path = shared_path("dicom", *rel.split("/")) if source == "shared" else PYDICOM_FILES / rel
    if not path.exists():
        pytest.skip(f"{path} not found")
    full, _ = read_image(path)
    image, meta = read_image(path, target_size=(64, 64))
    assert meta["decode_scale"] == 1 and reason in meta["decode_note"]
    np.testing.assert_array_equal(image, full)


def test_pillow_still_sizes_reduced_images_by_rounding():
    """Documents why decode_level overrides the size: if Pillow fixes it, the workaround can go."""
    from openjpeg.utils import encode_array

    cs = encode_array(np.zeros((40, 37), np.uint16) + 7, bits_stored=12)
    with Image.open(io.BytesIO(cs)) as im:
        im.reduce = 2
        with pytest.raises(OSError):
            im.load()  # 37 / 4 -> Pillow 9, OpenJPEG 10
    info = j2k.parse_header(cs)
    assert j2k.decode_level(cs, info, 2).shape == (10, 10)
