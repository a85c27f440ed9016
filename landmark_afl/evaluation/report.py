"""Evaluation output folders (report.json, report.md, per_image.csv) and the side-by-side table of several runs.

``report.json`` of ``landmark-afl evaluate`` (format ``landmark-afl-evaluation``, version 1)::

    run, checkpoint, which, epoch, afl, trained_protocol, seed, data, dataset_name, split, landmarks,
    threshold, threshold_note,
    protocols: {NAME: {n_images, n_failed, failed: [{image, reason}], error_unit ("mm", "px" or "mixed"),
                       spacing_sources, present, detected, false_negatives, absent, false_positives,
                       mre_mm, sd_mm, mre_px, sdr: {"2", "2.5", "3", "4"} (% of measured landmarks),
                       mre_all_mm, sd_all_mm, mre_all_px, sdr_all (the same over every present landmark),
                       per_landmark: [{landmark, <the same count and error fields>}],
                       sweep: {thresholds, false_negatives, false_positives, present, absent}}}

Counts are landmark instances over the images of the split: ``present = detected + false_negatives`` and a false
positive is an absent landmark whose peak reaches the threshold. ``mre_mm`` / ``sdr`` cover present and detected
landmarks with a known pixel spacing (``null`` when none is known: then ``mre_px`` is the figure to read).
``mre_all_mm`` / ``sdr_all`` are the ISBI 2015 challenge's figures: every present landmark at its heatmap's argmax,
detected or not (the figures to put beside published results; a false negative counts with its error there).

The side-by-side table (``landmark-afl report``, ``compare``) has one row per run label x protocol, in the spirit of
the paper's Table 3: false negatives, landmarks present, the change in false negatives relative to the FIRST label
under the same protocol (%), false positives, MRE and SDR. Reports with the same label are pooled: each figure is
the mean over them, with the standard deviation beside it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from landmark_afl.engine.atomic import write_atomic
from landmark_afl.evaluation.evaluator import Evaluation, summarize_result
from landmark_afl.evaluation.plots import pool_by_label
from landmark_afl.evaluation.tables import markdown_table
from landmark_afl.metrics.sweep import DEFAULT_THRESHOLDS, threshold_sweep

REPORT_FORMAT = "landmark-afl-evaluation"
REPORT_VERSION = 1
SDR_KEYS = ("2", "2.5", "3", "4")
PER_IMAGE_FIELDS = (
    "protocol", "image", "landmark", "present", "detected", "false_negative", "false_positive", "peak",
    "error_mm", "error_px", "pred_x", "pred_y", "gt_x", "gt_y", "spacing_source", "error_all_mm", "error_all_px",
)  # fmt: skip
TABLE_FIELDS = ("label", "protocol", "n_runs", "n_images", "false_negatives", "false_negatives_std", "present",
                "fn_change_pct", "false_positives", "false_positives_std", "mre", "mre_std", "mre_unit",
                *(f"sdr_{r}" for r in SDR_KEYS), *(f"sdr_{r}_std" for r in SDR_KEYS), "mre_all", "mre_all_std",
                *(f"sdr_all_{r}" for r in SDR_KEYS), *(f"sdr_all_{r}_std" for r in SDR_KEYS))  # fmt: skip


def check_out_dir(out: str | Path, force: bool) -> Path:
    """Refuse an ``out`` that is a file, or a non-empty folder without ``force`` (files are then overwritten).

    Raises:
        FileExistsError: with the fix in the message.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"--out {out} exists and is not empty; choose another folder or add --force to overwrite")
    return out


def evaluation_report(ev: Evaluation, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> dict:
    """The ``report.json`` document of an evaluation (see the module docstring)."""
    protocols = {}
    for name, result in ev.results.items():
        entry = summarize_result(result, ev.threshold, ev.landmarks)
        entry["sweep"] = threshold_sweep(result.peaks, np.isfinite(result.gt_xy).all(-1), tuple(thresholds))
        protocols[name] = entry
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "run": str(Path(ev.run_dir).resolve()),  # absolute: read from anywhere (validation_choice)
        "checkpoint": str(ev.checkpoint),
        "which": ev.which,
        "epoch": ev.epoch,
        "afl": ev.afl,
        "trained_protocol": ev.trained_protocol,
        "seed": ev.config.get("seed"),
        "data": str(ev.data_dir),
        "dataset_name": ev.dataset_name,
        "split": ev.split,
        "landmarks": list(ev.landmarks),
        "threshold": ev.threshold,
        "precision": ev.precision,
        "decode": ev.config.get("decode", "parabola"),
        "threshold_note": "detected when the peak heatmap response >= threshold; the training target's peak is 1",
        "protocols": protocols,
    }


def per_image_csv(ev: Evaluation) -> str:
    """One row per protocol x image x landmark (see ``PER_IMAGE_FIELDS``); empty cells for NaN."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PER_IMAGE_FIELDS)
    for name, result in ev.results.items():
        out = result.outcomes(ev.threshold)
        for i, image in enumerate(result.images):
            for j, landmark in enumerate(ev.landmarks):
                writer.writerow([
                    name, image, landmark, int(out["present"][i, j]), int(out["detected"][i, j]),
                    int(out["false_negative"][i, j]), int(out["false_positive"][i, j]), _num(result.peaks[i, j], 5),
                    _num(out["error_mm"][i, j], 4), _num(out["error_px"][i, j], 3),
                    _num(result.pred_xy[i, j, 0], 2), _num(result.pred_xy[i, j, 1], 2),
                    _num(result.gt_xy[i, j, 0], 2), _num(result.gt_xy[i, j, 1], 2), result.spacing_source[i],
                    _num(out["error_all_mm"][i, j], 4), _num(out["error_all_px"][i, j], 3),
                ])  # fmt: skip
    return buf.getvalue()


def _num(value: float, digits: int) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _fmt(value, digits: int, suffix: str = "") -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}{suffix}"


def mre_text(entry: dict, which: str = "") -> str:
    """The MRE cell of a report entry: mm when known, else px; ``which="_all"`` for every present landmark."""
    if entry.get(f"mre{which}_mm") is not None:
        return f"{entry[f'mre{which}_mm']:.2f} mm"
    if entry.get(f"mre{which}_px") is not None:
        return f"{entry[f'mre{which}_px']:.2f} px"
    return "n/a"


def evaluation_markdown(report: dict) -> str:
    """report.md of one evaluation: totals per protocol, then false negatives per landmark."""
    names = list(report["protocols"])
    lines = [
        f"# Evaluation of {Path(report['run']).name} ({report['which']} checkpoint, epoch {report['epoch']})",
        "",
        f"- run: `{report['run']}` ({'AFL' if report['afl'] else 'baseline'}, trained with protocol "
        f"`{report['trained_protocol']}`, seed {report['seed']})",
        f"- data: `{report['data']}` ({report['dataset_name']}), split `{report['split']}`",
        f"- threshold: {report['threshold']:g} ({report['threshold_note']})",
        f"- network precision: {report.get('precision', 'fp32')}",
        f"- sub-pixel decoding: {report.get('decode', 'parabola')} (after the heatmap argmax)",
        "",
        "| protocol | images | present | false negatives | FN % | false positives | absent | MRE | "
        "SDR 2 mm | SDR 2.5 mm | SDR 3 mm | SDR 4 mm |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        e = report["protocols"][name]
        pct = 100.0 * e["false_negatives"] / e["present"] if e["present"] else float("nan")
        sdr = " | ".join(_fmt(e["sdr"][r], 1, suffix=" %") for r in SDR_KEYS)
        lines.append(
            f"| {name} | {e['n_images']} | {e['present']} | {e['false_negatives']} | {_fmt(pct, 1)} | "
            f"{e['false_positives']} | {e['absent']} | {mre_text(e)} | {sdr} |"
        )
    lines += [
        "",
        "MRE and SDR above cover the detected landmarks. Over every present landmark, each at its heatmap's argmax "
        "whether detected or not (the ISBI 2015 challenge's rule, comparable with published figures):",
        "",
        "| protocol | present | MRE (all) | SDR 2 mm | SDR 2.5 mm | SDR 3 mm | SDR 4 mm |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        e = report["protocols"][name]
        sdr = " | ".join(_fmt(e.get("sdr_all", {}).get(r), 1, suffix=" %") for r in SDR_KEYS)
        lines.append(f"| {name} | {e['present']} | {mre_text(e, '_all')} | {sdr} |")
    failed = [(n, f) for n in names for f in report["protocols"][n]["failed"]]
    if failed:
        lines += ["", "Images that could not be read (left out):", ""]
        lines += [f"- {n}: `{f['image']}`: {f['reason']}" for n, f in failed]
    lines += ["", "## False negatives per landmark", "", "| landmark | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    for j, landmark in enumerate(report["landmarks"]):
        cells = []
        for n in names:
            e = report["protocols"][n]["per_landmark"][j]
            cells.append(f"{e['false_negatives']} / {e['present']}")
        lines.append(f"| {landmark} | " + " | ".join(cells) + " |")
    lines += ["", "Threshold sweep (false negatives / false positives):", ""]
    thresholds = report["protocols"][names[0]]["sweep"]["thresholds"]
    lines.append("| threshold | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for t, thr in enumerate(thresholds):
        sweeps = [report["protocols"][n]["sweep"] for n in names]
        cells = [f"{s['false_negatives'][t]} / {s['false_positives'][t]}" for s in sweeps]
        lines.append(f"| {thr:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_evaluation(ev: Evaluation, out: Path) -> dict:
    """Write report.json, report.md, per_image.csv, sweep.png (and the run's difficulty.png) into ``out``."""
    from landmark_afl.evaluation.sweep_plot import plot_sweeps

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = evaluation_report(ev)
    write_atomic(out / "per_image.csv", per_image_csv(ev))
    curves = {name: entry["sweep"] for name, entry in report["protocols"].items()}
    plot_sweeps(curves, out / "sweep.png", ev.threshold, f"{Path(report['run']).name}: FN (solid) / FP (dashed)")
    if (ev.run_dir / "difficulty.png").is_file():
        shutil.copyfile(ev.run_dir / "difficulty.png", out / ".difficulty.png.tmp")
        os.replace(out / ".difficulty.png.tmp", out / "difficulty.png")
    write_atomic(out / "report.md", evaluation_markdown(report))
    write_atomic(out / "report.json", json.dumps(report, indent=1, allow_nan=False))  # last: marks completion
    return report


def load_report(path: str | Path) -> dict:
    """report.json of an evaluation folder (or the file itself).

    Raises:
        FileNotFoundError / ValueError: no report, or not a landmark-afl evaluation report.
    """
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist; run `landmark-afl evaluate RUN --out {path}` first")
    report = json.loads(file.read_text(encoding="utf-8"))
    if report.get("format") != REPORT_FORMAT:
        raise ValueError(f"{file} is not a landmark-afl evaluation report (format {report.get('format')!r})")
    return report


def _stats(values: list) -> tuple[float | None, float | None]:
    vals = np.array([v for v in values if v is not None], np.float64)
    if not len(vals):
        return None, None
    return float(vals.mean()), (float(vals.std(ddof=1)) if len(vals) > 1 else None)


def side_by_side(entries: Sequence[tuple[str, dict]]) -> list[dict]:
    """Rows of the side-by-side table from (label, report.json) pairs.

    Rows are ordered by protocol (in order of first appearance), then by label (in order of first appearance).
    Reports sharing a label are pooled (mean, sample std). ``fn_change_pct`` is
    ``100 * (FN - FN_ref) / FN_ref`` with FN_ref the (mean) false negatives of the first label under the same
    protocol; None for that first label itself and when FN_ref is 0 (unless FN is 0 too: then 0).
    """
    labels, protocols, groups = pool_by_label(entries)
    rows = []
    for name in protocols:
        ref = None
        for label in labels:
            items = groups.get((name, label))
            if not items:
                continue
            units = {"mm" if e.get("mre_mm") is not None else "px" for e in items}
            unit = "mm" if units == {"mm"} else "px"
            row = {"label": label, "protocol": name, "n_runs": len(items)}
            row["n_images"] = _stats([e["n_images"] for e in items])[0]
            row["false_negatives"], row["false_negatives_std"] = _stats([e["false_negatives"] for e in items])
            row["present"] = _stats([e["present"] for e in items])[0]
            row["false_positives"], row["false_positives_std"] = _stats([e["false_positives"] for e in items])
            row["mre"], row["mre_std"] = _stats([e["mre_mm"] if unit == "mm" else e["mre_px"] for e in items])
            row["mre_unit"] = unit
            for r in SDR_KEYS:
                row[f"sdr_{r}"], row[f"sdr_{r}_std"] = _stats([e["sdr"][r] for e in items])
            # every present landmark (the challenge's figures); None for reports written before they existed
            row["mre_all"], row["mre_all_std"] = _stats(
                [e.get("mre_all_mm") if unit == "mm" else e.get("mre_all_px") for e in items]
            )
            for r in SDR_KEYS:
                row[f"sdr_all_{r}"], row[f"sdr_all_{r}_std"] = _stats([e.get("sdr_all", {}).get(r) for e in items])
            if ref is None:
                ref = row["false_negatives"]
                row["fn_change_pct"] = None
            elif ref == 0:
                row["fn_change_pct"] = 0.0 if row["false_negatives"] == 0 else None
            else:
                row["fn_change_pct"] = 100.0 * (row["false_negatives"] - ref) / ref
            rows.append({k: row.get(k) for k in TABLE_FIELDS})
    return rows


def _pm(row: dict, key: str, digits: int, suffix: str = "") -> str:
    value, std = row[key], row.get(f"{key}_std")
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")
    return text + suffix


def table_cells(row: dict) -> list[str]:
    """The display cells of one side-by-side row (shared by Markdown and HTML); needs ``mark_references``."""
    many = row["n_runs"] > 1
    if row.get("_is_ref"):
        change = "reference"
    elif row["fn_change_pct"] is None:
        change = "n/a (reference 0)"
    else:
        change = f"{row['fn_change_pct']:+.1f} %"
    return [
        row["label"] + (f" (n={row['n_runs']})" if many else ""),
        row["protocol"],
        _pm(row, "false_negatives", 1 if many else 0),
        f"{row['present']:g}",
        change,
        _pm(row, "false_positives", 1 if many else 0),
        _pm(row, "mre", 2, f" {row['mre_unit']}"),
        *(_pm(row, f"sdr_{r}", 1, " %") for r in SDR_KEYS),
        _pm(row, "mre_all", 2, f" {row['mre_unit']}"),
        " / ".join(_fmt(row.get(f"sdr_all_{r}"), 1) for r in SDR_KEYS),
    ]


TABLE_HEADER = ("run", "protocol", "false negatives", "present", "FN change", "false positives", "MRE",
                "SDR 2 mm", "SDR 2.5 mm", "SDR 3 mm", "SDR 4 mm", "MRE (all)",
                "SDR (all) 2 / 2.5 / 3 / 4 mm, %")  # fmt: skip


def mark_references(rows: list[dict]) -> list[dict]:
    """Flag the first row of each protocol (the reference of the FN change) as ``_is_ref``."""
    seen = set()
    for row in rows:
        row["_is_ref"] = row["protocol"] not in seen
        seen.add(row["protocol"])
    return rows


def table_markdown(rows: list[dict]) -> str:
    rows = mark_references([dict(r) for r in rows])
    return markdown_table(TABLE_HEADER, [table_cells(r) for r in rows])


def table_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, TABLE_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()
