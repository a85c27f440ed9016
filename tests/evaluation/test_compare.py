"""``landmark-afl compare`` end to end on a tiny phantom (slow: it trains 4 models for one epoch), and resuming."""

from __future__ import annotations

import csv
import json

import pytest

from landmark_afl.cli import main
from landmark_afl.engine.checkpoint import load_checkpoint


@pytest.mark.slow
def test_compare_trains_evaluates_reports_and_resumes(tmp_path, capsys):
    from landmark_afl.data.phantom import generate_phantom

    data = generate_phantom(tmp_path / "phantom", n=12, size=128)
    out = tmp_path / "cmp"
    argv = ["compare", "--data", str(data), "--protocols", "high,low", "--seeds", "0", "--epochs", "1",
            "--out", str(out), "input_size=[64,64]"]  # fmt: skip
    assert main(argv) == 0
    names = ["high-baseline-s0", "high-afl-s0", "low-baseline-s0", "low-afl-s0"]
    for name in names:
        assert (out / "runs" / name / "checkpoints" / "last.pt").is_file()
        report = json.loads((out / "evaluations" / name / "report.json").read_text())
        assert list(report["protocols"]) == [name.split("-")[0]] and report["afl"] == ("afl" in name)
    rows = list(csv.DictReader((out / "report" / "report.csv").open()))
    assert [(r["label"], r["protocol"]) for r in rows] == [("baseline", "high"), ("AFL", "high"), ("baseline", "low"),
                                                           ("AFL", "low")]  # fmt: skip
    assert (out / "report" / "report.html").is_file() and (out / "report" / "per_run.md").is_file()
    assert (out / "evaluations" / "high-afl-s0" / "difficulty.png").is_file()
    paired = list(csv.DictReader((out / "report" / "paired.csv").open()))
    assert [(r["protocol"], r["arm"], r["reference"]) for r in paired] == [("high", "AFL", "baseline"),
                                                                          ("low", "AFL", "baseline")]  # fmt: skip
    assert "paired by seed" in (out / "report" / "report.html").read_text()
    validation = json.loads((out / "report" / "validation.json").read_text())
    assert [(r["protocol"], r["arm"], r["epochs"]) for r in validation] == [("high", "baseline", [1]),
        ("high", "AFL", [1]), ("low", "baseline", [1]), ("low", "AFL", [1])]  # fmt: skip
    assert (
        sum(r["chosen"] for r in validation) == 2 and "choose an arm here" in (out / "report" / "report.md").read_text()
    )

    # resuming: nothing is trained or evaluated again
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/*/checkpoints/last.pt")}
    stamps.update({p: p.stat().st_mtime_ns for p in out.glob("evaluations/*/report.json")})
    capsys.readouterr()
    assert main(argv) == 0
    log = capsys.readouterr().out
    assert log.count("already") == 8
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())

    # other settings in the same folder are refused
    assert main([*argv[:-1], "input_size=[96,96]"]) == 2
    assert "other settings" in capsys.readouterr().err
    # one more epoch resumes the runs and redoes their evaluations
    assert main([*argv[:8], "2", *argv[9:]]) == 0
    assert all(p.stat().st_mtime_ns != t for p, t in stamps.items())


@pytest.mark.slow
def test_compare_extra_arms(tmp_path):
    from landmark_afl.data.phantom import generate_phantom

    data = generate_phantom(tmp_path / "phantom", n=12, size=128)
    out = tmp_path / "cmp"
    argv = ["compare", "--data", str(data), "--protocols", "high", "--seeds", "0", "--epochs", "1", "--out", str(out),
            "--arm", "AFL centred: afl.critic_center=True", "input_size=[64,64]"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["high-afl-centred-s0", "high-baseline-s0"]
    state = load_checkpoint(out / "runs" / "high-afl-centred-s0" / "checkpoints" / "last.pt")
    assert state["config"]["afl"]["critic_center"] is True and state["config"]["afl"]["enabled"] is True
    rows = list(csv.DictReader((out / "report" / "paired.csv").open()))
    assert [r["arm"] for r in rows] == ["AFL centred"]
    assert main(["compare", "--arm", "baseline: x=1", *argv[1:]]) == 2  # the reference label is taken
