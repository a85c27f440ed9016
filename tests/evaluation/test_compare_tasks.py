"""``compare --task digits``: arms x seeds through the generic trainer, the report, and resuming (a few seconds)."""

from __future__ import annotations

import csv
import json

from landmark_afl.cli import main
from landmark_afl.evaluation.compare_tasks import paired_over_seeds, summarize_arms


def test_compare_digits_reports_every_arm_and_resumes(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--task", "digits", "--seeds", "0,1", "--epochs", "2", "--out", str(out), "batch_size=64"]
    assert main(argv) == 0
    rows = list(csv.DictReader((out / "report" / "report.csv").open()))
    assert [r["arm"] for r in rows] == ["ce", "focal", "afl", "focal+afl"] and {r["n_seeds"] for r in rows} == {"2"}
    report = json.loads((out / "report" / "report.json").read_text())
    assert len(report["runs"]) == 8 and {p["reference"] for p in report["paired"]} == {"ce"}
    assert all(0.0 <= run["metrics"]["top1"] <= 1.0 for run in report["runs"])
    assert (out / "report" / "report.html").read_text().count("<tr>") >= 5
    assert (out / "runs" / "focal+afl-s1" / "difficulty.csv").is_file()
    assert not (out / "runs" / "ce-s1" / "difficulty.csv").exists()
    capsys.readouterr()
    assert main(argv) == 0  # resumed: nothing trained or evaluated again
    assert capsys.readouterr().out.count("already") == 16


def test_summaries_against_hand_computation():
    runs = [{"arm": a, "seed": s, "metrics": {"top1": v}} for a, s, v in
            [("ce", 0, 0.5), ("ce", 1, 0.7), ("afl", 0, 0.6), ("afl", 1, 0.9)]]  # fmt: skip
    (ce, afl) = summarize_arms(runs, ("top1",))
    assert ce["top1_mean"] == 0.6 and abs(ce["top1_std"] - 0.1414213562) < 1e-9
    (paired,) = paired_over_seeds(runs, ("top1",), "ce")
    assert abs(paired["diff"] - 0.15) < 1e-12  # (0.1 + 0.2) / 2
    half = 12.706 * (0.05 * 2**0.5) / 2**0.5  # t(1) x sd of the differences / sqrt(n)
    assert abs(paired["ci"][1] - (0.15 + half)) < 1e-9 and not paired["significant"]
