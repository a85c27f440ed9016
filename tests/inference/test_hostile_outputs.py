"""predict with file names no one expects and with damaged output files: nothing lost, nothing blocked."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from landmark_afl.cli import main
from landmark_afl.inference.writer import input_path, output_path
from tests.run_fixture import make_untrained_run

LANDMARKS = ["a", "b", "c"]
NAMES = [b"caf\xe9.png", b"line\nbreak.png", b'quote"d, comma.png', b"50%.png", "ünï.png".encode(), b"plain.png"]


def _csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    run = make_untrained_run(root / "run", LANDMARKS)
    folder = root / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in NAMES:
        ok, png = cv2.imencode(".png", (rng.random((80, 64)) * 65535).astype(np.uint16))
        assert ok
        with open(os.path.join(os.fsencode(folder), name), "wb") as f:
            f.write(png.tobytes())
    return root, run, folder


def test_output_path_round_trips_every_name_and_leaves_plain_ones_alone():
    for name in [*NAMES, b"\x01\x7f", b"%41", "日本.dcm".encode()]:
        path = os.fsdecode(b"/in/" + name)
        text = output_path(path)
        assert text.isprintable() and "\n" not in text
        text.encode("utf-8")  # always valid UTF-8
        assert input_path(text) == path
    assert output_path("/data/x 1.dcm") == "/data/x 1.dcm"


def test_names_that_are_not_utf8_or_hold_newlines_are_predicted_written_and_resumed(setup, tmp_path, capsys):
    root, run, folder = setup
    out = tmp_path / "out"
    args = ["predict", str(run), str(folder), "--out", str(out), "--no-progress", "--workers", "0", "--overlays"]
    assert main(args) == 0
    rows = _csv(out / "results.csv")
    written = {input_path(r["path"]) for r in rows}
    assert written == {os.fsdecode(os.path.join(os.fsencode(folder), n)) for n in NAMES}
    assert any(r["path"].endswith("caf%E9.png") for r in rows)
    assert any(r["path"].endswith("line%0Abreak.png") for r in rows)
    jsonl = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [j["path"] for j in jsonl] == [r["path"] for r in rows]
    assert len(list((out / "overlays").rglob("*.png"))) == len(NAMES)
    capsys.readouterr()
    assert main(args) == 0  # a rerun finds every image done
    assert f"{len(NAMES)} already done, 0 processed" in " ".join(capsys.readouterr().err.split())


def test_damaged_rows_and_lines_are_dropped_and_only_those_images_redone(setup, tmp_path, capsys):
    root, run, folder = setup
    out = tmp_path / "out"
    args = ["predict", str(run), str(folder), "--out", str(out), "--no-progress", "--workers", "0"]
    assert main(args) == 0
    before = _csv(out / "results.csv")
    # a whole but corrupted jsonl line, and a block of NUL bytes appended to results.csv (a crash on ext4)
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = '{"path": "' + before[1]["path"][:5] + "\n"
    (out / "results.jsonl").write_text("".join(lines), encoding="utf-8")
    with (out / "results.csv").open("ab") as f:
        f.write(b"\0" * 512 + b"\n")
    capsys.readouterr()
    assert main(args) == 0
    assert "5 already done, 1 processed" in " ".join(capsys.readouterr().err.split())  # the damaged one only
    after = _csv(out / "results.csv")
    assert [r["path"] for r in after] == [r["path"] for r in before]
    assert len((out / "results.jsonl").read_text(encoding="utf-8").splitlines()) == len(NAMES)
