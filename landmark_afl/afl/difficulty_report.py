"""Difficulty scores over training (the paper's Figure 3) and their agreement with the phantom's known hardness.

``difficulty.csv`` holds one row per training sample per epoch (epoch, image, score, base_loss). The plot shows
the score over epochs for the easiest and hardest tracked images (ranked by their mean score over the last quarter
of the epochs), raw and smoothed. Where the data set records per-image hardness (the phantom's ``hardness.csv``),
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


def plot_difficulty(per_image: dict, out_png: Path, n_track: int = 3) -> bool:
    """Score over epochs for the n easiest and n hardest images (raw: thin, smoothed: thick). False if no scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    final = {k: v for k, v in final_difficulty(per_image, 0).items() if np.isfinite(v)}
    if not final:
        return False
    ranked = sorted(final, key=final.get)
    tracked = [("easiest", img, "tab:blue") for img in ranked[:n_track]]
    tracked += [("hardest", img, "tab:red") for img in ranked[::-1][:n_track]]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for label, img, color in tracked:
        epochs = np.array(sorted(per_image[img]))
        scores = np.array([per_image[img][e][0] for e in epochs])
        ax.plot(epochs, scores, color=color, alpha=0.3, linewidth=1, marker="o", markersize=3)
        ax.plot(epochs, _smooth(scores, 3), color=color, linewidth=2, label=f"{label}: {img}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("difficulty score sigmoid(-critic)")
    ax.set_title("AFL difficulty scores of the easiest and hardest training images (thin: raw, thick: smoothed)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
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
