"""``landmark-afl protocols list | show | preview`` through the dispatcher."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from landmark_afl.cli import main
from landmark_afl.protocols import SHIPPED, load_protocol


def test_list_one_line_each_in_order(capsys):
    assert main(["protocols", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines][:4] == list(SHIPPED)
    assert load_protocol("low").description in lines[2]


def test_show_prints_every_parameter(capsys):
    assert main(["protocols", "show", "higher"]) == 0
    out = capsys.readouterr().out
    for step in load_protocol("higher").steps:
        assert step.name in out
        for key, value in step.params.items():
            assert f"{key}: {value!r}" in out


def test_show_unknown_is_usage_error(capsys):
    assert main(["protocols", "show", "hihg"]) == 2
    assert "did you mean 'high'" in capsys.readouterr().err


@pytest.fixture
def png(tmp_path):
    yy, xx = np.mgrid[0:240, 0:200]
    img = (120 + 80 * np.sin(xx / 12.0) * np.cos(yy / 20.0)).astype(np.uint8)
    path = tmp_path / "input.png"
    cv2.imwrite(str(path), img)
    return path


def test_preview_writes_grid_and_refuses_overwrite(png, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["protocols", "preview", str(png), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[1] > 3 * grid.shape[0] / 2  # four panels side by side
    for name in SHIPPED:
        assert name in text
    stamp = out.stat().st_mtime_ns
    assert main(["protocols", "preview", str(png), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == stamp
    assert main(["protocols", "preview", str(png), "--out", str(out), "--force", "--protocols", "high,low"]) == 0
    lines = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:3]]
    assert lines == ["high", "low"]


def test_preview_bad_inputs(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    assert main(["protocols", "preview", str(broken), "--out", str(tmp_path / "a.png")]) == 1
    assert "broken.png" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()
    assert main(["protocols", "preview", str(tmp_path / "nope.png"), "--out", str(tmp_path / "b.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    good = tmp_path / "g.png"
    cv2.imwrite(str(good), np.zeros((8, 8), np.uint8))
    assert main(["protocols", "preview", str(good), "--out", str(tmp_path / "c.png"), "--protocols", "hihg"]) == 2
    assert "did you mean 'high'" in capsys.readouterr().err
