"""The side-by-side table against hand computations, and the Markdown / CSV / HTML writers."""

from __future__ import annotations

import csv
import io

import pytest

from landmark_afl.evaluation.html import write_side_by_side
from landmark_afl.evaluation.report import side_by_side, table_csv, table_markdown


def _report(fn: dict[str, int], present: int = 100, mre: float | None = 1.5, fp: int = 0) -> dict:
    """A minimal report.json document with per-protocol totals (2 landmarks)."""
    protocols = {}
    for name, n in fn.items():
        per = [
            {"landmark": lm, "present": present // 2, "detected": present // 2 - f, "false_negatives": f,
             "false_positives": 0, "mre_mm": mre, "mre_px": 3.0, "sdr": dict.fromkeys(("2", "2.5", "3", "4"), 90.0)}
            for lm, f in (("a", n // 2), ("b", n - n // 2))
        ]  # fmt: skip
        protocols[name] = {
            "n_images": 10, "present": present, "detected": present - n, "false_negatives": n, "false_positives": fp,
            "absent": 0, "mre_mm": mre, "mre_px": 3.0, "sdr": {"2": 80.0, "2.5": 85.0, "3": 90.0, "4": 95.0},
            "per_landmark": per, "n_failed": 0, "failed": [], "error_unit": "mm" if mre is not None else "px",
            "sweep": {"thresholds": [0.25, 0.5, 0.75], "false_negatives": [n - 1, n, n + 2],
                      "false_positives": [fp, fp, 0], "present": present, "absent": 1},
        }  # fmt: skip
    return {"landmarks": ["a", "b"], "threshold": 0.5, "protocols": protocols, "run": "/x/run", "afl": False}


def test_relative_change_against_the_first_run_per_protocol():
    entries = [
        ("baseline", _report({"high": 40, "low": 80})),
        ("AFL", _report({"high": 20, "low": 100})),
        ("other", _report({"high": 50})),
    ]
    rows = side_by_side(entries)
    got = {(r["label"], r["protocol"]): r["fn_change_pct"] for r in rows}
    assert got[("baseline", "high")] is None and got[("baseline", "low")] is None
    assert got[("AFL", "high")] == pytest.approx(100 * (20 - 40) / 40)  # -50 %
    assert got[("AFL", "low")] == pytest.approx(100 * (100 - 80) / 80)  # +25 %
    assert got[("other", "high")] == pytest.approx(25.0)
    assert [(r["protocol"], r["label"]) for r in rows] == [
        ("high", "baseline"), ("high", "AFL"), ("high", "other"), ("low", "baseline"), ("low", "AFL"),
    ]  # fmt: skip
    md = table_markdown(rows)
    assert "| AFL | high | 20 | 100 | -50.0 % |" in md
    assert "| baseline | high | 40 | 100 | reference |" in md


def test_same_labels_are_pooled_as_mean_and_sample_std():
    entries = [
        ("baseline", _report({"high": 40}, mre=1.0)),
        ("baseline", _report({"high": 50}, mre=2.0)),
        ("AFL", _report({"high": 20}, mre=1.5)),
        ("AFL", _report({"high": 30}, mre=1.5)),
    ]
    rows = side_by_side(entries)
    base, afl = rows
    assert (
        base["n_runs"] == 2
        and base["false_negatives"] == 45
        and base["false_negatives_std"] == pytest.approx(7.0710678)
    )
    assert base["mre"] == pytest.approx(1.5) and base["mre_unit"] == "mm"
    assert afl["fn_change_pct"] == pytest.approx(100 * (25 - 45) / 45)
    parsed = list(csv.DictReader(io.StringIO(table_csv(rows))))
    assert float(parsed[1]["false_negatives"]) == 25 and parsed[0]["fn_change_pct"] == ""
    assert "45.0 ± 7.1" in table_markdown(rows)


def test_zero_reference_and_pixel_units():
    rows = side_by_side([("a", _report({"high": 0}, mre=None)), ("b", _report({"high": 3}, mre=None))])
    assert rows[1]["fn_change_pct"] is None
    assert rows[0]["mre_unit"] == "px" and rows[0]["mre"] == 3.0
    assert "n/a (reference 0)" in table_markdown(rows) and "3.00 px" in table_markdown(rows)


def test_side_by_side_folder_is_self_contained(tmp_path):
    entries = [("baseline", _report({"high": 40, "low": 10})), ("AFL", _report({"high": 20, "low": 5}))]
    rows = write_side_by_side(tmp_path, entries, [("baseline", "/x"), ("AFL", "/y")], [("AFL run", b"\x89PNG")])
    assert len(rows) == 4
    for name in ("report.md", "report.csv", "report.json", "report.html", "fn_per_landmark.png"):
        assert (tmp_path / name).is_file()
    page = (tmp_path / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "-50.0 %" in page
