"""``landmark-afl predict`` end to end on a folder of real files (random weights: the plumbing is under test)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from landmark_afl.cli import main
from landmark_afl.inference.predictor import result_columns
from tests.inference.real_inputs import LANDMARKS, make_real_folder, make_run


def _csv(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    good, broken = make_real_folder(root / "in")
    return root, make_run(root), good, broken


def test_good_files_get_results_broken_ones_errors_and_a_second_run_does_nothing(real, capsys):
    root, run, good, broken = real
    out = root / "out"
    argv = [
        "predict",
        str(run),
        str(root / "in"),
        "--out",
        str(out),
        "--workers",
        "2",
        "--batch-size",
        "3",
        "--no-progress",
    ]
    assert main(argv) == 3  # some files failed
    results, errors = _csv(out / "results.csv"), _csv(out / "errors.csv")
    assert [r["path"] for r in results] == [str(p) for p in good]  # sorted by path
    assert [r["path"] for r in errors] == [str(p) for p in broken]
    assert all(r["error_type"] and r["path"] in r["message"] for r in errors)
    assert list(results[0]) == result_columns(LANDMARKS)
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [x["path"] for x in lines] == [r["path"] for r in results]

    # spacing and UIDs against the files themselves (pydicom as the reference)
    import pydicom

    by_name = {os.path.basename(r["path"]): r for r in results}
    cr = by_name["CR1.dcm"]
    ds = pydicom.dcmread(cr["path"])
    assert (float(cr["spacing_row_mm"]), float(cr["spacing_col_mm"])) == tuple(float(v) for v in ds.ImagerPixelSpacing)
    assert cr["spacing_source"] == "ImagerPixelSpacing"
    assert cr["sop_instance_uid"] == ds.SOPInstanceUID and cr["study_instance_uid"] == ds.StudyInstanceUID
    assert (int(cr["rows"]), int(cr["cols"])) == (ds.Rows, ds.Columns)
    for name in LANDMARKS:  # mm = px * spacing (x with the column spacing)
        assert float(cr[f"{name}_x_mm"]) == pytest.approx(
            float(cr[f"{name}_x"]) * float(ds.ImagerPixelSpacing[1]), abs=1e-3
        )
        assert cr[f"{name}_present"] == str(int(float(cr[f"{name}_peak"]) >= 0.5))
    jpg = by_name["001.jpg"]
    assert jpg["spacing_source"] == "none" and jpg[f"{LANDMARKS[0]}_x_mm"] == "" and jpg["sop_instance_uid"] == ""
    assert (int(jpg["rows"]), int(jpg["cols"])) == (2400, 1935)

    # patient data never appears in any output
    for f in ("results.csv", "results.jsonl", "errors.csv"):
        text = (out / f).read_text()
        assert "CompressedSamples" not in text and "Archibald" not in text and "19790408" not in text

    # second run: nothing processed again, files unchanged
    before = {f: (out / f).read_bytes() for f in ("results.csv", "results.jsonl", "errors.csv")}
    capsys.readouterr()
    assert main(argv) == 3
    assert "0 processed" in capsys.readouterr().err
    assert {f: (out / f).read_bytes() for f in before} == before


def test_a_kill_mid_row_is_repaired_and_only_that_image_redone(real, capsys):
    root, run, good, _ = real
    out = root / "out_kill"
    argv = ["predict", str(run), str(root / "in"), "--out", str(out), "--workers", "0", "--no-progress"]
    main(argv)
    complete = (out / "results.csv").read_bytes()
    lines = complete.splitlines(keepends=True)
    (out / "results.csv").write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # last row half written
    capsys.readouterr()
    main(argv)
    assert "1 processed" in capsys.readouterr().err
    assert (out / "results.csv").read_bytes() == complete


def test_order_and_values_do_not_depend_on_workers_reader_or_batch(real):
    root, run, good, _ = real
    rows, codes, errors = {}, set(), set()
    for workers, batch, reader in ((0, 1, "auto"), (2, 4, "thread"), (2, 4, "process")):
        out = root / f"out_w{workers}_{reader}"
        flags = ["--workers", str(workers), "--reader", reader, "--batch-size", str(batch), "--no-progress"]
        codes.add(main(["predict", str(run), str(root / "in"), "--out", str(out), *flags]))  # 3: the bad files
        rows[reader] = _csv(out / "results.csv")
        errors.add((out / "errors.csv").read_bytes())
    assert len(codes) == 1 and len(errors) == 1  # the same bad files, in the same order, with the same messages
    cols = [c for c in rows["auto"][0] if c.endswith(("_x", "_y"))]
    a = np.array([[float(r[c]) for c in cols] for r in rows["auto"]])
    for reader in ("thread", "process"):
        assert [r["path"] for r in rows[reader]] == [r["path"] for r in rows["auto"]]
        b = np.array([[float(r[c]) for c in cols] for r in rows[reader]])
        np.testing.assert_allclose(a, b, atol=0.01)


def test_keep_phi_writes_patient_fields_and_overlays(real):
    root, run, good, _ = real
    out = root / "out_phi"
    mr = next(p for p in good if p.name == "MR_small.dcm")
    assert main(["predict", str(run), str(mr), "--out", str(out), "--keep-phi", "--overlays", "--no-progress"]) == 0
    row = _csv(out / "results.csv")[0]
    assert row["patient_name"] == "CompressedSamples^MR1" and row["patient_id"] == "4MR1"
    import cv2

    from landmark_afl.inference.overlay import BAND

    overlay = cv2.imread(str(out / "overlays" / "MR_small.dcm.png"))
    # the 64 x 64 image enlarged 8x (the overlay's minimum size) below a title band
    assert overlay is not None and overlay.shape[1] >= 512 and overlay.shape[0] > 512
    band = overlay.shape[0] - 512
    assert tuple(overlay[0, 0]) == BAND
    coloured = overlay.max(-1) != overlay.min(-1)  # marks and labels are drawn in colour on the grey image
    assert coloured[band:].any()
    x, y = ((float(row["nasion_x"]) + 0.5) * 8 - 0.5), ((float(row["nasion_y"]) + 0.5) * 8 - 0.5)
    x, y = round(x), round(y) + band
    assert coloured[max(band, y - 6) : y + 7, max(0, x - 6) : x + 7].any()  # a mark at a predicted landmark


def test_usage_errors_exit_2(real, tmp_path):
    root, run, _, _ = real
    base = ["--out", str(tmp_path / "o"), "--no-progress"]
    assert main(["predict", str(tmp_path / "no_run"), str(root / "in"), *base]) == 2
    assert main(["predict", str(run), str(tmp_path / "no_input"), *base]) == 2
    assert main(["predict", str(run), str(root / "in"), *base, "--batch-size", "0"]) == 2
    assert main(["predict", str(run), str(root / "in"), *base, "--protocol", "no_such_protocol"]) == 2
    good = root / "in" / "mr" / "MR_small.dcm"
    assert main(["predict", str(run), str(good), *base]) == 0
    assert (
        main(["predict", str(run), str(good), *base, "--threshold", "0.9"]) == 2
    )  # OUT was made with another threshold


def test_precision_and_spacing_cannot_change_between_resumes_of_one_out(real, tmp_path, capsys):
    root, run, _, _ = real
    good = root / "in" / "mr" / "MR_small.dcm"
    out = tmp_path / "o"
    base = ["predict", str(run), str(good), "--out", str(out), "--no-progress"]
    assert main([*base, "--amp", "off"]) == 0
    assert json.loads((out / "predict.json").read_text())["precision"] == "fp32"
    capsys.readouterr()
    assert main([*base, "--amp", "bf16"]) == 2  # rows in fp32 and bf16 must not mix
    assert "precision: 'fp32' -> 'bf16 autocast" in " ".join(capsys.readouterr().err.split())
    assert main([*base, "--amp", "off", "--spacing", "0.1"]) == 2  # nor rows with and without --spacing
    assert main([*base, "--amp", "off", "--overlays"]) == 2  # nor images with and without overlays
    assert main([*base, "--amp", "off"]) == 0  # the same settings resume


def test_an_out_folder_of_an_older_version_resumes_as_fp32(real, tmp_path):
    root, run, _, _ = real
    good = root / "in" / "mr" / "MR_small.dcm"
    out = tmp_path / "o"
    base = ["predict", str(run), str(good), "--out", str(out), "--no-progress"]
    assert main([*base, "--amp", "off"]) == 0
    settings = json.loads((out / "predict.json").read_text())
    for key in ("precision", "engine", "fallback_spacing"):  # written before these were recorded
        settings.pop(key)
    (out / "predict.json").write_text(json.dumps(settings))
    assert main([*base, "--amp", "off"]) == 0
    assert main([*base, "--amp", "bf16"]) == 2


def test_dicom_outputs_for_the_dicom_files_of_a_real_folder(real, capsys):
    pytest.importorskip("highdicom")
    import pydicom

    from landmark_afl.inference.dicom_outputs import NOT_DICOM

    root, run, good, broken = real
    out = root / "out_dicom"
    argv = ["predict", str(run), str(root / "in"), "--out", str(out), "--dicom", "--workers", "0", "--no-progress"]
    assert main(argv) == 3  # the broken files, as without --dicom; DICOM outputs never fail an image
    records = {r["path"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(records) == {str(p) for p in good}
    for path in good:
        outputs = records[str(path)]["dicom_outputs"]
        if path.suffix == ".jpg":
            assert outputs == {"gsps": None, "sr": None, "skipped": NOT_DICOM}
            continue
        assert outputs["skipped"] is None and outputs["gsps"] and outputs["sr"], outputs
        src = pydicom.dcmread(path, stop_before_pixels=True)
        gsps, sr = (pydicom.dcmread(out / outputs[k]) for k in ("gsps", "sr"))
        for ds in (gsps, sr):
            assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.SOPInstanceUID != src.SOPInstanceUID
            assert "InstitutionName" not in ds and not str(ds.ReferringPhysicianName)
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
        marks = [m for m in records[str(path)]["landmarks"] if m["present"]]
        annotations = gsps.get("GraphicAnnotationSequence") or []
        drawn = [list(g.GraphicData) for a in annotations for g in a.GraphicObjectSequence]
        expected = [[min(max(m["x"] + 0.5, 0), src.Columns), min(max(m["y"] + 0.5, 0), src.Rows)] for m in marks]
        np.testing.assert_allclose(np.reshape(drawn, (-1, 2)), np.reshape(expected, (-1, 2)), atol=2e-3)
    rel = {p.relative_to(out / "dicom").as_posix() for p in (out / "dicom").rglob("*.dcm")}
    assert "cr/deeper/CR2_noext.gsps.dcm" in rel and "wg04/RG3_J2KI_lossy.dcm.sr.dcm" in rel  # the overlay names


def _run_with_spacing_fallback(root, spacing):
    from landmark_afl.engine.checkpoint import load_checkpoint, save_checkpoint
    from tests.run_fixture import make_untrained_run

    run = make_untrained_run(root / "run_spacing", LANDMARKS)
    for name in ("best", "last"):
        path = run / "checkpoints" / f"{name}.pt"
        state = load_checkpoint(path)
        state["spacing_fallback"] = spacing  # what train records from the data set's dataset.yaml spacing_mm
        save_checkpoint(path, state)
    return run


def test_images_without_spacing_get_a_notice_and_mm_only_when_asked(real, tmp_path, capsys):
    root, plain_run, _, _ = real
    jpgs = tmp_path / "jpgs.txt"
    jpgs.write_text("".join(f"{root / 'in' / 'isbi' / name}\n" for name in ("001.jpg", "002.jpg")))
    run = _run_with_spacing_fallback(tmp_path, [0.1, 0.1])
    base = ["predict", str(run), str(jpgs), "--workers", "0", "--no-progress"]

    assert main([*base, "--out", str(tmp_path / "none")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("carries no pixel spacing") == 1  # once per job, not per image
    assert "--spacing run" in err and "0.1 x 0.1 mm" in err and "2 results of this job have no mm" in err
    assert all(r[f"{LANDMARKS[0]}_x_mm"] == "" for r in _csv(tmp_path / "none" / "results.csv"))

    assert main([*base, "--out", str(tmp_path / "run_mm"), "--spacing", "run"]) == 0
    assert "no pixel spacing" not in capsys.readouterr().err
    rows = _csv(tmp_path / "run_mm" / "results.csv")
    assert all(r["spacing_source"] == "dataset.yaml" and r["spacing_row_mm"] == "0.1" for r in rows)
    assert float(rows[0]["nasion_x_mm"]) == pytest.approx(float(rows[0]["nasion_x"]) * 0.1, abs=1e-3)
    assert json.loads((tmp_path / "run_mm" / "predict.json").read_text())["fallback_spacing"] == [0.1, 0.1]

    # a run without a data set spacing: the notice names --spacing MM only; --spacing run is a usage error
    assert main(["predict", str(plain_run), str(jpgs), "--out", str(tmp_path / "plain"), "--no-progress"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "--spacing MM" in err and "--spacing run" not in err
    out = ["--out", str(tmp_path / "bad"), "--no-progress"]
    assert main(["predict", str(plain_run), str(jpgs), *out, "--spacing", "run"]) == 2
    assert "without spacing_mm" in capsys.readouterr().err
    assert main(["predict", str(plain_run), str(jpgs), *out, "--spacing", "abc"]) == 2


def test_every_forward_pass_has_the_batch_size_whatever_the_batch_held(real, monkeypatch):
    from landmark_afl.inference.engines import TorchEngine

    root, run, good, broken = real
    shapes, original = [], TorchEngine.__call__

    def record(self, images, valid=None):
        shapes.append((tuple(images.shape), tuple(valid.shape)))
        return original(self, images, valid)

    monkeypatch.setattr(TorchEngine, "__call__", record)
    out = root / "out_shapes"
    argv = ["predict", str(run), str(root / "in"), "--out", str(out), "--workers", "0", "--batch-size", "4"]
    assert main([*argv, "--no-progress"]) == 3
    assert len(_csv(out / "results.csv")) == len(good)  # short batches (unreadable files, the last one) filled up
    assert shapes and {s[0][0] for s in shapes} == {4} and {s[1] for s in shapes} == {(4, 2)}
    assert len(shapes) < (len(good) + len(broken)) / 4 + 1
