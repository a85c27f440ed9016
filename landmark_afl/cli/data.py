"""``landmark-afl data check DIR | phantom OUT | convert FORMAT SRC DST``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="check, generate and convert landmark data sets")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    from landmark_afl.recipes import DEFAULT_TASK, RECIPES

    check = sub.add_parser(
        "check",
        help="validate a data set folder (reads every image) and print the accuracy ceiling of the data path",
        description="Validate a data set, then print what the data path alone costs at the configured input size "
        "(landmarks: the MRE of ground truth -> heatmaps -> decode; coco: the AP of the same round trip).",
    )
    check.add_argument("dir", type=Path, help="data folder (landmarks: dataset.yaml, images/, landmarks.csv)")
    check.add_argument("--task", default=DEFAULT_TASK, help=f"{', '.join(RECIPES)} (default: {DEFAULT_TASK})")
    check.add_argument("overrides", nargs="*", metavar="key=value", help="the task's config, e.g. input_size=[320,256]")
    check.set_defaults(func=run_check)

    phantom = sub.add_parser("phantom", help="generate the synthetic hand-radiograph data set (DICOM)")
    phantom.add_argument("out", type=Path, help="output folder")
    phantom.add_argument("--n", type=int, default=None, help="number of images (default 200)")
    phantom.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    phantom.add_argument("--size", type=int, default=None, help="image size in pixels (default 512)")
    phantom.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    phantom.set_defaults(func=run_phantom)

    convert = sub.add_parser("convert", help="convert a public data set layout into the toolkit's")
    formats = convert.add_subparsers(dest="format", metavar="FORMAT")
    convert.set_defaults(func=lambda args: (convert.print_help(), 2)[1])
    isbi = formats.add_parser("isbi2015", help="ISBI 2015 cephalometric (RawImage/, AnnotationsByMD/)")
    isbi.add_argument("src", type=Path, help="the unpacked challenge folder (RawImage/, AnnotationsByMD/)")
    isbi.add_argument("dst", type=Path, help="output data set folder (created; must be empty unless --force)")
    isbi.add_argument("--reference", choices=("mean", "senior", "junior"), default="mean",
                      help="ground truth: the mean of the two doctors' annotations (default, the usual choice), or "
                      "one doctor's (AnnotationsByMD/400_senior or 400_junior)")  # fmt: skip
    isbi.add_argument("--val", type=int, default=None, metavar="N",
                      help="move the last N TrainingData images (by id) to val, where checkpoints are chosen "
                      "(default: 10 %%, 15 of 150; 0: no val split)")  # fmt: skip
    isbi.add_argument("--limit", type=int, default=None, help="convert only the first N images of each folder")
    isbi.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    isbi.set_defaults(func=run_convert)
    hand = formats.add_parser("hand-atlas", help="Digital Hand Atlas (images/*.mha, setup/all.csv)")
    hand.add_argument("src", type=Path, help="the Digital Hand Atlas folder (images/*.mha, setup/all.csv)")
    hand.add_argument("dst", type=Path, help="output data set folder (created; must be empty unless --force)")
    hand.add_argument("--cv-set", type=int, default=1, help="setup/cv_reduced/setN fold for the splits")
    hand.add_argument(
        "--val",
        type=int,
        default=None,
        metavar="N",
        help="move the last N training images of the fold (by id) to val (default: 10 %%; 0: none)",
    )
    hand.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    hand.set_defaults(func=run_convert)


def _progress(description: str, total: int | None = None):
    """A progress bar on stderr (a terminal), or a line every few seconds there (piped)."""
    from landmark_afl.engine.console import progress

    return progress(_console(stderr=True), description, total)


def _console(stderr: bool = False):
    from landmark_afl.engine.console import RunConsole

    return RunConsole(stderr=stderr, highlight=False)


def run_check(args: argparse.Namespace) -> int:
    from landmark_afl.cli import UsageError
    from landmark_afl.engine.config import parse_overrides
    from landmark_afl.recipes import get_recipe
    from landmark_afl.recipes.train import resolve_config

    try:
        recipe = get_recipe(args.task)
        cfg = resolve_config(recipe, parse_overrides(args.overrides))
    except ValueError as err:
        raise UsageError(str(err)) from err
    if recipe.name == "landmarks":
        status = _check_landmark_dataset(args)
        if status:
            return status
    if recipe.check is None:
        return 0
    try:
        _console().print(recipe.check(str(args.dir), cfg), markup=False)
    except (ValueError, FileNotFoundError) as err:
        print(f"landmark-afl data check: {err}", file=sys.stderr)
        return 1
    return 0


def _check_landmark_dataset(args: argparse.Namespace) -> int:
    from rich.table import Table

    from landmark_afl.data.check import CheckSummary, check_dataset
    from landmark_afl.data.dataset import DatasetError

    summary = CheckSummary()
    with _progress("reading images") as update:
        try:
            problems = check_dataset(args.dir, summary, progress=update)
        except DatasetError as err:
            print(f"landmark-afl data check: {err}", file=sys.stderr)
            return 1
    out = _console()
    table = Table(title=f"data set {summary.name or args.dir}", show_header=False)
    table.add_column("item")
    table.add_column("value")
    table.add_row("folder", str(args.dir))
    table.add_row("images", str(summary.n_images))
    table.add_row("landmarks (K)", str(summary.n_landmarks))
    total = summary.n_present + summary.n_absent
    share = f" ({100 * summary.n_absent / total:.1f} %)" if total else ""
    table.add_row("landmarks present / absent", f"{summary.n_present} / {summary.n_absent}{share}")
    origin = "dataset.yaml" if summary.explicit_splits else "fallback 80/10/10 (seed 0)"
    table.add_row("splits", ", ".join(f"{k} {v}" for k, v in summary.splits.items()) + f"  [{origin}]")
    table.add_row("formats", ", ".join(f"{k} {v}" for k, v in sorted(summary.formats.items())) or "-")
    table.add_row("spacing sources", ", ".join(f"{k} {v}" for k, v in sorted(summary.spacing_sources.items())) or "-")
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    table.add_row("problems", f"{len(errors)} error(s), {len(warnings)} warning(s)")
    out.print(table)
    for label, group in (("warning", warnings), ("error", errors)):
        for p in group:
            out.print(f"{label}: {p}", markup=False)
    if errors:
        out.print(f"data set {args.dir} is NOT usable: fix the {len(errors)} error(s) above", markup=False)
        return 1
    out.print(f"data set {args.dir} is OK", markup=False)
    return 0


def run_phantom(args: argparse.Namespace) -> int:
    from landmark_afl.cli import UsageError
    from landmark_afl.data.dataset import DatasetError
    from landmark_afl.data.phantom import generate_phantom

    kwargs = {k: v for k, v in {"n": args.n, "seed": args.seed, "size": args.size}.items() if v is not None}
    if kwargs.get("n", 1) < 1 or kwargs.get("size", 64) < 64:
        raise UsageError("--n must be >= 1 and --size >= 64")
    with _progress("rendering phantom", kwargs.get("n")) as update:
        try:
            out = generate_phantom(args.out, force=args.force, progress=update, **kwargs)
        except DatasetError as err:
            print(f"landmark-afl data phantom: {err}", file=sys.stderr)
            return 1
    print(f"wrote the phantom data set to {out} (check it with: landmark-afl data check {out})")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from landmark_afl.data.convert_hand_atlas import convert_hand_atlas
    from landmark_afl.data.convert_isbi2015 import convert_isbi2015
    from landmark_afl.data.dataset import DatasetError

    try:
        if args.format == "isbi2015":
            report = convert_isbi2015(
                args.src, args.dst, reference=args.reference, force=args.force, val_count=args.val, limit=args.limit
            )
        else:
            report = convert_hand_atlas(args.src, args.dst, force=args.force, cv_set=args.cv_set, val_count=args.val)
    except DatasetError as err:  # a wrong source layout or an occupied destination: a usage error
        print(f"landmark-afl data convert {args.format}: {err}", file=sys.stderr)
        return 2
    transfer = ", ".join(
        f"{v} {'hard-linked' if k == 'link' else 'copied'}" for k, v in sorted(report.transfer.items())
    )
    print(f"converted {report.n_images} images ({transfer}), {report.n_landmarks_written} landmarks -> {args.dst}")
    print("splits: " + (", ".join(f"{k} {v}" for k, v in report.splits.items()) or "none (loader fallback)"))
    for note in report.notes:
        print(note)
    return 0
