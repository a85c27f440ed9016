"""scripts/paired_evaluations.py: two sets of evaluation folders paired by seed, with each checkpoint's validation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.scripts import load_script

COLUMNS = ("protocol", "image", "landmark", "present", "detected", "false_negative", "error_mm", "error_px")


@pytest.fixture(scope="module")
def script():
    return load_script("paired_evaluations")


def write_evaluation(
    folder: Path,
    seed: int,
    misses: dict[str, int],
    error: float,
    val_fn: int,
    split="test",
    images=("a", "b", "c", "d"),
) -> None:
    """An evaluation of 2 landmarks on each of 4 images; ``misses`` image -> false negatives (0..2)."""
    run = folder.parent / f"run-{folder.name}"
    run.mkdir(parents=True)
    with (run / "metrics.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "val_false_negatives", "val_present", "val_mre_mm"])
        w.writerows([[1, val_fn + 5, 8, 2.0], [2, val_fn, 8, 1.5], [3, val_fn + 1, 8, 1.4]])
    folder.mkdir(parents=True)
    report = {
        "run": str(run),
        "epoch": 2,
        "seed": seed,
        "protocols": ["high"],
        "split": split,
        "threshold": 0.5,
        "dataset_name": "d",
        "landmarks": ["l0", "l1"],
    }
    (folder / "report.json").write_text(json.dumps(report))
    with (folder / "per_image.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for image in images:
            for k in range(2):
                missed = int(k < misses.get(image, 0))
                w.writerow(["high", image, f"l{k}", 1, 1 - missed, missed, "" if missed else error, ""])


def test_pairs_by_seed_and_reads_the_validation_of_each_checkpoint(script, tmp_path, capsys):
    for seed in (0, 1):
        write_evaluation(tmp_path / f"ref-{seed}", seed, {"a": 2, "b": 1}, error=2.0, val_fn=4)
        write_evaluation(tmp_path / f"arm-{seed}", seed, {"a": 1}, error=1.0, val_fn=2)
    ref, arm = f"base={tmp_path}/ref-{{seed}}", f"new={tmp_path}/arm-{{seed}}"
    rc = script.main(["--seeds", "0,1", "--ref", ref, "--arm", arm, "--out", str(tmp_path / "out"), "--boot", "200"])
    assert rc == 0
    doc = json.loads((tmp_path / "out" / "paired.json").read_text())
    (row,) = doc["rows"]
    assert row["protocol"] == "high" and row["arm"] == "new" and row["seeds"] == [0, 1]
    assert row["fn_ref"] == 3 and row["fn_arm"] == 1 and row["fn_diff"] == -2
    assert row["mre_ref"] == pytest.approx(2.0) and row["mre_diff"] == pytest.approx(-1.0)
    base, new = doc["validation"]
    assert (base["arm"], base["epochs"], base["fn_mean"], base["mre_mean"], base["chosen"]) == ("base", [2, 2], 4, 1.5,
                                                                                               False)  # fmt: skip
    assert new["val_false_negatives"] == [2, 2] and new["chosen"]
    out = capsys.readouterr().out
    assert "| high | new | 2 | 2, 2 | 2.0 ± 0.0 (2, 2) | 8 | 1.500 ± 0.000 | yes |" in out
    assert (tmp_path / "out" / "paired.csv").read_text().startswith("protocol,arm,reference")


def test_refuses_evaluations_that_cannot_be_paired(script, tmp_path):
    write_evaluation(tmp_path / "ref-0", 0, {}, error=1.0, val_fn=0)
    write_evaluation(tmp_path / "arm-0", 7, {}, error=1.0, val_fn=0)
    with pytest.raises(SystemExit, match="seed 7, not 0"):
        script.main(["--seeds", "0", "--ref", f"b={tmp_path}/ref-{{seed}}", "--arm", f"a={tmp_path}/arm-{{seed}}",
                     "--out", str(tmp_path / "o")])  # fmt: skip

    def pair(arm_folder, ref="ref-0", label="a"):
        argv = ["--seeds", "0", "--ref", f"b={tmp_path}/{ref}", "--arm", f"{label}={tmp_path}/{arm_folder}"]
        script.main([*argv, "--out", str(tmp_path / "o")])

    write_evaluation(tmp_path / "val-0", 0, {}, error=1.0, val_fn=0, split="val")
    with pytest.raises(SystemExit, match="differ in split"):
        pair("val-{seed}", ref="ref-{seed}")
    write_evaluation(tmp_path / "few-0", 0, {}, error=1.0, val_fn=0, images=("a", "b"))
    with pytest.raises(SystemExit, match="different images under high"):
        pair("few-{seed}", ref="ref-{seed}")
    with pytest.raises(SystemExit, match="repeat"):
        pair("ref-{seed}", ref="ref-{seed}", label="b")
    with pytest.raises(SystemExit, match="with \\{seed\\} in FOLDER"):
        script.main(["--seeds", "0", "--ref", f"b={tmp_path}/ref-0", "--arm", "a=x", "--out", str(tmp_path / "o")])
