from __future__ import annotations

import pydicom

from landmark_afl.inference.phi import header_columns, read_header_fields, scrub
from tests.conftest import shared_path


def test_uids_come_from_the_header_and_patient_data_only_on_request():
    path = shared_path("dicom", "wg04_xray", "RG3_J2KI.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)  # the reference
    fields = read_header_fields(path)
    assert fields == {
        "study_instance_uid": ds.StudyInstanceUID,
        "series_instance_uid": ds.SeriesInstanceUID,
        "sop_instance_uid": ds.SOPInstanceUID,
    }
    assert str(ds.PatientName) not in repr(fields) and ds.PatientID not in repr(fields)
    kept = read_header_fields(path, keep_phi=True)
    assert kept["patient_name"] == str(ds.PatientName)
    assert kept["patient_id"] == ds.PatientID
    assert kept["patient_birth_date"] == ds.PatientBirthDate == "19790408"
    assert list(kept) == header_columns(keep_phi=True)


def test_non_dicom_has_no_header_fields(tmp_path):
    jpg = shared_path("isbi2015", "RawImage", "TrainingData", "001.jpg")
    assert read_header_fields(jpg, keep_phi=True) == {}


def test_scrub_removes_patient_fields_by_column_and_keyword():
    record = {"sop_instance_uid": "1.2", "patient_name": "Doe", "PatientBirthDate": "1970", "patient_id": "7"}
    assert scrub(record) == {"sop_instance_uid": "1.2"}
    assert scrub(record, keep_phi=True) == record
