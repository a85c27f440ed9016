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
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from landmark_afl.io.errors import ImageReadError
from landmark_afl.io.meta import new_meta
from landmark_afl.io.spacing import itk_spacing

ITK_FORMATS = {".mha": "mha", ".mhd": "mhd", ".nrrd": "nrrd", ".nhdr": "nrrd", ".nii": "nifti", ".nii.gz": "nifti"}

# JPEG start-of-frame markers (SOF0-SOF15 without DHT, JPG, DAC) and JPEG-LS SOF55
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}


def read_itk(path: Path, fmt: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a 2D MHA/MHD, NRRD or NIfTI file (a 3D image with a size-1 third axis is 2D).

    Args:
        path: the file.
        fmt: the format name for ``meta["format"]``.

    Returns:
        ``(image float32 [H, W], meta)``; spacing from the header, (x, y) turned into (row, col).
    """
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ImageReadError(
            path, f"SimpleITK cannot read it as {fmt.upper()} ({_first_line(err)})", "check the file is complete"
        ) from err
    size = image.GetSize()
    if len(size) > 3 or (len(size) == 3 and size[2] != 1):
        raise ImageReadError(
            path, f"it is a {len(size)}D volume of size {size}, not a 2D image", "export one 2D slice or projection"
        )
    meta = new_meta(path, fmt)
    arr = sitk.GetArrayViewFromImage(image)
    if arr.ndim == 3 + (image.GetNumberOfComponentsPerPixel() > 1):
        arr = arr[0]
    steps: list[str] = []
    if image.GetNumberOfComponentsPerPixel() > 1:
        arr = _to_grey(arr, steps)
        meta["photometric"] = "RGB"
    else:
        meta["photometric"] = "MONOCHROME2"
    out = np.ascontiguousarray(arr, dtype=np.float32)
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


def _to_grey(arr: np.ndarray, steps: list[str]) -> np.ndarray:
    if arr.shape[-1] not in (3, 4):
        raise ValueError(f"cannot turn {arr.shape[-1]} components per pixel into grey")
    steps.append("RGB -> grey: luma 0.299 R + 0.587 G + 0.114 B (BT.601)")
    return arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def jpeg_precision(frame: bytes) -> int | None:
    """Sample precision from the start-of-frame segment of a JPEG / JPEG-LS stream, or None when not found."""
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
            return int(frame[i + 4])
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + int.from_bytes(frame[i + 2 : i + 4], "big")
    return None


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
    except RuntimeError as err:
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
