import csv

import matplotlib.colors as mcolors
import numpy as np
import pytest

from landmark_afl.afl.difficulty_report import (
    difficulty_figure,
    plot_difficulty,
    read_difficulty,
    tracked_images,
    write_difficulty_report,
)


def _write_csv(path, n_images=10, epochs=12, with_score=True):
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "image", "score", "base_loss"])
        for e in range(1, epochs + 1):
            for i in range(n_images):
                level = 0.1 + 0.8 * i / (n_images - 1)  # image i's score settles at `level`
                score = level + (0.5 - level) * np.exp(-e / 3) + rng.normal(0, 0.02)
                for _ in range(2):  # two rows per epoch (the mean is plotted)
                    w.writerow([e, f"img_{i:03d}", f"{score:.4f}" if with_score else "", f"{1 - level:.4f}"])


def test_tracked_images_are_the_extremes_without_repeats():
    per_image = {f"i{k}": {1: (k / 10, 0.0)} for k in range(4)}
    assert tracked_images(per_image, 3) == [("easiest", "i0"), ("easiest", "i1"), ("easiest", "i2"), ("hardest", "i3")]
    assert tracked_images(per_image, 1) == [("easiest", "i0"), ("hardest", "i3")]


def test_plot_is_readable(tmp_path):
    _write_csv(tmp_path / "difficulty.csv")
    per_image = read_difficulty(tmp_path / "difficulty.csv")
    fig = difficulty_figure(per_image, n_track=3)
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    tracked = ["img_000", "img_001", "img_002", "img_009", "img_008", "img_007"]
    for img in tracked:  # a legend entry per tracked image, naming it
        assert sum(img in n for n in names) == 1
    assert any("mean of all 10 images" in n for n in names)
    # each tracked image its own colour (its raw and smoothed lines share it)
    colours = {}
    for line in ax.get_lines():
        if any(img in line.get_label() for img in tracked):
            colours[line.get_label()] = mcolors.to_hex(line.get_color())
    assert len(colours) == 6 and len(set(colours.values())) == 6
    assert ax.get_ylim() == (0.0, 1.0)
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert plot_difficulty(per_image, tmp_path / "difficulty.png")
    assert (tmp_path / "difficulty.png").stat().st_size > 10_000


def test_fixed_axis_even_when_scores_collapse(tmp_path):
    per_image = {f"i{k}": {e: (0.01 * k / e, 0.0) for e in range(1, 4)} for k in range(5)}
    assert difficulty_figure(per_image).axes[0].get_ylim() == (0.0, 1.0)


def test_runs_without_scores_have_no_plot(tmp_path):
    _write_csv(tmp_path / "difficulty.csv", with_score=False)
    summary = write_difficulty_report(tmp_path, None)
    assert summary["plot"] is None and not (tmp_path / "difficulty.png").exists()


def test_report_writes_plot_and_summary(tmp_path):
    _write_csv(tmp_path / "difficulty.csv")
    summary = write_difficulty_report(tmp_path, None)
    assert summary["plot"] == "difficulty.png" and (tmp_path / "difficulty_summary.json").is_file()
    with pytest.raises(FileNotFoundError):
        write_difficulty_report(tmp_path / "missing", None)
