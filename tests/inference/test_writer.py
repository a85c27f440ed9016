from __future__ import annotations

import csv
import json

import pytest

from landmark_afl.inference.writer import (
    ERRORS_CSV,
    RESULTS_CSV,
    RESULTS_JSONL,
    OutputWriter,
    done_paths,
    finalize,
    repair_dir,
    repair_tail,
)

HEADER = ["path", "value"]


def _write(folder, paths, errors=()):
    w = OutputWriter(folder, HEADER)
    for p in paths:
        w.write_result([p, len(p)], {"path": p, "value": len(p)})
    for p in errors:
        w.write_error(p, "ImageReadError", f"{p}: broken,\nreally")
    w.close()


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.reader(f))


def test_rows_append_and_resume_reads_results_and_errors(tmp_path):
    _write(tmp_path, ["/a", "/b"], errors=["/c"])
    _write(tmp_path, ["/d"])  # a second writer appends, the header is written once
    assert _rows(tmp_path / RESULTS_CSV) == [HEADER, ["/a", "2"], ["/b", "2"], ["/d", "2"]]
    assert _rows(tmp_path / ERRORS_CSV) == [
        ["path", "error_type", "message"],
        ["/c", "ImageReadError", "/c: broken, really"],
    ]
    assert done_paths(tmp_path) == {"/a", "/b", "/c", "/d"}


def test_truncated_last_line_from_a_kill_is_dropped(tmp_path):
    _write(tmp_path, ["/a", "/b"])
    with (tmp_path / RESULTS_CSV).open("ab") as f:
        f.write(b"/half-writ")  # a kill in the middle of a row
    with (tmp_path / RESULTS_JSONL).open("ab") as f:
        f.write(b'{"path": "/half')
    assert repair_tail(tmp_path / RESULTS_CSV)
    assert not repair_tail(tmp_path / RESULTS_CSV)  # nothing left to cut
    repair_dir(tmp_path)
    assert done_paths(tmp_path) == {"/a", "/b"}
    assert [json.loads(line)["path"] for line in (tmp_path / RESULTS_JSONL).read_text().splitlines()] == ["/a", "/b"]
    _write(tmp_path, ["/c"])  # appending after the repair gives whole rows
    assert [r[0] for r in _rows(tmp_path / RESULTS_CSV)] == ["path", "/a", "/b", "/c"]


def test_jsonl_line_without_its_csv_row_is_dropped(tmp_path):
    _write(tmp_path, ["/a"])
    with (tmp_path / RESULTS_JSONL).open("a") as f:
        f.write(json.dumps({"path": "/killed-before-csv"}) + "\n")
    repair_dir(tmp_path)
    assert [json.loads(x)["path"] for x in (tmp_path / RESULTS_JSONL).read_text().splitlines()] == ["/a"]


def test_finalize_merges_rank_parts_sorted_and_removes_them(tmp_path):
    _write(tmp_path, ["/m"])
    _write(tmp_path / "parts" / "rank-000", ["/a", "/z/b"], errors=["/c"])
    _write(tmp_path / "parts" / "rank-001", ["/b", "/m"])  # "/m" twice: kept once
    finalize(tmp_path, HEADER)
    assert not (tmp_path / "parts").exists()
    paths = [r[0] for r in _rows(tmp_path / RESULTS_CSV)[1:]]
    assert paths == ["/a", "/b", "/m", "/z/b"]
    assert [json.loads(x)["path"] for x in (tmp_path / RESULTS_JSONL).read_text().splitlines()] == paths
    assert [r[0] for r in _rows(tmp_path / ERRORS_CSV)[1:]] == ["/c"]


def test_other_columns_in_out_are_refused(tmp_path):
    _write(tmp_path, ["/a"])
    with pytest.raises(ValueError, match="other columns"):
        OutputWriter(tmp_path, ["path", "other"])


def test_every_jsonl_line_carries_the_schema_and_old_folders_still_resume(tmp_path):
    from landmark_afl.inference.writer import RESULTS_SCHEMA, read_jsonl

    _write(tmp_path, ["/a"])
    (line,) = (tmp_path / RESULTS_JSONL).read_text().splitlines()
    assert line.startswith('{"schema": 1, "path": "/a"') and RESULTS_SCHEMA == 1
    assert json.loads(line) == {"schema": 1, "path": "/a", "value": 2}

    old = tmp_path / "old"  # a folder written before the schema field existed
    old.mkdir()
    (old / RESULTS_CSV).write_text("path,value\n/b,2\n/c,2\n")
    (old / RESULTS_JSONL).write_text("".join(json.dumps({"path": p, "value": 2}) + "\n" for p in ("/b", "/c")))
    before = (old / RESULTS_JSONL).read_text()
    repair_dir(old)
    assert (old / RESULTS_JSONL).read_text() == before  # intact old lines are kept as they are
    assert done_paths(old) == {"/b", "/c"}  # the resume skips them
    _write(old, ["/a"])
    finalize(old, HEADER)  # re-sorted by path: old and new lines together
    records = read_jsonl(old / RESULTS_JSONL)
    assert [(r["path"], r.get("schema")) for r in records] == [("/a", 1), ("/b", None), ("/c", None)]
    assert [r[0] for r in _rows(old / RESULTS_CSV)[1:]] == ["/a", "/b", "/c"]
