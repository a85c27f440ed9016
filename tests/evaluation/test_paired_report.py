"""The paired table of a comparison, from per_image.csv files written by hand."""

from __future__ import annotations

import csv

from landmark_afl.evaluation.paired_report import paired_markdown, paired_rows, per_image_totals

FIELDS = ["protocol", "image", "landmark", "present", "detected", "false_negative", "false_positive", "peak",
          "error_mm", "error_px", "pred_x", "pred_y", "gt_x", "gt_y", "spacing_source"]  # fmt: skip


def _write(folder, misses: dict[str, int], error: float):
    folder.mkdir(parents=True)
    with (folder / "per_image.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        for image, n_miss in misses.items():
            for k in range(4):
                fn = int(k < n_miss)
                w.writerow(["high", image, f"l{k}", 1, 1 - fn, fn, 0, 0.9, "" if fn else error, 1.0, 0, 0, 0, 0, "x"])
    return folder


def test_totals_and_rows(tmp_path):
    images = {f"im{i}": 2 for i in range(10)}
    evals = {}
    for seed in (0, 1):
        evals[("high", "baseline", seed)] = _write(tmp_path / f"b{seed}", images, 2.0)
        evals[("high", "AFL", seed)] = _write(tmp_path / f"a{seed}", {k: 1 for k in images}, 1.5)
    totals = per_image_totals(tmp_path / "b0", "high")
    assert totals["im0"] == (2, 4.0, 2)  # 2 misses; 2 detected at 2.0 mm
    (row,) = paired_rows(evals, "baseline", n_boot=200)
    assert (row["arm"], row["fn_ref"], row["fn_arm"], row["fn_diff"]) == ("AFL", 20.0, 10.0, -10.0)
    assert row["fn_ci"] == [-10.0, -10.0] and row["fn_significant"]  # every image lost one miss: no spread
    assert row["mre_diff"] == -0.5 and row["seeds"] == [0, 1]
    assert row["present"] == 40 and row["ref_miss_rate"] == 0.5  # 10 images x 4 landmarks, 2 of each 4 missed
    assert "-50 %" in paired_markdown([row]) and "| 20.0 (50.0 % missed) | 10.0 |" in paired_markdown([row])


def test_a_first_release_comparison_folder_still_resumes(tmp_path):
    import json

    import pytest

    from landmark_afl.evaluation.compare import CompareSettings, check_settings

    old = {"data": "phantom", "protocols": "all", "seeds": [0], "split": "test", "which": "best", "threshold": None,
           "overrides": []}  # fmt: skip
    (tmp_path / "compare.json").write_text(json.dumps(old))
    check_settings(CompareSettings(seeds=[0], split="test"), tmp_path)  # the same comparison: accepted
    with pytest.raises(ValueError, match="seeds differ"):
        check_settings(CompareSettings(seeds=[1], split="test"), tmp_path)
