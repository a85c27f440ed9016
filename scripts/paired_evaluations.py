# Run: python scripts/paired_evaluations.py --seeds 0,1,2 --ref "AFL off=bench-isbi-off/seed-{seed}-test-best" \
#          --arm "AFL=bench-isbi/seed-{seed}-test-best" --out paired-isbi
"""The paired table of two arms whose evaluations were made outside one ``compare`` (e.g. two isbi_benchmark runs).

Each arm is ``LABEL=PATTERN``, where PATTERN is an evaluation folder (written by ``landmark-afl evaluate``) with
``{seed}`` in it. For every seed both arms must have been trained with the same seed (same initialisation and data
order) and evaluated on the same images: each report.json must give the seed, and the same split, data set,
threshold and landmarks as the reference's, and each per_image.csv the same images; otherwise it stops and says
which folders differ. The table is the one ``compare``
writes (``landmark_afl.evaluation.paired_report``: change in false negatives and in MRE of the detected landmarks,
95 % paired-bootstrap interval over images), one row per protocol, plus the validation figures of the epoch each
evaluated checkpoint comes from (what best.pt was chosen by: choose on these, report the test columns).

Writes OUT/paired.md, OUT/paired.json and OUT/paired.csv (atomically) and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from landmark_afl.engine.atomic import write_atomic
from landmark_afl.evaluation.paired_report import (
    PAIRED_NOTE,
    paired_csv,
    paired_markdown,
    paired_rows,
    per_image_totals,
)
from landmark_afl.evaluation.validation_choice import VALIDATION_NOTE, validation_markdown, validation_rows


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
    if doc.get("seed") is None:
        raise SystemExit(f"{folder}: report.json does not say the run's seed; pairing needs runs trained with seeds")
    if int(doc["seed"]) != seed:
        raise SystemExit(f"{folder}: its run was trained with seed {doc['seed']}, not {seed}; check the pattern")
    return doc


SAME = ("split", "dataset_name", "threshold", "landmarks")  # what two evaluations must share to be paired


def check_comparable(first: tuple[Path, dict], folder: Path, doc: dict) -> None:
    """Stop when ``doc`` was evaluated on something other than the first evaluation (its split, data, threshold)."""
    ref_folder, ref = first
    for key in SAME:
        if doc.get(key) != ref.get(key):
            raise SystemExit(
                f"{folder} and {ref_folder} differ in {key} ({doc.get(key)!r} against {ref.get(key)!r}): evaluate "
                "both runs on the same split with the same threshold to pair them"
            )
    for protocol in doc.get("protocols") or []:
        images, ref_images = set(per_image_totals(folder, protocol)), set(per_image_totals(ref_folder, protocol))
        if images != ref_images:
            raise SystemExit(
                f"{folder} and {ref_folder} hold different images under {protocol} ({len(images ^ ref_images)} in one "
                "only): evaluate both on the same split"
            )


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
    labels = [label for label, _ in arms]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"arm labels {labels} repeat; give each arm (and the reference) its own label")
    reference = arms[0][0]
    first: tuple[Path, dict] | None = None
    evaluations: dict[tuple[str, str, int], Path] = {}
    val_entries: list[tuple[str, str, dict]] = []
    for label, pattern in arms:
        for seed in seeds:
            folder = Path(pattern.format(seed=seed))
            doc = load_evaluation(folder, seed)
            if first is None:
                first = (folder, doc)
            check_comparable(first, folder, doc)
            for protocol in doc.get("protocols") or []:
                evaluations[(protocol, label, seed)] = folder
                val_entries.append((protocol, label, doc))
    rows = paired_rows(evaluations, reference, n_boot=args.boot)
    if not rows:
        raise SystemExit("no protocol was evaluated for both arms with the same seeds; nothing to pair")
    validation = validation_rows(val_entries)
    md = "\n".join([
        f"Seeds {seeds}; reference {reference}.", "", "Validation (choose here):", "", validation_markdown(validation),
        VALIDATION_NOTE, "", "Test, each arm against the reference:", "", paired_markdown(rows), PAIRED_NOTE,
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
