"""SimpleITK: the ITK formats (MHA/MHD, NRRD, NIfTI) and the DICOM pixel fallback (GDCM inside).

The fallback decodes what pydicom has no codec for here (JPEG lossless, JPEG-LS, 12-bit JPEG extended without the
GPL pylibjpeg-libjpeg). Reading the original file through SimpleITK would not give stored values: ITK's
GDCMImageIO inverts MONOCHROME1 (GDCM ``ImageChangePhotometricInterpretation``: ``(2**BitsStored - 1) - v`` for
unsigned 16-bit, ``255 - v`` for 8-bit, ``~v`` for signed; that is the 1023 difference RG3_JLSL vs RG3_UNC shows),
applies rescale slope/intercept, and masks the decoded values to BitsStored bits (so a lossy 12-bit stream that
overshoots a 10-bit range wraps around: 1024 -> 0 in RG3_JPLY). So the fallback hands GDCM a minimal data set
instead: the first frame only, MONOCHROME2, no rescale, and BitsStored raised to the JPEG stream's sample
precision when that is larger. GDCM then returns the stored values, and overshoot is clipped here to the
BitsStored range (recorded in the steps).

ITK files are read in two steps: the header (``ImageFileReader.ReadImageInformation``) is checked first against the
pixel limit (:mod:`landmark_afl.io.limits`), the 2D rule and the bytes on disk (uncompressed MHA / MHD / NRRD /
NIfTI data at least the declared size, compressed data within the ratio bound), then the pixels are read.
"""

from __future__ import annotations

import math
import os
import re
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from landmark_afl.io.errors import ImageReadError, decoder_failure
from landmark_afl.io.limits import check_pixels, check_ratio
from landmark_afl.io.meta import new_meta
from landmark_afl.io.spacing import itk_spacing

ITK_FORMATS = {".mha": "mha", ".mhd": "mhd", ".nrrd": "nrrd", ".nhdr": "nrrd", ".nii": "nifti", ".nii.gz": "nifti"}

# JPEG start-of-frame markers (SOF0-SOF15 without DHT, JPG, DAC) and JPEG-LS SOF55
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}


def read_itk(path: Path, fmt: str, max_pixels: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a 2D MHA/MHD, NRRD or NIfTI file (a 3D image with a size-1 third axis is 2D).

    Args:
        path: the file.
        fmt: the format name for ``meta["format"]``.
        max_pixels: the per-call pixel limit, or None (:func:`landmark_afl.io.limits.max_pixels`).

    Returns:
        ``(image float32 [H, W], meta)``; spacing from the header, (x, y) turned into (row, col).
    """
    import SimpleITK as sitk

    name = fmt.upper()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except Exception as err:  # the SimpleITK boundary
        if "Unable to determine ImageIO reader" in str(err):
            raise ImageReadError(
                path,
                f"not an image this toolkit reads (SimpleITK finds no {name} reader for its content)",
                "check the file is the image you meant and that its extension matches its content",
            ) from err
        raise ImageReadError(
            path, f"SimpleITK cannot read its {name} header ({_first_line(err)})", "check the file is complete"
        ) from err
    size = tuple(int(v) for v in reader.GetSize())
    if len(size) > 3 or (len(size) == 3 and size[2] != 1):
        raise ImageReadError(
            path, f"it is a {len(size)}D volume of size {size}, not a 2D image", "export one 2D slice or projection"
        )
    check_pixels(path, (size[1], size[0]), max_pixels, f"the {name} header")
    per_pixel = sitk.GetArrayViewFromImage(
        sitk.Image([1] * len(size), reader.GetPixelID(), reader.GetNumberOfComponents())
    ).nbytes
    _check_stored_bytes(path, fmt, size, per_pixel)
    try:
        image = reader.Execute()
    except MemoryError as err:
        raise decoder_failure(path, "SimpleITK", err) from err
    except Exception as err:  # the SimpleITK boundary
        raise ImageReadError(
            path, f"SimpleITK cannot read it as {name} ({_first_line(err)})", "check the file is complete"
        ) from err
    meta = new_meta(path, fmt)
    arr = sitk.GetArrayViewFromImage(image)
    if arr.ndim == 3 + (image.GetNumberOfComponentsPerPixel() > 1):
        arr = arr[0]
    steps: list[str] = []
    if image.GetNumberOfComponentsPerPixel() > 1:
        arr = _to_grey(arr, steps, path)
        meta["photometric"] = "RGB"
    else:
        meta["photometric"] = "MONOCHROME2"
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(np.sum(out)) and not np.isfinite(out).all():
        bad = int(out.size - np.count_nonzero(np.isfinite(out)))
        raise ImageReadError(path, f"its pixel data holds {bad} non-finite values (NaN or infinity)")
    meta["spacing_mm"], meta["spacing_source"], meta["spacing_note"] = itk_spacing(image.GetSpacing())
    meta.update(
        original_shape=tuple(int(v) for v in out.shape),
        bits_stored=int(np.dtype(arr.dtype).itemsize * 8) if arr.dtype.kind in "ui" else None,
        decoder="SimpleITK",
        steps=steps,
    )
    if "Modality" in image.GetMetaDataKeys():
        meta["modality"] = image.GetMetaData("Modality").replace("MET_MOD_", "") or None
    return out, meta


def _check_stored_bytes(path: Path, fmt: str, size: tuple[int, ...], per_pixel: int) -> None:
    """The pixel bytes on disk against the header's size: truncated when uncompressed and short, or the ratio bound."""
    stored = stored_pixel_bytes(path, fmt)
    if stored is None:
        return
    n_bytes, compressed, where = stored
    expected = math.prod(size) * per_pixel
    dims = " x ".join(str(v) for v in size)
    if compressed:
        check_ratio(path, expected, n_bytes, f"{dims} image of {per_pixel} bytes per pixel")
    elif n_bytes < expected:
        raise ImageReadError(
            path,
            f"the pixel data is truncated: {where} holds {n_bytes} bytes where the header's {dims} pixels x "
            f"{per_pixel} bytes need {expected}",
            "copy the file (and its data file) again from its source",
        )


def stored_pixel_bytes(path: Path, fmt: str) -> tuple[int, bool, str] | None:
    """``(pixel bytes on disk, compressed?, where)`` from the header of an MHA/MHD, NRRD or NIfTI file; None when the
    layout is not one of the simple cases (a file list, ASCII encoding, ...).

    MHA / MHD: ``ElementDataFile`` LOCAL (the bytes after the header) or one file; ``CompressedData``. NRRD: the bytes
    after the blank line, or ``data file``; ``encoding`` raw / gzip / bzip2. NIfTI: ``.nii`` from ``vox_offset`` on,
    ``.nii.gz`` compressed as a whole.
    """
    try:
        with path.open("rb") as f:
            head = f.read(65536)
        total = path.stat().st_size
        if fmt in ("mha", "mhd"):
            return _meta_image_bytes(path, head, total)
        if fmt == "nrrd":
            return _nrrd_bytes(path, head, total)
        if fmt == "nifti":
            if path.name.lower().endswith(".gz"):
                return total, True, "the gzip file"
            return _nifti_bytes(head, total)
    except (OSError, ValueError, struct.error):
        return None
    return None


def _data_file(path: Path, name: str) -> tuple[int, bool, str] | None:
    if name.upper() == "LIST" or "%" in name or " " in name.strip():
        return None
    data = path.parent / name
    return (data.stat().st_size if data.is_file() else 0), False, f"its data file {name}"


def _meta_image_bytes(path: Path, head: bytes, total: int) -> tuple[int, bool, str] | None:
    match = re.search(rb"^ElementDataFile[ \t]*=[ \t]*([^\r\n]*?)[ \t\r]*$", head, re.MULTILINE)
    if match is None:
        return None
    compressed = re.search(rb"^CompressedData\s*=\s*True", head, re.MULTILINE | re.IGNORECASE) is not None
    name = match.group(1).decode("latin-1")
    if name.upper() != "LOCAL":
        found = _data_file(path, name)
        if found is None:
            return None
        return found[0], compressed, found[2]
    end = head.find(b"\n", match.end())
    offset = match.end() if end < 0 else end + 1
    return total - offset, compressed, "the file after its header"


def _nrrd_bytes(path: Path, head: bytes, total: int) -> tuple[int, bool, str] | None:
    end = head.find(b"\n\n")
    header = head if end < 0 else head[:end]
    fields = {}
    for line in header.decode("latin-1").splitlines()[1:]:
        key, sep, value = line.partition(":")
        if sep and not line.startswith("#"):
            fields[key.strip().lower()] = value.lstrip("=").strip()
    encoding = fields.get("encoding", "").lower()
    if encoding not in ("raw", "gzip", "gz", "bzip2", "bz2"):
        return None
    compressed = encoding != "raw"
    name = fields.get("data file") or fields.get("datafile")
    if name:
        found = _data_file(path, name)
        return None if found is None else (found[0], compressed, found[2])
    if end < 0:
        return None
    return total - (end + 2), compressed, "the file after its header"


def _nifti_bytes(head: bytes, total: int) -> tuple[int, bool, str] | None:
    for order in ("<", ">"):
        (sizeof_hdr,) = struct.unpack_from(order + "i", head, 0)
        if sizeof_hdr == 348:
            offset = int(struct.unpack_from(order + "f", head, 108)[0])
        elif sizeof_hdr == 540:
            (offset,) = struct.unpack_from(order + "q", head, 168)
        else:
            continue
        return total - offset, False, "the file after its header"
    return None


def _to_grey(arr: np.ndarray, steps: list[str], path: Path) -> np.ndarray:
    if arr.shape[-1] not in (3, 4):
        raise ImageReadError(
            path, f"it has {arr.shape[-1]} components per pixel (grey needs 1, 3 or 4)", "export a grey or RGB image"
        )
    steps.append("RGB -> grey: luma 0.299 R + 0.587 G + 0.114 B (BT.601)")
    return arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def jpeg_sof(frame: bytes) -> tuple[int, int, int] | None:
    """``(sample precision, rows, cols)`` from the start-of-frame segment of a JPEG / JPEG-LS stream, or None.

    Rows is 0 when the stream defines its height later (a DNL marker).
    """
    if frame[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 < len(frame):
        if frame[i] != 0xFF:
            return None
        marker = frame[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _SOF_MARKERS:
            if i + 9 > len(frame):
                return None
            precision, rows, cols = struct.unpack_from(">BHH", frame, i + 4)
            return int(precision), int(rows), int(cols)
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + int.from_bytes(frame[i + 2 : i + 4], "big")
    return None


def jpeg_precision(frame: bytes) -> int | None:
    """Sample precision from the start-of-frame segment of a JPEG / JPEG-LS stream, or None when not found."""
    sof = jpeg_sof(frame)
    return None if sof is None else sof[0]


def decode_dicom_with_sitk(ds: Any, path: Path) -> tuple[np.ndarray, list[str]]:
    """Stored values of the first frame of a compressed, single-sample DICOM data set, decoded by GDCM.

    Args:
        ds: the full pydicom data set (PixelData read).
        path: the file, for messages.

    Returns:
        ``(stored values [H, W] as int32/uint16, steps)``.

    Raises:
        ImageReadError: when GDCM cannot decode it either.
    """
    import SimpleITK as sitk
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate, get_frame
    from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

    n_frames = int(ds.get("NumberOfFrames") or 1)
    frame = get_frame(ds.PixelData, 0, number_of_frames=n_frames)
    bits_stored = int(ds.BitsStored)
    precision = jpeg_precision(frame)
    declared = bits_stored
    if precision is not None and bits_stored < precision <= int(ds.BitsAllocated):
        declared = precision

    mini = Dataset()
    mini.file_meta = FileMetaDataset()
    mini.file_meta.TransferSyntaxUID = ds.file_meta.TransferSyntaxUID
    mini.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    mini.file_meta.MediaStorageSOPInstanceUID = uid = generate_uid()
    mini.SOPClassUID, mini.SOPInstanceUID = SecondaryCaptureImageStorage, uid
    mini.Rows, mini.Columns, mini.SamplesPerPixel = int(ds.Rows), int(ds.Columns), 1
    mini.PhotometricInterpretation = "MONOCHROME2"
    mini.BitsAllocated, mini.BitsStored, mini.HighBit = int(ds.BitsAllocated), declared, declared - 1
    mini.PixelRepresentation = int(ds.get("PixelRepresentation") or 0)
    mini.PixelData = encapsulate([frame])
    mini["PixelData"].VR = "OB"

    fd, tmp = tempfile.mkstemp(suffix=".dcm", prefix="landmark_afl_")
    os.close(fd)
    try:
        mini.save_as(tmp, enforce_file_format=True)
        image = sitk.ReadImage(tmp)
    except MemoryError as err:
        raise decoder_failure(path, "SimpleITK (GDCM)", err) from err
    except Exception as err:  # the SimpleITK boundary
        raise ImageReadError(path, f"neither pydicom nor SimpleITK (GDCM) decodes it ({_first_line(err)})") from err
    finally:
        os.unlink(tmp)
    arr = np.squeeze(sitk.GetArrayFromImage(image))
    if arr.shape != (mini.Rows, mini.Columns):
        raise ImageReadError(
            path, f"SimpleITK decoded a {arr.shape} array where the header says {mini.Rows} x {mini.Columns}"
        )
    steps = [f"decode (SimpleITK/GDCM, first frame as stored values, stream precision {precision})"]
    if declared != bits_stored:
        if mini.PixelRepresentation == 0:
            lo, hi = 0, 2**bits_stored - 1
        else:
            lo, hi = -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
        n_out = int(np.count_nonzero((arr < lo) | (arr > hi)))
        if n_out:
            arr = np.clip(arr, lo, hi)
            steps.append(f"clip to the BitsStored={bits_stored} range [{lo}, {hi}] ({n_out} pixels of lossy overshoot)")
    return arr, steps
