"""Hostile but fair input: headers that lie about their size, non-finite values, absurd spacings, junk files.

Every file is built here (pydicom, Pillow, SimpleITK, numpy, raw bytes). The rule under test: ``read_image`` either
returns a finite float32 image or raises :class:`ImageReadError` naming the file, and never allocates what a header
merely claims.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from landmark_afl.io import ImageReadError, read_image
from landmark_afl.io.limits import DEFAULT_MAX_PIXELS, ENV_MAX_PIXELS, max_pixels
from tests.io.synthetic import write_dicom, write_j2k_dicom

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")  # pydicom on the hostile tags
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"  # bundled; never get_testdata_files (hangs)
RNG = np.random.default_rng(11)
SMALL = RNG.integers(0, 4096, size=(6, 5), dtype=np.uint16)
RAMP = (np.arange(48 * 40, dtype=np.uint16).reshape(48, 40) * 3) % 4096  # big enough for OpenJPEG's 6 levels


def png_bytes(width: int, height: int, *, colour_type: int = 0, idat: bytes = b"", plte: bytes | None = None) -> bytes:
    """A PNG written chunk by chunk, so that its IHDR may claim any size (8-bit samples)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
    if plte is not None:
        out += chunk(b"PLTE", plte)
    return out + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def mha_bytes(dims: tuple[int, ...], data: bytes) -> bytes:
    header = f"ObjectType = Image\nNDims = {len(dims)}\nDimSize = {' '.join(map(str, dims))}\n"
    return (header + "ElementType = MET_USHORT\nElementDataFile = LOCAL\n").encode() + data


def patch_value(path: Path, tag: bytes, vr: bytes, new: bytes) -> Path:
    """Overwrite an explicit-VR element's value in place (pydicom refuses to write e.g. IS "1A" itself)."""
    raw = path.read_bytes()
    start = raw.index(tag + vr) + 8
    length = struct.unpack_from("<H", raw, start - 2)[0]
    assert len(new) == length, (new, length)
    path.write_bytes(raw[:start] + new + raw[start + length :])
    return path


def error_of(path: Path, **kwargs) -> ImageReadError:
    with pytest.raises(ImageReadError) as info:
        read_image(path, **kwargs)
    assert path.name in str(info.value)
    return info.value


# ------------------------------------------------------------------------------------ declared sizes and limits
def test_dicom_claiming_60000_squared_is_refused_before_decoding(tmp_path):
    path = write_dicom(tmp_path / "bomb.dcm", np.zeros((2, 2), np.uint16), Rows=60000, Columns=60000)
    err = error_of(path)
    assert "60000 x 60000" in err.reason and ENV_MAX_PIXELS in str(err)


def test_dicom_pixel_data_shorter_than_the_header_says(tmp_path):
    path = write_dicom(tmp_path / "short.dcm", np.zeros((10, 10), np.uint16), Rows=1000, Columns=1000)
    err = error_of(path)
    assert "truncated" in err.reason and "200 bytes" in err.reason and "2000000" in err.reason


def test_dicom_frames_claimed_but_absent(tmp_path):
    path = write_dicom(tmp_path / "frames.dcm", SMALL, NumberOfFrames=100000)
    err = error_of(path)
    assert "truncated" in err.reason and "NumberOfFrames" in err.reason


def test_compressed_pixel_data_implausibly_small_for_the_header(tmp_path):
    path = write_j2k_dicom(tmp_path / "j2k.dcm", RAMP, Rows=20000, Columns=20000)  # 800 MB from ~3 kB
    for target in (None, (256, 256)):
        err = error_of(path, target_size=target)
        assert "implausibly small" in err.reason and "20000 x 20000" in err.reason


def _huge_streams() -> dict[str, bytes]:
    """A JPEG 2000 codestream and a baseline JPEG of RAMP whose own headers (SIZ, SOF0) claim 60000 x 60000."""
    import io

    from openjpeg.utils import encode_array

    j2k = bytearray(encode_array(RAMP, bits_stored=12))
    struct.pack_into(">II", j2k, 8, 60000, 60000)  # SIZ Xsiz, Ysiz
    buffer = io.BytesIO()
    Image.fromarray((RAMP // 16).astype(np.uint8)).save(buffer, format="JPEG")
    jpeg = bytearray(buffer.getvalue())
    sof = jpeg.index(b"\xff\xc0")
    struct.pack_into(">HH", jpeg, sof + 5, 60000, 60000)  # SOF0 lines, samples per line
    return {"j2k": bytes(j2k), "jpeg": bytes(jpeg)}


@pytest.mark.parametrize("kind", ["j2k", "jpeg"])
def test_compressed_stream_claiming_more_than_its_header(tmp_path, kind):
    """Rows x Columns are small; the decoders would allocate what the stream's own header says."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit

    stream = _huge_streams()[kind]
    path = write_dicom(tmp_path / f"{kind}.dcm", RAMP if kind == "j2k" else RAMP // 16, bits_stored=12)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless if kind == "j2k" else JPEGBaseline8Bit
    if kind == "jpeg":
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([stream + b"\0" * (len(stream) % 2)])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    assert "60000 x 60000" in error_of(path).reason
    if kind == "j2k":
        raw = tmp_path / "huge.j2k"
        raw.write_bytes(stream)
        assert "60000 x 60000" in error_of(raw, target_size=(16, 16)).reason


def test_pixel_limit_keyword_and_environment(tmp_path, monkeypatch):
    dcm = write_dicom(tmp_path / "a.dcm", SMALL)
    png = tmp_path / "a.png"
    Image.fromarray(SMALL.astype(np.uint8)).save(png)
    assert max_pixels() == DEFAULT_MAX_PIXELS == 900_000_000
    for path in (dcm, png):
        assert read_image(path, max_pixels=30)[0].shape == (6, 5)
        assert "more than the limit of 29 pixels" in error_of(path, max_pixels=29).reason
        monkeypatch.setenv(ENV_MAX_PIXELS, "29")
        assert ENV_MAX_PIXELS in str(error_of(path))
        monkeypatch.setenv(ENV_MAX_PIXELS, "3e1")
        assert read_image(path)[0].shape == (6, 5)
        monkeypatch.delenv(ENV_MAX_PIXELS)
    monkeypatch.setenv(ENV_MAX_PIXELS, "lots")
    with pytest.raises(ValueError, match=ENV_MAX_PIXELS):
        read_image(dcm)
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(dcm, max_pixels=0)


@pytest.mark.parametrize("size", [60000, 20000])
def test_png_bomb_is_an_image_read_error(tmp_path, size):
    """60000^2 and 20000^2 are past Pillow's own decompression-bomb limit (2 x 89 M pixels) too."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(size, size, idat=zlib.compress(b"\0" * 100)))
    err = error_of(path)
    assert "decompression-bomb limit" in err.reason and f"{size * size} pixels" in err.reason


def test_itk_header_claiming_a_huge_image_or_volume(tmp_path):
    flat = tmp_path / "bomb.mha"
    flat.write_bytes(mha_bytes((60000, 60000), b"\0" * 100))
    assert "60000 x 60000" in error_of(flat).reason
    volume = tmp_path / "vol.mha"
    volume.write_bytes(mha_bytes((4000, 4000, 4000), b"\0" * 100))
    assert "3D volume" in error_of(volume).reason
    short = tmp_path / "short.mha"
    short.write_bytes(mha_bytes((100, 100), b"\0" * 100))
    err = error_of(short)
    assert "truncated" in err.reason and "20000" in err.reason


def test_peak_memory_of_huge_headers_stays_small(tmp_path):
    """A subprocess reads huge-header DICOM, PNG and MHA; its peak RSS (imports included) stays under 100 MB.

    The peak is the kernel's VmHWM of the child's own memory (``ru_maxrss`` where /proc is absent): on Linux a child's
    ``ru_maxrss`` starts at the parent's peak, which is pytest's here. SimpleITK's import alone is ~90 MB, so the
    MHA case is measured as the rise over the peak after that import.
    """
    write_dicom(tmp_path / "bomb.dcm", np.zeros((2, 2), np.uint16), Rows=60000, Columns=60000)
    write_dicom(tmp_path / "frames.dcm", np.zeros((2, 2), np.uint16), Rows=30000, Columns=30000, NumberOfFrames=1)
    (tmp_path / "bomb.png").write_bytes(png_bytes(60000, 60000, idat=zlib.compress(b"\0" * 100)))
    (tmp_path / "bomb.mha").write_bytes(mha_bytes((60000, 60000), b"\0" * 100))
    code = textwrap.dedent(
        f"""
        import json, resource, sys
        from pathlib import Path
        from landmark_afl.io import ImageReadError, read_image
        def rss():
            status = Path("/proc/self/status")
            if status.exists():
                line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
                return int(line.split()[1]) / 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out, tmp = {{}}, Path({str(tmp_path)!r})
        for name in ("bomb.dcm", "frames.dcm", "bomb.png"):
            try:
                read_image(tmp / name)
            except ImageReadError:
                pass
        out["dicom_png"] = rss()
        import SimpleITK
        before = rss()
        try:
            read_image(tmp / "bomb.mha")
        except ImageReadError:
            pass
        out["mha_rise"] = rss() - before
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2]
    )
    assert proc.returncode == 0, proc.stderr
    peak = json.loads(proc.stdout.strip().splitlines()[-1])
    assert peak["dicom_png"] < 100 and peak["mha_rise"] < 100, peak


# --------------------------------------------------------------------------------- decoder failures are wrapped
def test_memory_error_in_each_decoder_becomes_image_read_error(tmp_path, monkeypatch):
    import SimpleITK as sitk
    from PIL import ImageFile
    from pydicom.pixels.decoders.base import Decoder

    def no_memory(*args, **kwargs):
        raise MemoryError("simulated")

    dcm = write_dicom(tmp_path / "a.dcm", SMALL)
    png = tmp_path / "a.png"
    Image.fromarray(SMALL.astype(np.uint8)).save(png)
    mha = tmp_path / "a.mha"
    sitk.WriteImage(sitk.GetImageFromArray(SMALL), str(mha))
    for path, owner, name in ((dcm, Decoder, "as_array"), (png, ImageFile.ImageFile, "load"),
                              (mha, sitk.ImageFileReader, "Execute")):  # fmt: skip
        with monkeypatch.context() as m:
            m.setattr(owner, name, no_memory)
            err = error_of(path)
        assert isinstance(err.__cause__, MemoryError) and "memory" in err.reason


@pytest.mark.parametrize("value", [b"1A", b"ab"])
def test_number_of_frames_that_is_text(tmp_path, value):
    path = write_dicom(tmp_path / "frames.dcm", SMALL, NumberOfFrames="7")
    patch_value(path, b"\x28\x00\x08\x00", b"IS", value)
    err = error_of(path)
    assert "NumberOfFrames" in err.reason and repr(value.decode()) in err.reason


def test_pydicom_bad_vr_file():
    path = PYDICOM_FILES / "badVR.dcm"
    if not path.exists():
        pytest.skip("pydicom's badVR.dcm is not bundled with this pydicom")
    assert "NumberOfFrames" in error_of(path).reason


def test_palette_dicom_without_its_colour_table(tmp_path):
    path = write_dicom(tmp_path / "pal.dcm", SMALL % 256, photometric="PALETTE COLOR", bits_stored=8)
    err = error_of(path)
    assert "palette" in err.reason.lower() and err.__cause__ is not None


def test_palette_png_without_plte(tmp_path):
    path = tmp_path / "pal.png"
    path.write_bytes(png_bytes(4, 3, colour_type=3, idat=zlib.compress(b"\0" * 15)))
    assert "PLTE" in error_of(path).reason


# ------------------------------------------------------------------------------------------- non-finite values
@pytest.mark.parametrize(
    "tags, named",
    [
        ({"RescaleSlope": "NaN"}, "RescaleSlope is NaN"),
        ({"RescaleIntercept": "-inf"}, "RescaleIntercept is -inf"),
        ({"RescaleSlope": "0"}, "RescaleSlope is 0"),
        ({"RescaleSlope": "1e300"}, "RescaleSlope"),
        ({"RescaleSlope": "1e35"}, "RescaleSlope"),  # pixels finite in float32, the inversion range is not
    ],
)
def test_rescale_values_that_make_non_finite_pixels(tmp_path, tags, named):
    path = write_dicom(tmp_path / "lut.dcm", SMALL, photometric="MONOCHROME1", **tags)
    assert named in error_of(path).reason


def test_float_pixel_data_with_nan(tmp_path):
    path = write_dicom(tmp_path / "float.dcm", SMALL)
    ds = pydicom.dcmread(path)
    values = SMALL.astype(np.float32)
    values[1, 2] = np.nan
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated = 32
    ds.FloatPixelData = values.tobytes()
    ds.save_as(path)
    assert "non-finite" in error_of(path).reason


# ---------------------------------------------------------------------------------------------- spacing
@pytest.mark.parametrize("bad", [[1e-30, 1e-30], [0.1, 50.0], [1e-4, 1e-4]])
def test_absurd_pixel_spacing_is_not_used(tmp_path, bad):
    image, meta = read_image(write_dicom(tmp_path / "s.dcm", SMALL, PixelSpacing=bad))
    assert meta["spacing_mm"] is None and meta["spacing_source"] == "none"
    assert "implausible" in meta["spacing_note"] and "0.001-10 mm" in meta["spacing_note"]
    _, meta = read_image(write_dicom(tmp_path / "t.dcm", SMALL, PixelSpacing=bad, ImagerPixelSpacing=[0.1, 0.1]))
    assert meta["spacing_mm"] == (0.1, 0.1) and meta["spacing_source"] == "ImagerPixelSpacing"


def test_absurd_magnification_and_itk_spacing(tmp_path):
    import SimpleITK as sitk

    path = write_dicom(
        tmp_path / "m.dcm", SMALL, ImagerPixelSpacing=[0.1, 0.1], EstimatedRadiographicMagnificationFactor=1e-20
    )
    _, meta = read_image(path)
    assert meta["spacing_mm"] == (0.1, 0.1) and meta["spacing_source"] == "ImagerPixelSpacing"
    assert "implausible" in meta["spacing_note"] and "factor was not applied" in meta["spacing_note"]
    itk_image = sitk.GetImageFromArray(SMALL)
    itk_image.SetSpacing((1e-30, 1e-30))
    sitk.WriteImage(itk_image, str(tmp_path / "a.mha"))
    _, meta = read_image(tmp_path / "a.mha")
    assert meta["spacing_mm"] is None and "implausible" in meta["spacing_note"]


# ---------------------------------------------------------------------------------------------- messages
@pytest.mark.parametrize("name", ["empty.dcm", "empty.png", "empty.mha", "empty.jp2", "IM0001"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    assert "is empty (0 bytes)" in error_of(path).reason


@pytest.mark.parametrize("name", ["junk.dcm", "junk.png", "junk.jpg", "junk.mha", "junk.jp2", "junk.tif", "IM0001"])
def test_random_bytes(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(RNG.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    err = error_of(path)
    assert err.reason.startswith("not an image this toolkit reads (") and err.fix


def _codestream() -> bytes:
    from openjpeg.utils import encode_array

    return encode_array(RAMP, bits_stored=12)


@pytest.mark.parametrize("keep", [0.5, 0.9, 60])
def test_truncated_jpeg2000(tmp_path, keep):
    codestream = _codestream()
    cut = codestream[: int(keep * len(codestream)) if keep < 1 else keep]
    raw = tmp_path / "cut.j2k"
    raw.write_bytes(cut)
    dcm = write_j2k_dicom(tmp_path / "cut.dcm", RAMP, codestream=cut + b"\0" * (len(cut) % 2))
    for path in (raw, dcm):
        for target in (None, (4, 4)):
            reason = error_of(path, target_size=target).reason
            assert "truncated" in reason and "codestream" in reason and "header-only" not in reason


def test_complete_jpeg2000_still_reads(tmp_path):
    codestream = _codestream()
    raw = tmp_path / "ok.j2k"
    raw.write_bytes(codestream)
    dcm = write_j2k_dicom(tmp_path / "ok.dcm", RAMP, codestream=codestream)
    for path in (raw, dcm):
        for target in (None, (12, 10)):
            image, meta = read_image(path, target_size=target)
            assert image.shape == (48, 40) if target is None else meta["decode_scale"] == 4
            if target is None:
                np.testing.assert_array_equal(image, RAMP)
