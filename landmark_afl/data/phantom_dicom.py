"""Writing a phantom image as a DX DICOM file (For Presentation), deterministic bytes for a given seed.

Every UID is derived from the phantom seed and image index (``pydicom.uid.generate_uid`` with entropy sources),
the dates are fixed, and no real patient data is written (patient name ``PHANTOM^HAND``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
IMPLEMENTATION_UID = generate_uid(entropy_srcs=["landmark-afl", "implementation"])


def _uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=["landmark-afl phantom", str(seed), *map(str, parts)])


def write_dx(
    path: Path,
    pixels: np.ndarray,
    *,
    seed: int,
    index: int,
    spacing_mm: float,
    monochrome1: bool,
    rle: bool,
    window: tuple[float, float],
    laterality: str,
) -> None:
    """Write one 12-bit DX image.

    Args:
        path: output file.
        pixels: MONOCHROME2 stored values (uint16, 0..4095, bone bright); inverted here for MONOCHROME1.
        seed, index: make the UIDs (same seed and index -> same UIDs).
        spacing_mm: ImagerPixelSpacing (row = col).
        monochrome1: store as MONOCHROME1 (low values bright) instead of MONOCHROME2.
        rle: compress with RLE Lossless.
        window: (center, width) of the VOI window in MONOCHROME2 stored values.
        laterality: "L" or "R".
    """
    stored = (4095 - pixels) if monochrome1 else pixels
    study = _uid(seed, "study")
    series = _uid(seed, "series")
    sop = _uid(seed, index, "sop")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = "LANDMARK_AFL"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = sop
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20000101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "landmark-afl synthetic phantom"
    ds.InstitutionName = "none (synthetic)"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic hand radiograph (landmark-afl phantom)"
    ds.PatientName = "PHANTOM^HAND"
    ds.PatientID = f"PHANTOM-{seed}"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "HAND"
    ds.ViewPosition = "PA"
    ds.ImageLaterality = laterality
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.PatientOrientation = ["", ""]
    ds.ImagerPixelSpacing = [f"{spacing_mm:.6g}", f"{spacing_mm:.6g}"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    center, width = window
    ds.WindowCenter = f"{(4095 - center) if monochrome1 else center:.1f}"
    ds.WindowWidth = f"{width:.1f}"
    ds.PresentationLUTShape = "INVERSE" if monochrome1 else "IDENTITY"  # as the DX IOD requires
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    if rle:
        ds.compress(RLELossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
