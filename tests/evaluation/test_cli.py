"""``landmark-afl evaluate`` / ``report`` end to end on an untrained run, and their error messages."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from landmark_afl.cli import main
from landmark_afl.protocols import list_protocols
from tests.evaluation.fixtures import LANDMARKS, write_dataset
from tests.run_fixture import make_untrained_run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    root, coords = write_dataset(tmp / "ds", n=4)
    run = make_untrained_run(tmp / "run", LANDMARKS, protocol="low", data=str(root))
    return tmp, root, coords, run


def test_evaluate_writes_consistent_reports(setup):
    tmp, root, coords, run = setup
    out = tmp / "eval-all"
    assert main(["evaluate", str(run), "--protocols", "all", "--threshold", "0.3", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["protocols"]) == list_protocols()
    assert report["threshold"] == 0.3 and report["split"] == "test" and report["landmarks"] == LANDMARKS
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == len(list_protocols()) * 4 * len(LANDMARKS)
    for name, entry in report["protocols"].items():
        mine = [r for r in rows if r["protocol"] == name]
        assert entry["present"] == 4 * 4 - 2 == sum(int(r["present"]) for r in mine)
        assert entry["present"] == entry["detected"] + entry["false_negatives"]
        assert entry["false_negatives"] == sum(int(r["false_negative"]) for r in mine)
        assert entry["false_positives"] == sum(int(r["false_positive"]) for r in mine)
        # the CSV's peaks reproduce the counts at the threshold, and the sweep at its grid points
        peaks = np.array([float(r["peak"]) for r in mine])
        present = np.array([r["present"] == "1" for r in mine])
        assert entry["false_negatives"] == int((present & (peaks < 0.3)).sum())
        sweep = entry["sweep"]
        i = sweep["thresholds"].index(0.5)
        assert sweep["false_negatives"][i] == int((present & (peaks < 0.5)).sum())
        for lm in entry["per_landmark"]:
            assert lm["present"] == lm["detected"] + lm["false_negatives"]
        assert sum(lm["false_negatives"] for lm in entry["per_landmark"]) == entry["false_negatives"]
        detected = [r for r in mine if r["present"] == "1" and r["detected"] == "1"]
        if detected:
            assert entry["mre_mm"] == pytest.approx(np.mean([float(r["error_mm"]) for r in detected]), abs=1e-3)
        # the challenge's figure: every present landmark, detected or not
        every = [float(r["error_all_mm"]) for r in mine if r["present"] == "1"]
        assert entry["mre_all_mm"] == pytest.approx(np.mean(every), abs=1e-3)
        assert entry["sdr_all"]["2"] == pytest.approx(100 * np.mean(np.array(every) <= 2.0), abs=1e-6)
        assert all(lm["mre_all_mm"] is not None for lm in entry["per_landmark"] if lm["present"])
    assert (out / "sweep.png").stat().st_size > 1000
    text = (out / "report.md").read_text()
    assert "False negatives per landmark" in text and "| protocol | present | MRE (all) |" in text

    assert report["precision"] in text


def test_evaluate_decode_overrides_the_runs_refinement_and_records_it(setup):
    tmp, _, _, run = setup
    reports = {}
    for decode in ("soft-argmax", "parabola"):
        out = tmp / f"eval-{decode}"
        assert main(["evaluate", str(run), "--decode", decode, "--threshold", "0.3", "--out", str(out)]) == 0
        reports[decode] = json.loads((out / "report.json").read_text())
        assert reports[decode]["decode"] == decode
        assert f"- sub-pixel decoding: {decode}" in (out / "report.md").read_text()
    soft, parabola = (reports[d]["protocols"]["low"] for d in ("soft-argmax", "parabola"))
    assert soft["false_negatives"] == parabola["false_negatives"]  # the peaks do not depend on the refinement
    assert soft["mre_all_mm"] != parabola["mre_all_mm"]


def test_evaluate_defaults_to_the_runs_protocol_data_and_threshold(setup):
    tmp, _, _, run = setup
    out = tmp / "eval-default"
    assert main(["evaluate", str(run), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["protocols"]) == ["low"] and report["threshold"] == 0.5 and report["trained_protocol"] == "low"


def test_cli_errors_are_clear(setup, capsys):
    tmp, root, _, run = setup
    assert main(["evaluate", str(tmp / "nope"), "--out", str(tmp / "o1")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--protocols", "high,shiny", "--out", str(tmp / "o2")]) == 2
    err = capsys.readouterr().err
    assert "shiny" in err and "high" in err
    (tmp / "o3").mkdir()
    (tmp / "o3" / "keep.txt").write_text("x")
    assert main(["evaluate", str(run), "--out", str(tmp / "o3")]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--split", "holdout", "--out", str(tmp / "o4")]) == 2
    assert "holdout" in capsys.readouterr().err
    assert main(["report", str(root), "--out", str(tmp / "o5")]) == 2
    assert "neither an evaluate output folder" in capsys.readouterr().err
    assert main(["report", str(run), "--labels", "a,b", "--out", str(tmp / "o6")]) == 2
    assert "one label per input" in capsys.readouterr().err


def test_report_accepts_evaluations_and_run_folders(setup):
    tmp, root, _, run = setup
    other = make_untrained_run(tmp / "run2", LANDMARKS, protocol="low", seed=3, data=str(root))
    first = tmp / "eval-first"
    assert main(["evaluate", str(run), "--out", str(first)]) == 0
    out = tmp / "side"
    assert main(["report", str(first), str(other), "--labels", "A,B", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert [(r["label"], r["protocol"]) for r in rows] == [("A", "low"), ("B", "low")]
    fn_a, fn_b = float(rows[0]["false_negatives"]), float(rows[1]["false_negatives"])
    if fn_a:
        assert float(rows[1]["fn_change_pct"]) == pytest.approx(100 * (fn_b - fn_a) / fn_a)
    assert (out / "evaluations" / "01-run2" / "report.json").is_file()
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "https://" not in page
