"""``landmark-afl compare``: the recipe's arms (baseline vs AFL, or the loss arms) x seeds, trained, evaluated and
reported side by side; for the landmark task also under each contrast protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from landmark_afl.cli import UsageError
from landmark_afl.cli.evaluate import peak_threshold


def add_parser(sub) -> None:
    from landmark_afl.recipes import DEFAULT_TASK, RECIPES

    p = sub.add_parser(
        "compare",
        help="train each arm (baseline vs AFL...) with the same seeds, evaluate, report mean +- std (resumable)",
        description="For each seed (and, for landmarks, each protocol): train every arm of the task's recipe "
        "(landmarks: a baseline and an AFL run; digits/cifar: ce, focal, afl, focal+afl), evaluate each, and write "
        "OUT/report (Markdown, CSV, JSON, HTML; mean +- std over seeds). Run the same command again to resume: "
        "finished runs and evaluations are skipped.",
    )
    p.add_argument("--task", default=DEFAULT_TASK, help=f"the recipe: {', '.join(RECIPES)} (default: {DEFAULT_TASK})")
    p.add_argument("--data", help="the task's data folder (default: the task's own; the phantom for landmarks)")
    p.add_argument("--protocols", default="all", help="landmarks: 'all' or comma-separated protocol names")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--epochs", type=int, required=True, help="epochs per run")
    p.add_argument("--split", help="split to evaluate on (default: the task's first: test for landmarks and digits)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint to evaluate (default: best)")
    p.add_argument("--threshold", type=peak_threshold, help="landmarks: detection threshold (default: each run's own)")
    p.add_argument(
        "--arm", action="append", metavar="'LABEL: key=value ...'",
        help="an arm to train beside the reference (the task's first arm: baseline / ce), e.g. --arm 'AFL centred: "
        "afl.critic_center=True' (repeatable; default: the task's own arms)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="comparison folder (created; an earlier comparison is resumed)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="training config overrides for every run")
    p.set_defaults(func=run_compare)


def parse_arms(items: list[str] | None, task: str) -> dict[str, dict] | None:
    """``["AFL centred: afl.critic_center=True"]`` -> {reference: its overrides, "AFL centred": {...}}."""
    if not items:
        return None
    from landmark_afl.engine.config import parse_overrides
    from landmark_afl.recipes import get_recipe

    reference, ref_overrides = next(iter(get_recipe(task).arms.items()))
    arms = {reference: dict(ref_overrides)}
    for item in items:
        label, _, rest = item.partition(":")
        label = label.strip()
        if not label or label in arms:
            raise UsageError(
                f"--arm {item!r}: give a new label before ':', e.g. --arm 'AFL centred: afl.critic_center=True'"
            )
        arms[label] = parse_overrides(rest.split())
    return arms


def run_compare(args: argparse.Namespace) -> int:
    from landmark_afl.cli.evaluate import usage_errors
    from landmark_afl.evaluation.compare import CompareSettings, run_comparison

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as err:
        raise UsageError(f"--seeds must be comma-separated integers like 0,1,2, got {args.seeds!r}") from err
    settings = CompareSettings(
        task=args.task, data=None if args.data in (None, "phantom") else args.data, protocols=args.protocols,
        seeds=seeds, epochs=args.epochs, split=args.split, which=args.which, threshold=args.threshold,
        overrides=list(args.overrides),
    )  # fmt: skip
    try:
        settings.arms = parse_arms(args.arm, args.task)
        return run_comparison(settings, Path(args.out))
    except usage_errors() as err:
        raise UsageError(str(err)) from err
