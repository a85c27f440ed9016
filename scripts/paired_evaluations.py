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
import json
import sys
from pathlib import Path

from landmark_afl.engine.atomic import write_atomic
from landmark_afl.evaluation.paired_report import PAIRED_NOTE, paired_csv, paired_markdown, paired_rows
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
    if doc.get("seed") is not None and int(doc["seed"]) != seed:
        raise SystemExit(f"{folder}: its run was trained with seed {doc['seed']}, not {seed}; check the pattern")
    return doc


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
    val_entries: list[tuple[str, str, dict]] = []
    for label, pattern in arms:
        for seed in seeds:
            folder = Path(pattern.format(seed=seed))
            doc = load_evaluation(folder, seed)
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
