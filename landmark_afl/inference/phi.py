"""Which DICOM header fields may appear in predict's outputs.

Outputs carry the Study, Series and SOP Instance UIDs (they identify the image, not the patient, and let results be
joined back to the PACS). Patient name, ID and birth date never appear unless the user asks for them with
``--keep-phi``. Every record passes through :func:`scrub` before it is written, so a field that slipped in by any
route is removed.
"""

from __future__ import annotations

from pathlib import Path

# DICOM keyword -> output column
UID_FIELDS = {
    "StudyInstanceUID": "study_instance_uid",
    "SeriesInstanceUID": "series_instance_uid",
    "SOPInstanceUID": "sop_instance_uid",
}
PHI_FIELDS = {
    "PatientName": "patient_name",
    "PatientID": "patient_id",
    "PatientBirthDate": "patient_birth_date",
}


def header_columns(keep_phi: bool = False) -> list[str]:
    """The DICOM columns of results.csv, in order (the PHI ones only with ``keep_phi``)."""
    return list(UID_FIELDS.values()) + (list(PHI_FIELDS.values()) if keep_phi else [])


def read_header_fields(path: str | Path, keep_phi: bool = False) -> dict[str, str]:
    """The allowed header fields of a DICOM file, read without its pixel data ('' for a missing field).

    A non-DICOM file gives ``{}``. Only the tags that may be written are parsed
    (``specific_tags``), so patient data that must not appear is never even decoded.

    Args:
        path: any image file.
        keep_phi: also return patient name, ID and birth date.
    """
    from landmark_afl.io import is_dicom

    if not is_dicom(path):
        return {}
    fields = dict.fromkeys(header_columns(keep_phi), "")
    import pydicom

    keywords = list(UID_FIELDS) + (list(PHI_FIELDS) if keep_phi else [])
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=keywords)
    except Exception:  # noqa: BLE001 - the image itself was readable; a header quirk only loses the UIDs
        return fields
    names = {**UID_FIELDS, **PHI_FIELDS}
    for keyword in keywords:
        value = ds.get(keyword)
        if value is not None:
            fields[names[keyword]] = str(value).strip()
    return scrub(fields, keep_phi)


def scrub(record: dict, keep_phi: bool = False) -> dict:
    """``record`` without patient name / ID / birth date (by output column or DICOM keyword) unless ``keep_phi``.

    Example:
        >>> scrub({"sop_instance_uid": "1.2", "patient_name": "Doe^J", "PatientID": "7"})
        {'sop_instance_uid': '1.2'}
    """
    if keep_phi:
        return record
    banned = set(PHI_FIELDS) | set(PHI_FIELDS.values())
    return {k: v for k, v in record.items() if k not in banned}
