"""validation_choice: the validation row of each evaluated checkpoint's epoch, and the arm it chooses."""

from __future__ import annotations

import csv

import pytest

from landmark_afl.evaluation.validation_choice import validation_markdown, validation_of, validation_rows


def make_run(folder, rows):
    folder.mkdir(parents=True)
    with (folder / "metrics.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", "train_loss", "val_false_negatives", "val_present", "val_mre_mm"])
        w.writerows(rows)
    return str(folder)


def test_reads_the_epoch_of_the_checkpoint_and_the_last_row_of_a_resumed_epoch(tmp_path):
    run = make_run(tmp_path / "r", [[1, 10, 0.1, 9, 50, 3.0], [2, 20, 0.05, 4, 50, 2.5], [2, 20, 0.05, 3, 50, 2.4],
                                    [3, 30, 0.04, 5, 50, ""]])  # fmt: skip
    assert validation_of({"run": run, "epoch": 2}) == {"epoch": 2, "val_false_negatives": 3, "val_present": 50,
                                                        "val_mre_mm": 2.4}  # fmt: skip
    assert validation_of({"run": run, "epoch": 3})["val_mre_mm"] is None  # every landmark missed: no MRE
    assert validation_of({"run": run, "epoch": 7}) == {}
    assert validation_of({"run": str(tmp_path / "gone"), "epoch": 2}) == {}
    assert validation_of({"run": run}) == {}


def test_chooses_the_fewest_false_negatives_per_protocol_then_the_lower_mre(tmp_path):
    def report(name, fn, mre):
        return {"run": make_run(tmp_path / name, [[1, 1, 0.1, fn, 40, mre]]), "epoch": 1}

    entries = [
        ("protocols/high.yaml", "baseline", report("b0", 4, 2.0)), ("high", "baseline", report("b1", 2, 2.0)),
        ("high", "AFL", report("a0", 3, 2.0)), ("high", "AFL", report("a1", 3, 1.9)),
        ("low", "baseline", report("c0", 5, 2.0)), ("low", "AFL", report("d0", 6, 1.0)),
        ("low", "gone", {"run": str(tmp_path / "nothing"), "epoch": 1}),
    ]  # fmt: skip
    rows = validation_rows(entries)
    assert [(r["protocol"], r["arm"], r["chosen"]) for r in rows] == [
        ("high", "baseline", False), ("high", "AFL", True), ("low", "baseline", True), ("low", "AFL", False),
        ("low", "gone", False),
    ]  # fmt: skip
    high_base = rows[0]
    assert high_base["fn_mean"] == 3 and high_base["fn_std"] == pytest.approx(2**0.5) and high_base["val_present"] == 40
    assert rows[1]["mre_mean"] == pytest.approx(1.95)
    md = validation_markdown(rows)
    assert "| high | AFL | 2 | 1, 1 | 3.0 ± 0.0 (3, 3) | 40 | 1.950 ± 0.071 | yes |" in md
    assert f"n/a (not found: {tmp_path / 'nothing' / 'metrics.csv'})" in md
    assert "| low | baseline | 1 | 1 | 5.0 (5) | 40 | 2.000 | yes |" in md  # one seed: no spread to show
