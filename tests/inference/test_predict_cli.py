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


def test_order_and_values_do_not_depend_on_workers_or_batch(real):
    root, run, good, _ = real
    rows = {}
    for workers, batch in ((0, 1), (2, 4)):
        out = root / f"out_w{workers}"
        flags = ["--workers", str(workers), "--batch-size", str(batch), "--no-progress"]
        main(["predict", str(run), str(root / "in"), "--out", str(out), *flags])
        rows[workers] = _csv(out / "results.csv")
    assert [r["path"] for r in rows[0]] == [r["path"] for r in rows[2]]
    cols = [c for c in rows[0][0] if c.endswith(("_x", "_y"))]
    a = np.array([[float(r[c]) for c in cols] for r in rows[0]])
    b = np.array([[float(r[c]) for c in cols] for r in rows[2]])
    np.testing.assert_allclose(a, b, atol=0.01)


def test_keep_phi_writes_patient_fields_and_overlays(real):
    root, run, good, _ = real
    out = root / "out_phi"
    mr = next(p for p in good if p.name == "MR_small.dcm")
    assert main(["predict", str(run), str(mr), "--out", str(out), "--keep-phi", "--overlays", "--no-progress"]) == 0
    row = _csv(out / "results.csv")[0]
    assert row["patient_name"] == "CompressedSamples^MR1" and row["patient_id"] == "4MR1"
    import cv2

    overlay = cv2.imread(str(out / "overlays" / "MR_small.dcm.png"))
    assert overlay is not None and overlay.shape == (64, 64, 3)
    coloured = overlay.max(-1) != overlay.min(-1)  # marks and labels are drawn in colour on the grey image
    assert coloured.any()
    x, y = round(float(row["nasion_x"])), round(float(row["nasion_y"]))
    assert coloured[max(0, y - 4) : y + 5, max(0, x - 4) : x + 5].any()  # a mark at a predicted landmark


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
