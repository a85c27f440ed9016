"""``check_dataset`` and ``landmark-afl data check``: pass on the phantom, list every problem on a broken copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from landmark_afl.cli import main
from landmark_afl.data.check import check_dataset


def test_phantom_passes(small_phantom: Path, capsys: pytest.CaptureFixture) -> None:
    assert check_dataset(small_phantom) == []
    assert main(["data", "check", str(small_phantom)]) == 0
    out = capsys.readouterr().out
    assert "is OK" in out and "ImagerPixelSpacing 6" in out and "landmarks (K)" in out


def test_broken_copy_lists_every_problem(small_phantom: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = Path(shutil.copytree(small_phantom, tmp_path / "broken"))
    images = sorted((root / "images").iterdir())
    images[0].write_bytes(images[0].read_bytes()[:600])  # truncated DICOM
    (root / "images" / "extra.dcm").write_bytes(images[1].read_bytes())  # an image without landmark rows
    lines = (root / "landmarks.csv").read_text().splitlines()
    image, name, _, _ = lines[1].split(",")
    moved = next(i for i, line in enumerate(lines) if line.startswith(images[1].name))  # a readable image
    lines[moved] = ",".join(lines[moved].split(",")[:2] + ["-40", "12"])  # outside the image
    lines.append(lines[1])  # duplicate of line 2
    lines.append(f"{image},pinky_tip,1,2")  # unknown landmark
    (root / "landmarks.csv").write_text("\n".join(lines) + "\n")
    doc = yaml.safe_load((root / "dataset.yaml").read_text())
    doc["splits"]["test"].append("missing.dcm")
    (root / "dataset.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    problems = check_dataset(root)
    messages = [str(p) for p in problems]
    n = len(lines)
    expected = [
        f"{images[0]}: unreadable",
        f"landmarks.csv:{moved + 1}: landmark '{lines[moved].split(',')[1]}' of '{images[1].name}' at (x=-40, y=12)",
        f"landmarks.csv:{n - 1}: duplicate row for ({image}, {name}), first at line 2",
        f"landmarks.csv:{n}: unknown landmark 'pinky_tip'",
        "split 'test' names 1 image(s) not found under images/: missing.dcm",
        "image 'extra.dcm' has no row in landmarks.csv",
    ]
    for text in expected:
        assert sum(text in m for m in messages) == 1, (text, messages)
    assert len(problems) == len(expected)
    assert [p.severity for p in problems if "extra.dcm" in p.message] == ["warning"]

    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "NOT usable" in out and "5 error(s), 1 warning(s)" in out
    for text in expected:
        assert text[-30:] in out.replace("\n", "")


def test_check_prints_the_ceiling_of_the_data_path(small_phantom, capsys):
    from landmark_afl.cli import main
    from landmark_afl.recipes.landmarks import LandmarkConfig, heatmap_ceiling

    assert main(["data", "check", str(small_phantom), "--task", "landmarks", "input_size=[64,64]"]) == 0
    assert "ceiling of the data path at input_size 64x64" in capsys.readouterr().out  # key=value after an option
    # a Gaussian target decoded by the log-parabola refinement loses (almost) nothing; a coarse input costs nothing
    # either, because errors are mapped back to the original pixels exactly
    ceiling = heatmap_ceiling(small_phantom, LandmarkConfig(input_size=(64, 64)))
    assert ceiling["n_images"] > 0 and ceiling["max_px"] < 0.05
    assert main(["data", "check", str(small_phantom), "--task", "nope"]) == 2
