"""The versioned files of ``landmark-afl report`` / ``compare``: report.json's format and version, report.csv's
documented header, counts as integers (whole pooled means too), the classification comparison's report.json."""

from __future__ import annotations

import csv
import json

from landmark_afl.evaluation.html import write_side_by_side
from landmark_afl.evaluation.report import TABLE_FIELDS
from landmark_afl.evaluation.side_by_side import COUNT_FIELDS, SIDE_BY_SIDE_FORMAT, SIDE_BY_SIDE_VERSION
from tests.evaluation.test_report import _report


def test_report_json_has_format_version_columns_and_integer_counts(tmp_path):
    entries = [("baseline", _report({"high": 40})), ("AFL", _report({"high": 21})), ("AFL", _report({"high": 24}))]
    write_side_by_side(tmp_path, entries, [("baseline", "/x"), ("AFL", "/y"), ("AFL", "/z")], title="t")
    doc = json.loads((tmp_path / "report.json").read_text())
    assert (
        (doc["format"], doc["version"])
        == (SIDE_BY_SIDE_FORMAT, SIDE_BY_SIDE_VERSION)
        == ("landmark-afl-side-by-side", 1)
    )
    assert doc["title"] == "t" and doc["columns"] == list(TABLE_FIELDS)
    assert all(list(row) == doc["columns"] for row in doc["rows"])
    single, pooled = doc["rows"]
    for key in COUNT_FIELDS:
        assert type(single[key]) is int, key  # 40, not 40.0
    assert (pooled["n_runs"], pooled["n_images"], pooled["present"]) == (2, 10, 100)
    assert type(pooled["present"]) is int and pooled["false_negatives"] == 22.5  # the mean of 21 and 24
    assert doc["inputs"] == [{"label": "baseline", "source": "/x"}, {"label": "AFL", "source": "/y"},
                             {"label": "AFL", "source": "/z"}]  # fmt: skip


def test_report_csv_header_is_the_documented_columns_and_counts_print_as_integers(tmp_path):
    write_side_by_side(tmp_path, [("baseline", _report({"high": 40})), ("AFL", _report({"high": 20}))])
    with (tmp_path / "report.csv").open(newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == list(TABLE_FIELDS)
    row = dict(zip(lines[0], lines[1], strict=True))
    assert (row["n_runs"], row["n_images"], row["false_negatives"], row["present"]) == ("1", "10", "40", "100")
    assert row["fn_change_pct"] == "" and dict(zip(lines[0], lines[2], strict=True))["fn_change_pct"] == "-50.0"


def test_the_task_comparison_report_json_is_versioned(tmp_path):
    from landmark_afl.cli import main

    out = tmp_path / "cmp"
    argv = ["compare", "--task", "digits", "--seeds", "0", "--epochs", "1", "--out", str(out), "batch_size=64",
            "--arm", "focal: loss=focal"]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads((out / "report" / "report.json").read_text())
    assert (doc["format"], doc["version"]) == ("landmark-afl-task-comparison", 1)
    assert [a["arm"] for a in doc["arms"]] == ["ce", "focal"] and type(doc["arms"][0]["n_seeds"]) is int
