"""Difficulty scores over training (the paper's Figure 3) and their agreement with the phantom's known hardness.

``difficulty.csv`` holds one row per training sample per epoch (epoch, image, score, base_loss). The plot shows
the score over epochs for the easiest and hardest tracked images (ranked by their mean score over the last quarter
of the epochs), raw and smoothed, each in its own colour named in the legend, with the mean over all images, integer
epochs and a fixed [0, 1] score axis. Where the data set records per-image hardness (the phantom's ``hardness.csv``),
the Spearman rank correlation between the final difficulty and the hardness is reported, for the critic's score and,
for comparison, for the base loss.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from landmark_afl.engine.atomic import write_atomic


def read_difficulty(path: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """image -> epoch -> (mean score, mean base loss); score NaN for runs without AFL."""
    acc: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            score = float(row["score"]) if row.get("score") not in ("", None) else np.nan
            acc[row["image"]][int(row["epoch"])].append((score, float(row["base_loss"])))
    return {img: {e: tuple(np.mean(v, axis=0)) for e, v in epochs.items()} for img, epochs in acc.items()}


def final_difficulty(per_image: dict, column: int = 0) -> dict[str, float]:
    """Mean of a column (0 score, 1 base loss) over the last quarter of each image's epochs."""
    out = {}
    for img, epochs in per_image.items():
        keys = sorted(epochs)
        tail = keys[-max(1, len(keys) // 4) :]
        out[img] = float(np.mean([epochs[e][column] for e in tail]))
    return out


def read_hardness(data_dir: Path) -> dict[str, dict[str, float]] | None:
    path = Path(data_dir) / "hardness.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        return {row["image"]: {k: float(v) for k, v in row.items() if k != "image"} for row in csv.DictReader(f)}


def hardness_agreement(per_image: dict, hardness: dict[str, dict[str, float]]) -> dict:
    """Spearman correlations of final score / base loss with the recorded hardness, and per-factor mean scores."""
    from scipy.stats import spearmanr

    result: dict = {}
    for name, column in (("score", 0), ("base_loss", 1)):
        final = final_difficulty(per_image, column)
        images = sorted(img for img in final if img in hardness and np.isfinite(final[img]))
        if len(images) < 3:
            continue
        values = np.array([final[i] for i in images])
        hard = np.array([hardness[i]["hardness"] for i in images])
        if np.ptp(values) == 0 or np.ptp(hard) == 0:  # a rank correlation is undefined (e.g. collapsed scores)
            entry = {
                "spearman_rho": None,
                "p_value": None,
                "n_images": len(images),
                "factors": {},
                "note": "constant " + ("scores" if np.ptp(values) == 0 else "hardness") + ": no correlation",
            }
        else:
            rho, p = spearmanr(values, hard)
            entry = {"spearman_rho": float(rho), "p_value": float(p), "n_images": len(images), "factors": {}}
        for factor in sorted(next(iter(hardness.values()))):
            if factor in ("hardness", "n_absent"):
                continue
            flag = np.array([hardness[i][factor] > 0 for i in images])
            if flag.any() and (~flag).any():
                entry["factors"][factor] = {
                    "n": int(flag.sum()),
                    "mean_with": float(values[flag].mean()),
                    "mean_without": float(values[~flag].mean()),
                }
        result[name] = entry
    return result


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < 2:
        return values
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    padded = np.pad(values, (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def tracked_images(per_image: dict, n_track: int = 3) -> list[tuple[str, str]]:
    """``[("easiest", image), ..., ("hardest", image), ...]``: the n lowest and n highest final scores, no repeats."""
    final = {k: v for k, v in final_difficulty(per_image, 0).items() if np.isfinite(v)}
    ranked = sorted(final, key=lambda img: (final[img], img))
    easiest = ranked[:n_track]
    hardest = [img for img in ranked[::-1] if img not in easiest][:n_track]
    return [("easiest", img) for img in easiest] + [("hardest", img) for img in hardest]


def difficulty_figure(per_image: dict, n_track: int = 3):
    """The matplotlib figure of ``plot_difficulty``, or None when no image has a score (a run without AFL).

    Each tracked image has its own colour and a legend entry naming it (hardest solid, easiest dashed; raw scores
    thin with markers, smoothed thick), the mean over all images is the grey line, the epochs are integers and the
    score axis is fixed at [0, 1], so plots of different runs compare at a glance.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    tracked = tracked_images(per_image, n_track)
    if not tracked:
        return None
    colours = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    all_epochs = sorted({e for epochs in per_image.values() for e in epochs})
    mean = [np.nanmean([v[e][0] for v in per_image.values() if e in v]) for e in all_epochs]
    ax.plot(all_epochs, mean, color="0.45", linewidth=3, alpha=0.6, label=f"mean of all {len(per_image)} images")
    for i, (group, img) in enumerate(tracked):
        colour = colours[i % len(colours)]
        style = "-" if group == "hardest" else "--"
        epochs = np.array(sorted(per_image[img]))
        scores = np.array([per_image[img][e][0] for e in epochs])
        ax.plot(epochs, scores, color=colour, alpha=0.35, linewidth=1, marker="o", markersize=3)
        ax.plot(epochs, _smooth(scores, 3), color=colour, linestyle=style, linewidth=2.2, label=f"{group}: {img}")
    ax.set_ylim(0, 1)
    ax.set_xlim(all_epochs[0] - 0.5, all_epochs[-1] + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("difficulty score  sigmoid(-critic)")
    ax.set_title(
        f"AFL difficulty of the {sum(g == 'easiest' for g, _ in tracked)} easiest and "
        f"{sum(g == 'hardest' for g, _ in tracked)} hardest training images (by the last quarter of the epochs)\n"
        "thin: per epoch, thick: smoothed over 3 epochs",
        fontsize=10,
    )
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: (labels[i].startswith("easiest"), i))  # top to bottom
    ax.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0,
        title="image",
        title_fontsize=8,
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_difficulty(per_image: dict, out_png: Path, n_track: int = 3) -> bool:
    """Write ``difficulty_figure`` to ``out_png`` (atomically). False if no image has a score."""
    fig = difficulty_figure(per_image, n_track)
    if fig is None:
        return False
    import matplotlib.pyplot as plt

    out_png = Path(out_png)
    tmp = out_png.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out_png)
    return True


def write_difficulty_report(run_dir: Path, data_dir: Path | None) -> dict:
    """difficulty.png and difficulty_summary.json in the run folder; returns the summary."""
    run_dir = Path(run_dir)
    per_image = read_difficulty(run_dir / "difficulty.csv")
    summary: dict = {"plot": None, "hardness": None}
    if plot_difficulty(per_image, run_dir / "difficulty.png"):
        summary["plot"] = "difficulty.png"
    hardness = read_hardness(data_dir) if data_dir is not None else None
    if hardness:
        summary["hardness"] = hardness_agreement(per_image, hardness)
    write_atomic(run_dir / "difficulty_summary.json", json.dumps(summary, indent=2))
    return summary
