# Run: python scripts/paired_evaluations.py --seeds 0,1,2 --ref "AFL off=bench-isbi-off/seed-{seed}-test-best" \
#          --arm "AFL=bench-isbi/seed-{seed}-test-best" --out paired-isbi
"""The paired table of two arms whose evaluations were made outside one ``compare`` (e.g. two isbi_benchmark runs).

Each arm is ``LABEL=PATTERN``, where PATTERN is an evaluation folder (written by ``landmark-afl evaluate``) with
``{seed}`` in it. For every seed both arms must have been trained with the same seed (same initialisation and data
order) and evaluated on the same images; that is checked from each report.json. The table is the one ``compare``
writes (``landmark_afl.evaluation.paired_report``: change in false negatives and in MRE of the detected landmarks,
95 % paired-bootstrap interval over images), one row per protocol, plus the validation figures of the epoch each
evaluated checkpoint comes from (what best.pt was chosen by: choose on these, report the test columns).

Writes OUT/paired.md, OUT/paired.json and OUT/paired.csv (atomically) and prints the Markdown.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

from landmark_afl.engine.atomic import write_atomic
from landmark_afl.evaluation.paired_report import PAIRED_NOTE, paired_csv, paired_markdown, paired_rows


def parse_arm(text: str) -> tuple[str, str]:
    label, sep, pattern = text.partition("=")
    if not sep or not label.strip() or "{seed}" not in pattern:
        raise SystemExit(
            f"{text!r}: give LABEL=FOLDER with {{seed}} in FOLDER, e.g. 'AFL=bench/seed-{{seed}}-test-best'"
        )
    return label.strip(), pattern


def load_evaluation(folder: Path, seed: int) -> dict:
    report = folder / "report.json"
    if not report.is_file():
        raise SystemExit(f"{folder}: no report.json; give an evaluation folder written by `landmark-afl evaluate`")
    doc = json.loads(report.read_text(encoding="utf-8"))
    if doc.get("seed") is not None and int(doc["seed"]) != seed:
        raise SystemExit(f"{folder}: its run was trained with seed {doc['seed']}, not {seed}; check the pattern")
    return doc


def validation_of(doc: dict) -> dict:
    """The validation row of the epoch the evaluated checkpoint was saved at (empty when the run is not here)."""
    metrics = Path(str(doc.get("run", ""))) / "metrics.csv"
    if doc.get("epoch") is None or not metrics.is_file():
        return {}
    with metrics.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("epoch") == str(doc["epoch"]) and r.get("val_false_negatives")]
    if not rows:
        return {}
    row = rows[-1]
    return {"epoch": int(doc["epoch"]), "val_false_negatives": int(float(row["val_false_negatives"])),
            "val_mre_mm": float(row["val_mre_mm"]) if row.get("val_mre_mm") else None}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", required=True, help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--ref", required=True, help="the reference arm, LABEL=FOLDER with {seed}")
    p.add_argument("--arm", required=True, action="append", help="an arm against it, LABEL=FOLDER (repeatable)")
    p.add_argument("--out", required=True, help="folder for paired.md / .json / .csv")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap resamples of the images (default 2000)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    arms = [parse_arm(args.ref), *(parse_arm(a) for a in args.arm)]
    reference = arms[0][0]
    evaluations: dict[tuple[str, str, int], Path] = {}
    validation: dict[str, list[dict]] = {}
    for label, pattern in arms:
        for seed in seeds:
            folder = Path(pattern.format(seed=seed))
            doc = load_evaluation(folder, seed)
            for protocol in doc.get("protocols") or []:
                evaluations[(protocol, label, seed)] = folder
            validation.setdefault(label, []).append(validation_of(doc))
    rows = paired_rows(evaluations, reference, n_boot=args.boot)
    if not rows:
        raise SystemExit("no protocol was evaluated for both arms with the same seeds; nothing to pair")
    val_lines = ["| arm | seeds | epochs of the evaluated checkpoints | val false negatives | val MRE (detected) |",
                 "|---|---|---|---|---|"]  # fmt: skip
    for label, vals in validation.items():
        if not all(vals):
            val_lines.append(f"| {label} | {len(vals)} | n/a | n/a | n/a |")
            continue
        fns = [v["val_false_negatives"] for v in vals]
        mres = [v["val_mre_mm"] for v in vals if v["val_mre_mm"] is not None]
        mre = f"{statistics.mean(mres):.3f} mm" if mres else "n/a"
        val_lines.append(f"| {label} | {len(vals)} | {', '.join(str(v['epoch']) for v in vals)} | "
                         f"{statistics.mean(fns):.1f} ({', '.join(map(str, fns))}) | {mre} |")  # fmt: skip
    md = "\n".join([
        f"Seeds {seeds}; reference {reference}.", "", "Validation (the split the checkpoints were chosen on):", "",
        *val_lines, "", "Test, each arm against the reference:", "", paired_markdown(rows).rstrip(), "", PAIRED_NOTE,
    ]) + "\n"  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"format": "landmark-afl-paired", "schema": 1, "seeds": seeds, "reference": reference,
           "arms": {label: pattern for label, pattern in arms}, "validation": validation, "rows": rows}  # fmt: skip
    write_atomic(out / "paired.json", json.dumps(doc, indent=1) + "\n")
    write_atomic(out / "paired.csv", paired_csv(rows))
    write_atomic(out / "paired.md", md)
    print(md, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
