"""The paired table of a comparison: each arm against the reference arm (the baseline), per protocol.

Reads the ``per_image.csv`` of every evaluation (one per arm x protocol x seed), lines the images up, and computes
``landmark_afl.metrics.paired.paired_difference`` over the seeds: the change in false negatives and MRE with a
95 % paired-bootstrap interval over images, and whether it excludes 0.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

import numpy as np

from landmark_afl.evaluation.tables import markdown_table
from landmark_afl.metrics.paired import paired_difference

PAIRED_HEADER = ("protocol", "arm", "seeds", "FN ref", "FN arm", "FN change [95 % CI]", "FN rel.", "MRE ref", "MRE arm",
                 "MRE change [95 % CI]", "significant")  # fmt: skip


def per_image_totals(eval_dir: Path, protocol: str) -> dict[str, tuple[int, float, int]]:
    """image -> (false negatives, sum of radial errors (mm, else px) of detected landmarks, detected landmarks)."""
    out: dict[str, list] = {}
    with (Path(eval_dir) / "per_image.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["protocol"] != protocol:
                continue
            entry = out.setdefault(row["image"], [0, 0.0, 0])
            entry[0] += int(row["false_negative"])
            error = row["error_mm"] or row["error_px"]
            if int(row["present"]) and int(row["detected"]) and error:
                entry[1] += float(error)
                entry[2] += 1
    return {k: tuple(v) for k, v in out.items()}


def paired_rows(evaluations: dict[tuple[str, str, int], Path], reference: str, n_boot: int = 2000) -> list[dict]:
    """One row per protocol x non-reference arm.

    Args:
        evaluations: (protocol, arm, seed) -> evaluation folder.
        reference: the arm the others are compared with.
        n_boot: bootstrap resamples.
    """
    rows = []
    protocols = list(dict.fromkeys(p for p, _, _ in evaluations))
    arms = [a for a in dict.fromkeys(a for _, a, _ in evaluations) if a != reference]
    for protocol in protocols:
        for arm in arms:
            seeds = sorted(
                s for p, a, s in evaluations if p == protocol and a == arm and (p, reference, s) in evaluations
            )
            if not seeds:
                continue
            ref = [per_image_totals(evaluations[(protocol, reference, s)], Path(protocol).stem) for s in seeds]
            new = [per_image_totals(evaluations[(protocol, arm, s)], Path(protocol).stem) for s in seeds]
            images = sorted(set.intersection(*(set(t) for t in ref + new)))
            if not images:
                continue

            stats = paired_difference(
                _column(new, images, 0), _column(ref, images, 0), _column(new, images, 1), _column(new, images, 2),
                _column(ref, images, 1), _column(ref, images, 2), n_boot=n_boot,
            )  # fmt: skip
            present = float((_column(ref, images, 0) + _column(ref, images, 2)).sum(-1).mean())  # missed + detected
            miss = stats["fn_ref"] / present if present else None  # the regime: how much there is to rescue
            rows.append({"protocol": Path(protocol).stem, "arm": arm, "reference": reference, "seeds": seeds, **stats,
                         "present": present, "ref_miss_rate": miss})  # fmt: skip
    return rows


def _column(totals: list[dict], images: list[str], col: int) -> np.ndarray:
    """[S, N]: column ``col`` of each seed's per-image totals, images in ``images`` order."""
    return np.array([[t[i][col] for i in images] for t in totals], np.float64)


def _ci(value, ci, digits: int) -> str:
    if value is None or ci[0] is None:
        return "n/a"
    return f"{value:+.{digits}f} [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def _share(row: dict) -> str:
    rate = row.get("ref_miss_rate")
    return "" if rate is None else f" ({100 * rate:.1f} % missed)"


def _cells(row: dict) -> list[str]:
    sig = [name for name, flag in (("FN", row["fn_significant"]), ("MRE", row["mre_significant"])) if flag]
    mre = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    return [
        row["protocol"], row["arm"], str(len(row["seeds"])), f"{row['fn_ref']:.1f}{_share(row)}",
        f"{row['fn_arm']:.1f}",
        _ci(row["fn_diff"], row["fn_ci"], 1), "n/a" if row["fn_rel"] is None else f"{100 * row['fn_rel']:+.0f} %",
        mre(row["mre_ref"]), mre(row["mre_arm"]), _ci(row["mre_diff"], row["mre_ci"], 3), ", ".join(sig) or "no",
    ]  # fmt: skip


def paired_markdown(rows: list[dict]) -> str:
    return markdown_table(PAIRED_HEADER, [_cells(r) for r in rows])


def paired_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["protocol", "arm", "reference", "n_seeds", "n_images", "fn_ref", "fn_arm", "fn_diff", "fn_ci_lo",
                     "fn_ci_hi", "fn_rel", "fn_significant", "mre_ref", "mre_arm", "mre_diff", "mre_ci_lo", "mre_ci_hi",
                     "mre_significant", "present", "ref_miss_rate"])  # fmt: skip
    for r in rows:
        writer.writerow([r["protocol"], r["arm"], r["reference"], r["n_seeds"], r["n_images"], r["fn_ref"], r["fn_arm"],
                         r["fn_diff"], *r["fn_ci"], r["fn_rel"], r["fn_significant"], r["mre_ref"], r["mre_arm"],
                         r["mre_diff"], *r["mre_ci"], r["mre_significant"], r.get("present"),
                         r.get("ref_miss_rate")])  # fmt: skip
    return buf.getvalue()


def paired_html(rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in PAIRED_HEADER)
    body = []
    for r in rows:
        cells = _cells(r)
        better = r["fn_significant"] and r["fn_diff"] < 0
        worse = r["fn_significant"] and r["fn_diff"] > 0
        cls = ' class="better"' if better else (' class="worse"' if worse else "")
        body.append("<tr>" + "".join(f"<td{cls if i == 5 else ''}>{html.escape(c)}</td>" for i, c in enumerate(cells)))
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


PAIRED_NOTE = (
    "Paired by seed (same initialisation and data order), arm minus reference: the change in false negatives "
    "(mean over seeds of the totals) and in MRE, with a 95 % paired-bootstrap interval over the test images (the same "
    "resampled images for both arms and all seeds). Significant: the interval excludes 0. FN ref gives the share of "
    "the present landmarks that the reference misses: AFL can only rescue those."
)
