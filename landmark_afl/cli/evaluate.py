"""``landmark-afl evaluate`` and ``report``: false negatives per landmark and protocol, side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from landmark_afl.cli import UsageError


def peak_threshold(text: str) -> float:
    """argparse type of ``--threshold``: a finite peak response > 0 (an all-zero map must stay undetected)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be a finite peak response > 0 (the training target's peak is 1; e.g. 0.5), got {text}"
        )
    return value


def _add_eval_options(p: argparse.ArgumentParser, protocols_default: str | None) -> None:
    p.add_argument("--data", help="data set folder (default: the data set the run was trained on)")
    p.add_argument("--split", default="test", help="split of the data set to evaluate on (default: test)")
    p.add_argument(
        "--protocols",
        default=protocols_default,
        help="'all', or comma-separated protocol names / .yaml paths (default: the protocol the run was trained with)",
    )
    p.add_argument(
        "--threshold",
        type=peak_threshold,
        help="detection threshold on the peak heatmap response; the training target's peak is 1 "
        "(default: the run's detect_threshold, 0.5 unless set at training)",
    )
    p.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint of the run (default: best)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default: auto)")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default: 8)")
    p.add_argument("--amp", choices=("auto", "off", "bf16"), default="auto",
                   help="network precision: auto = bf16 where the GPU or CPU has it (AVX-512 BF16, AMX), else fp32; "
                   "off = fp32 (default: auto)")  # fmt: skip
    p.add_argument("--decode", choices=("soft-argmax", "parabola"),  # codecs.gaussian_heatmap.REFINEMENTS
                   help="sub-pixel refinement after the heatmap argmax (default: the run's decode; soft-argmax for "
                   "runs trained since it was added, parabola before)")  # fmt: skip


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="false negatives, false positives, MRE and SDR of a run, per landmark and contrast protocol",
        description="Run a trained model over a split under one or more contrast protocols and write report.json, "
        "report.md, per_image.csv and sweep.png (false negatives / positives against the threshold) into --out.",
    )
    p.add_argument("run", help="run folder made by `landmark-afl train` (or a checkpoint .pt file)")
    _add_eval_options(p, None)
    p.add_argument("--out", required=True, help="output folder (refused when not empty, unless --force)")
    p.add_argument("--force", action="store_true", help="overwrite the files of a non-empty --out")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser(
        "report",
        help="side-by-side table of several runs (Markdown, CSV, JSON, one self-contained HTML page)",
        description="Side-by-side false negatives (with the change relative to the first input under the same "
        "protocol), false positives, MRE and SDR. Inputs are evaluate output folders or run folders; a run folder is "
        "evaluated first into OUT/evaluations/ with the options below (reused when already there). Inputs with the "
        "same label are pooled as mean +- std.",
    )
    p.add_argument("inputs", nargs="+", metavar="RUN_OR_EVAL_DIR", help="evaluate output folders or run folders")
    p.add_argument("--labels", help="comma-separated row labels, one per input (default: the run folder names)")
    p.add_argument("--title", default="landmark-afl: false negatives per run and contrast protocol",
                   help="title of report.md, report.html and report.json (default: %(default)r)")  # fmt: skip
    _add_eval_options(p, None)
    p.add_argument("--out", required=True, help="output folder (refused when not empty, unless --force)")
    p.add_argument("--force", action="store_true", help="overwrite the files of a non-empty --out")
    p.set_defaults(func=run_report)


def usage_errors():
    from landmark_afl.data.dataset import DatasetError
    from landmark_afl.engine.checkpoint import CheckpointError
    from landmark_afl.engine.config import ConfigError
    from landmark_afl.protocols import ProtocolError

    return (CheckpointError, ConfigError, DatasetError, ProtocolError, FileExistsError, FileNotFoundError, ValueError)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


def evaluate_to(run: str | Path, out: Path, args: argparse.Namespace, protocols=None) -> dict:
    """Evaluate ``run`` with the evaluation options of ``args`` and write the folder ``out``; returns report.json."""
    from landmark_afl.evaluation.evaluator import evaluate_run
    from landmark_afl.evaluation.report import write_evaluation

    with _progress() as progress:
        tasks: dict[str, int] = {}

        def report(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"{Path(str(run)).name} ({name})", total=total)
            progress.update(tasks[name], completed=done)

        ev = evaluate_run(
            run, data=args.data, split=args.split, protocols=protocols if protocols is not None else args.protocols,
            threshold=args.threshold, which=args.which, device=args.device, batch_size=args.batch_size,
            progress=report, amp=getattr(args, "amp", "auto"), decode=getattr(args, "decode", None),
        )  # fmt: skip
    return write_evaluation(ev, out)


def run_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from landmark_afl.evaluation.evaluator import resolve_protocols
    from landmark_afl.evaluation.report import check_out_dir
    from landmark_afl.recipes.landmarks import find_checkpoint

    try:
        find_checkpoint(args.run, args.which)
        if args.protocols is not None:
            resolve_protocols(args.protocols, "high")
        check_out_dir(args.out, args.force)
        report = evaluate_to(args.run, Path(args.out), args)
    except usage_errors() as err:
        raise UsageError(str(err)) from err
    console = Console()
    console.print(_totals_table(report))
    failed = sum(e["n_failed"] for e in report["protocols"].values())
    console.print(f"wrote {args.out}/report.json, report.md, per_image.csv, sweep.png")
    if failed:
        console.print(f"[yellow]{failed} image(s) could not be read; listed in report.md[/yellow]")
        return 3
    return 0


def _totals_table(report: dict):
    """A rich table of the per-protocol totals of one evaluation, for the console."""
    from rich import box
    from rich.table import Table

    from landmark_afl.evaluation.report import mre_text

    title = (
        f"{Path(report['run']).name} on {report['split']} of {report['dataset_name']} "
        f"(threshold {report['threshold']:g}, target peak 1)"
    )
    # fits 80 columns (also when piped): short headers, one light rule, no cell wider than its figure
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False,
                  caption="MRE: detected landmarks; all: every present landmark (the ISBI rule); SDR: % within "
                  "2 / 2.5 / 3 / 4 mm")  # fmt: skip
    for col in ("protocol", "img", "FN / present", "FP", "MRE", "MRE all", "SDR all"):
        table.add_column(col, justify="left" if col == "protocol" else "right", no_wrap=True)
    for name, e in report["protocols"].items():
        sdr = " ".join("n/a" if e.get("sdr_all", {}).get(r) is None else f"{e['sdr_all'][r]:.1f}"
                       for r in ("2", "2.5", "3", "4"))  # fmt: skip
        table.add_row(
            name, str(e["n_images"]), f"{e['false_negatives']} / {e['present']}", str(e["false_positives"]),
            mre_text(e), mre_text(e, "_all"), sdr,
        )  # fmt: skip
    return table


def _is_run_folder(path: Path) -> bool:
    return path.is_file() and path.suffix == ".pt" or (path / "checkpoints").is_dir()


def _reusable(report_path: Path, args: argparse.Namespace) -> bool:
    """An earlier evaluation in OUT/evaluations/ is reused when it answers the same question."""
    from landmark_afl.evaluation.report import load_report

    try:
        report = load_report(report_path)
    except (FileNotFoundError, ValueError):
        return False
    same = report["split"] == args.split and report["which"] == args.which
    if args.threshold is not None:
        same = same and report["threshold"] == args.threshold
    from landmark_afl.evaluation.evaluator import resolve_protocols

    wanted = resolve_protocols(args.protocols, report["trained_protocol"])
    return same and list(report["protocols"]) == [Path(p).stem for p in wanted]


def run_report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from landmark_afl.evaluation.html import write_side_by_side
    from landmark_afl.evaluation.report import check_out_dir, load_report
    from landmark_afl.evaluation.side_by_side import collect_difficulty, print_table, report_notes

    console = Console()
    inputs = [Path(p) for p in args.inputs]
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    if labels is not None and len(labels) != len(inputs):
        raise UsageError(f"--labels has {len(labels)} labels for {len(inputs)} inputs; give one label per input")
    out = Path(args.out)
    try:
        check_out_dir(out, args.force)
        entries = []
        for i, path in enumerate(inputs):
            if (path / "report.json").is_file() or path.suffix == ".json":
                folder = path if path.is_dir() else path.parent
                report = load_report(path)
            elif _is_run_folder(path):
                folder = out / "evaluations" / f"{i:02d}-{path.stem if path.is_file() else path.name}"
                if _reusable(folder / "report.json", args):
                    report = load_report(folder)
                else:
                    console.log(f"evaluating run {path} into {folder}")
                    report = evaluate_to(path, folder, args)
            else:
                raise FileNotFoundError(
                    f"{path} is neither an evaluate output folder (with report.json) nor a run folder (with "
                    "checkpoints/); give the folder written by `landmark-afl evaluate --out` or by `landmark-afl train`"
                )
            label = labels[i] if labels else Path(report["run"]).name
            entries.append((label, report, folder))
        out.mkdir(parents=True, exist_ok=True)
        notes = report_notes([r for _, r, _ in entries])
        rows = write_side_by_side(
            out, [(lb, r) for lb, r, _ in entries], [(lb, str(f)) for lb, _, f in entries],
            collect_difficulty(entries), args.title, notes,
        )  # fmt: skip
    except usage_errors() as err:
        raise UsageError(str(err)) from err
    print_table(console, rows)
    console.print(f"wrote {out}/report.md, report.csv, report.json, report.html")
    return 0
