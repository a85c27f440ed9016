"""Small DICOM files written with pydicom for the io tests (independent of the reader under test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    preamble: bool = True,
    **tags: object,
) -> Path:
    """Write ``pixels`` (uint16 [H, W]) as an uncompressed DX DICOM with the extra ``tags`` (keyword=value)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DX_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = uid = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = DX_STORAGE, uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "DX"
    ds.PatientName, ds.PatientID = "Doe^Jane", "SECRET-ID"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.astype("<u2").tobytes()
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, implicit_vr=False, little_endian=True)
    return path


def write_j2k_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    bits_stored: int = 12,
    lossy: bool = False,
    codestream: bytes | None = None,
    **tags: object,
) -> Path:
    """Write ``pixels`` as a JPEG 2000 DICOM (lossless .90, or lossy .91 at 10:1) encoded by pylibjpeg-openjpeg.

    The header is :func:`write_dicom`'s (``tags`` included, e.g. ``PixelRepresentation=1`` for int16 pixels);
    ``codestream`` replaces the encoded frame (to pair a header with a mismatching codestream).
    """
    import pydicom
    from openjpeg.utils import encode_array
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000, JPEG2000Lossless

    write_dicom(path, pixels, bits_stored=bits_stored, **tags)
    ds = pydicom.dcmread(path)
    if codestream is None:
        ratios = [10.0] if lossy else None
        codestream = encode_array(np.ascontiguousarray(pixels), bits_stored=bits_stored, compression_ratios=ratios)
    ds.file_meta.TransferSyntaxUID = JPEG2000 if lossy else JPEG2000Lossless
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path
