"""``predict --dicom``: the GSPS and the SR read back with pydicom (coordinates, references, what is copied)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from landmark_afl.data.phantom_dicom import write_dx
from landmark_afl.inference.dicom_outputs import (
    COPIED_ATTRIBUTES,
    NOT_DICOM,
    DicomOutputWriter,
    dicom_output_names,
    to_dicom_points,
)
from tests.conftest import shared_path

pytest.importorskip("highdicom")

NAMES = ["sella", "nasion", "menton"]
ROWS, COLS = 40, 60
# values that must never leave the source (each unique, so a leak is found wherever it lands)
SECRETS = {
    "InstitutionName": "SECRET-INSTITUTION",
    "InstitutionAddress": "SECRET-ADDRESS-1",
    "ReferringPhysicianName": "SECRET^REFERRER",
    "PerformingPhysicianName": "SECRET^PERFORMER",
    "OperatorsName": "SECRET^OPERATOR",
    "StationName": "SECRET-STATION",
    "DeviceSerialNumber": "SECRET-SERIAL",
    "StudyDescription": "SECRET-STUDY-DESCRIPTION",
    "SeriesDescription": "SECRET-SERIES-DESCRIPTION",
    "OtherPatientIDs": "SECRET-OTHER-ID",
    "PatientAddress": "SECRET-PATIENT-ADDRESS",
    "PatientComments": "SECRET-PATIENT-COMMENTS",
    "PatientAge": "042Y",
    "InstitutionalDepartmentName": "SECRET-DEPARTMENT",
    "Manufacturer": "SECRET-MANUFACTURER",
}


def _source(path: Path, monochrome1: bool = True, **changes) -> Path:
    """A phantom DX (the toolkit's own DICOM writer) with identifying fields that must not be copied."""
    pixels = (np.arange(ROWS * COLS).reshape(ROWS, COLS) % 4096).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dx(path, pixels, seed=3, index=0, spacing_mm=0.1, monochrome1=monochrome1, rle=False,
             window=(2000.0, 3000.0), laterality="L")  # fmt: skip
    ds = pydicom.dcmread(path)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "DOE^JANE", "ID-4711", "19700101"
    for keyword, value in {**SECRETS, **changes}.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def _write(tmp_path, xy, peaks, source=None, threshold=0.5):
    source = source or _source(tmp_path / "in" / "ceph" / "a.dcm")
    writer = DicomOutputWriter(tmp_path / "out", NAMES, threshold, "high")
    return source, writer.write(source, tmp_path / "in", np.asarray(xy, float), np.asarray(peaks, float))


def _sr_groups(sr) -> list[dict]:
    """Per measurement group of a TID 1500 report: tracking id / uid, detected, peak, point and its reference."""
    (measurements,) = [i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126010"]
    groups = []
    for group in measurements.ContentSequence:
        g = {}
        for item in group.ContentSequence:
            meaning = item.ConceptNameCodeSequence[0].CodeMeaning
            if meaning == "Tracking Identifier":
                g["id"] = item.TextValue
            elif meaning == "Tracking Unique Identifier":
                g["uid"] = item.UID
            elif meaning == "Landmark detected":
                g["detected"] = item.ConceptCodeSequence[0].CodeMeaning
            elif meaning == "Peak heatmap response":
                g["peak"] = float(item.MeasuredValueSequence[0].NumericValue)
            elif item.ValueType == "SCOORD":
                g["point"] = (item.GraphicType, [float(v) for v in item.GraphicData])
                g["ref"] = item.ContentSequence[0].ReferencedSOPSequence[0]
            elif item.ValueType == "IMAGE":
                g["ref"] = item.ReferencedSOPSequence[0]
        groups.append(g)
    return groups


def test_points_are_shifted_half_a_pixel_and_reference_the_source(tmp_path):
    xy = np.array([[0.0, 0.0], [10.25, 20.75], [59.5, 39.5]])  # exact in float32 (GraphicData is FL)
    source, record = _write(tmp_path, xy, [0.9, 0.8, 0.7])
    assert record == {"gsps": "dicom/ceph/a.dcm.gsps.dcm", "sr": "dicom/ceph/a.dcm.sr.dcm", "skipped": None}
    src = pydicom.dcmread(source)
    expected = (xy + 0.5).tolist()  # DICOM's origin is the corner of the top-left pixel, ours its centre

    gsps = pydicom.dcmread(tmp_path / "out" / record["gsps"])
    assert gsps.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.1" and gsps.Modality == "PR"
    (annotation,) = gsps.GraphicAnnotationSequence
    assert annotation.GraphicLayer == "LANDMARKS" and gsps.GraphicLayerSequence[0].GraphicLayer == "LANDMARKS"
    assert annotation.ReferencedImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert gsps.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    points = [(g.GraphicType, g.GraphicAnnotationUnits, list(g.GraphicData)) for g in annotation.GraphicObjectSequence]
    assert points == [("POINT", "PIXEL", p) for p in expected]
    texts = [(t.UnformattedTextValue, list(t.AnchorPoint)) for t in annotation.TextObjectSequence]
    assert texts == list(zip(NAMES, expected, strict=True))
    assert gsps.PresentationLUTShape == "INVERSE"  # MONOCHROME1 source: bone stays white
    assert float(gsps.SoftcopyVOILUTSequence[0].WindowWidth) == float(src.WindowWidth)

    sr = pydicom.dcmread(tmp_path / "out" / record["sr"])
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33" and sr.Modality == "SR"  # Comprehensive SR
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert (sr.PreliminaryFlag, sr.VerificationFlag) == ("PRELIMINARY", "UNVERIFIED")
    groups = _sr_groups(sr)
    assert [g["id"] for g in groups] == NAMES
    assert [g["point"] for g in groups] == [("POINT", p) for p in expected]
    assert all(g["ref"].ReferencedSOPInstanceUID == src.SOPInstanceUID for g in groups)
    assert [g["peak"] for g in groups] == pytest.approx([0.9, 0.8, 0.7])
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    # one tracking UID per landmark, shared by its GSPS objects and its SR group
    assert [g.TrackingUID for g in annotation.GraphicObjectSequence] == [g["uid"] for g in groups]

    # new objects in new series of the source's study
    uids = {gsps.SOPInstanceUID, sr.SOPInstanceUID, gsps.SeriesInstanceUID, sr.SeriesInstanceUID}
    assert len(uids) == 4 and not uids & {src.SOPInstanceUID, src.SeriesInstanceUID}
    assert gsps.StudyInstanceUID == sr.StudyInstanceUID == src.StudyInstanceUID
    assert gsps.Manufacturer == sr.Manufacturer == "landmark-afl"


def test_undetected_landmarks_are_not_drawn_and_reported_without_a_point(tmp_path):
    _, record = _write(tmp_path, [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]], [0.9, 0.2, 0.6])
    gsps = pydicom.dcmread(tmp_path / "out" / record["gsps"])
    drawn = [t.UnformattedTextValue for t in gsps.GraphicAnnotationSequence[0].TextObjectSequence]
    assert drawn == ["sella", "menton"]
    assert "2 of 3 landmarks detected" in gsps.ContentDescription
    groups = _sr_groups(pydicom.dcmread(tmp_path / "out" / record["sr"]))
    assert [(g["id"], g["detected"], "point" in g) for g in groups] == [
        ("sella", "Yes", True), ("nasion", "No", False), ("menton", "Yes", True)
    ]  # fmt: skip
    assert "ref" in groups[1]  # the group still names the image it was sought in

    _, none = _write(tmp_path / "none", [[1.0, 1.0]] * 3, [0.1, 0.1, 0.1])  # nothing detected: an empty layer
    empty = pydicom.dcmread(tmp_path / "none" / "out" / none["gsps"])
    assert "GraphicAnnotationSequence" not in empty and empty.GraphicLayerSequence[0].GraphicLayer == "LANDMARKS"


def test_points_outside_the_image_are_clipped_and_non_finite_ones_not_detected(tmp_path):
    np.testing.assert_array_equal(
        to_dicom_points(np.array([[-0.5, -0.5], [COLS - 0.5, ROWS - 0.5], [COLS + 9.0, -7.0]]), ROWS, COLS),
        [[0.0, 0.0], [COLS, ROWS], [COLS, 0.0]],
    )
    _, record = _write(tmp_path, [[np.nan, 3.0], [200.0, 3.0], [4.0, 4.0]], [0.9, 0.9, 0.9])
    groups = _sr_groups(pydicom.dcmread(tmp_path / "out" / record["sr"]))
    assert [g["detected"] for g in groups] == ["No", "Yes", "Yes"]
    assert groups[1]["point"] == ("POINT", [float(COLS), 3.5])


def _values(ds) -> list[str]:
    out = []
    for element in ds.iterall():
        if element.VR != "SQ" and element.value not in (None, b"", ""):
            out.append(str(element.value))
    return out


def test_only_the_documented_attributes_are_copied(tmp_path):
    source, record = _write(tmp_path, [[5.0, 6.0]] * 3, [0.9] * 3)
    src = pydicom.dcmread(source)
    copied = {"PatientName": "DOE^JANE", "PatientID": "ID-4711", "PatientBirthDate": "19700101"}
    for name in ("gsps", "sr"):
        out = pydicom.dcmread(tmp_path / "out" / record[name])
        text = "\n".join(_values(out))
        leaked = [k for k, v in SECRETS.items() if v in text]
        assert leaked == [], f"{name} copies {leaked}"
        assert out.ReferringPhysicianName == ""  # Type 2: present, never copied
        assert {k: str(out.get(k)) for k in copied} == copied  # the patient identity a PACS files it under
        assert out.AccessionNumber == src.AccessionNumber and out.StudyID == src.StudyID
        # every top-level source value found in the output is the value of a documented attribute
        documented = {str(src[k].value) for k in COPIED_ATTRIBUTES if k in src}
        for element in src:
            # the GSPS sets its own PresentationLUTShape (from PhotometricInterpretation; INVERSE here too)
            if element.VR in ("SQ", "OB", "OW", "UN") or element.keyword in ("", "PixelData", "PresentationLUTShape"):
                continue
            value = str(element.value)
            if len(value) >= 6 and value in text and value not in documented:
                pytest.fail(f"{name}: {element.keyword} = {value!r} copied but not documented")


def test_a_header_without_the_uids_the_objects_reference_is_skipped_with_a_reason(tmp_path):
    bad = _source(tmp_path / "in" / "no_uid.dcm", SOPInstanceUID=None)
    _, record = _write(tmp_path, [[5.0, 6.0]] * 3, [0.9] * 3, source=bad)
    assert record["gsps"] is None and record["sr"] is None
    assert str(bad) in record["skipped"] and "SOPInstanceUID" in record["skipped"] and "re-export" in record["skipped"]
    assert not (tmp_path / "out" / "dicom").exists()


def test_non_dicom_inputs_get_no_dicom_outputs(tmp_path):
    png = tmp_path / "in" / "x.png"
    png.parent.mkdir(parents=True)
    import cv2

    cv2.imwrite(str(png), np.zeros((8, 8), np.uint8))
    _, record = _write(tmp_path, [[1.0, 1.0]] * 3, [0.9] * 3, source=png)
    assert record == {"gsps": None, "sr": None, "skipped": NOT_DICOM}


def test_names_follow_the_overlays():
    gsps, sr = dicom_output_names(Path("/in/ceph/a.dcm"), Path("/in"))
    assert (gsps.as_posix(), sr.as_posix()) == ("ceph/a.dcm.gsps.dcm", "ceph/a.dcm.sr.dcm")


def test_multiframe_images_reference_frame_one(tmp_path):
    path = shared_path("dicom", "pydicom_edge", "emri_small.dcm")  # Enhanced MR, 10 frames
    _, record = _write(tmp_path, [[3.0, 4.0]] * 3, [0.9] * 3, source=path)
    assert record["skipped"] is None
    gsps = pydicom.dcmread(tmp_path / "out" / record["gsps"])
    assert gsps.GraphicAnnotationSequence[0].ReferencedImageSequence[0].ReferencedFrameNumber == 1
    groups = _sr_groups(pydicom.dcmread(tmp_path / "out" / record["sr"]))
    assert all(g["ref"].ReferencedFrameNumber == 1 for g in groups)


def test_without_highdicoms_private_tables_the_header_decides(tmp_path, monkeypatch):
    import landmark_afl.inference.dicom_outputs as dicom_outputs

    monkeypatch.setattr(dicom_outputs, "_iod_rules", lambda: None)  # a later highdicom that moved them
    _, record = _write(tmp_path, [[3.0, 4.0]] * 3, [0.9] * 3)
    assert record["skipped"] is None and record["gsps"] and record["sr"]
    path = shared_path("dicom", "pydicom_edge", "emri_small.dcm")  # multi-frame: known by NumberOfFrames
    _, record = _write(tmp_path / "mf", [[3.0, 4.0]] * 3, [0.9] * 3, source=path)
    gsps = pydicom.dcmread(tmp_path / "mf" / "out" / record["gsps"])
    assert gsps.GraphicAnnotationSequence[0].ReferencedImageSequence[0].ReferencedFrameNumber == 1


def test_without_the_tables_a_single_frame_image_that_states_one_frame_is_single_frame(tmp_path, monkeypatch):
    import landmark_afl.inference.dicom_outputs as dicom_outputs

    monkeypatch.setattr(dicom_outputs, "_iod_rules", lambda: None)
    source = _source(tmp_path / "in" / "one.dcm", NumberOfFrames=1)
    _, record = _write(tmp_path, [[3.0, 4.0]] * 3, [0.9] * 3, source=source)
    assert record["skipped"] is None and record["gsps"]
    gsps = pydicom.dcmread(tmp_path / "out" / record["gsps"])
    assert "ReferencedFrameNumber" not in gsps.GraphicAnnotationSequence[0].ReferencedImageSequence[0]


def test_the_gsps_inverts_as_the_reader_does(tmp_path):
    """MONOCHROME2 with a Presentation LUT Shape INVERSE is shown inverted (io.dicom_pixels.needs_inversion)."""
    shapes = {}
    for name, mono1, shape in (("m2", False, None), ("m2inv", False, "INVERSE"), ("m1", True, None)):
        source = _source(tmp_path / "in" / f"{name}.dcm", monochrome1=mono1, PresentationLUTShape=shape)
        _, record = _write(tmp_path / name, [[3.0, 4.0]] * 3, [0.9] * 3, source=source)
        shapes[name] = pydicom.dcmread(tmp_path / name / "out" / record["gsps"]).PresentationLUTShape
    assert shapes == {"m2": "IDENTITY", "m2inv": "INVERSE", "m1": "INVERSE"}


def test_a_header_value_the_copy_cannot_take_is_recorded_not_raised(tmp_path, monkeypatch):
    import landmark_afl.inference.dicom_outputs as dicom_outputs

    def broken(source):
        raise ValueError("invalid literal for int() with base 10: 'x'")

    monkeypatch.setattr(dicom_outputs, "reference_dataset", broken)
    source, record = _write(tmp_path, [[3.0, 4.0]] * 3, [0.9] * 3)
    assert record["gsps"] is None and record["sr"] is None
    assert str(source) in record["skipped"] and "ValueError" in record["skipped"] and "re-export" in record["skipped"]


def test_the_device_uid_tells_models_apart(tmp_path):
    a = DicomOutputWriter(tmp_path, NAMES, 0.5, model_id="sha-a")
    assert a.device_uid == DicomOutputWriter(tmp_path, NAMES, 0.5, model_id="sha-a").device_uid
    assert a.device_uid != DicomOutputWriter(tmp_path, NAMES, 0.5, model_id="sha-b").device_uid


@pytest.mark.parametrize(
    "name, gsps",
    [("wg04_xray/RG1_J2KI.dcm", True), ("pydicom_edge/vlut_04.dcm", True), ("pydicom_edge/mlut_18.dcm", True),
     ("pydicom_edge/SC_rgb_small_odd.dcm", False), ("pydicom_edge/CR_header_only_chrKoreanMulti.dcm", True)],
)  # fmt: skip
def test_real_files(tmp_path, name, gsps):
    path = shared_path("dicom", *name.split("/"))
    _, record = _write(tmp_path, [[3.0, 4.0]] * 3, [0.9] * 3, source=path)
    src = pydicom.dcmread(path, stop_before_pixels=True)
    assert (record["gsps"] is not None) == gsps and record["sr"] is not None
    if not gsps:
        assert "RGB" in record["skipped"] and "SR" in record["skipped"]
    sr = pydicom.dcmread(tmp_path / "out" / record["sr"])
    assert str(sr.PatientName) == str(src.PatientName)  # decoded as in the source, whatever its character set
    institution = str(src.get("InstitutionName", "") or "")
    if institution:
        assert institution not in "\n".join(_values(sr))
    if gsps and "VOILUTSequence" in src:
        out = pydicom.dcmread(tmp_path / "out" / record["gsps"])
        assert len(out.SoftcopyVOILUTSequence[0].VOILUTSequence[0].LUTData) > 0


def test_predict_dicom_end_to_end_resumes_and_refuses_a_changed_setting(tmp_path, capsys):
    from landmark_afl.cli import main
    from tests.run_fixture import make_untrained_run

    run = make_untrained_run(tmp_path / "run", NAMES)
    folder = tmp_path / "in"
    _source(folder / "a.dcm")
    _source(folder / "sub" / "b.dcm", monochrome1=False)
    _source(folder / "broken" / "c.dcm", StudyInstanceUID=None)
    import cv2

    cv2.imwrite(str(folder / "d.png"), np.full((32, 48), 128, np.uint8))
    out = tmp_path / "out"
    argv = ["predict", str(run), str(folder), "--out", str(out), "--dicom", "--workers", "0", "--no-progress"]
    assert main(argv) == 0  # skipped DICOM outputs are not failed images
    err = capsys.readouterr().err
    assert "c.dcm" in " ".join(err.split()) and "StudyInstanceUID" in err
    assert "DICOM outputs for 2 images" in err
    records = {Path(r["path"]).name: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert records["d.png"]["dicom_outputs"]["skipped"] == NOT_DICOM
    assert "StudyInstanceUID" in records["c.dcm"]["dicom_outputs"]["skipped"]
    b = records["b.dcm"]
    assert b["dicom_outputs"]["gsps"] == "dicom/sub/b.dcm.gsps.dcm"
    sr = pydicom.dcmread(out / b["dicom_outputs"]["sr"])
    expected = [[m["x"] + 0.5, m["y"] + 0.5] for m in b["landmarks"] if m["present"]]
    got = [g["point"][1] for g in _sr_groups(sr) if "point" in g]
    np.testing.assert_allclose(got, expected, atol=1e-3)  # results are rounded to 3 decimals, GraphicData is FL
    assert json.loads((out / "predict.json").read_text())["dicom"] is True

    files = sorted((out / "dicom").rglob("*.dcm"))
    before = {f: f.read_bytes() for f in files}
    assert [f.name for f in files] == ["a.dcm.gsps.dcm", "a.dcm.sr.dcm", "b.dcm.gsps.dcm", "b.dcm.sr.dcm"]
    assert main(argv) == 0  # resume: nothing rewritten
    assert {f: f.read_bytes() for f in sorted((out / "dicom").rglob("*.dcm"))} == before
    capsys.readouterr()
    assert main([a for a in argv if a != "--dicom"]) == 2  # resumed without --dicom: refused
    assert "dicom: True -> False" in " ".join(capsys.readouterr().err.split())
