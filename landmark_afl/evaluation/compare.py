"""The baseline-vs-AFL comparison recipe: train both with the same seeds under each protocol, evaluate, report.

Layout of the comparison folder::

    OUT/compare.json                      the settings (a resumed comparison must use the same ones)
    OUT/runs/<protocol>-<baseline|afl>-s<seed>/         training run folders
    OUT/evaluations/<protocol>-<baseline|afl>-s<seed>/  evaluate output, under the run's own protocol
    OUT/report/                           report.md / .csv / .json / .html (mean +- std over seeds), per_run.md / .csv

Resumable: a run whose ``checkpoints/last.pt`` has reached the epochs is not trained again (a shorter one is resumed
to the epochs; a run folder without a checkpoint is restarted), and an evaluation whose ``report.json`` is there is
not redone unless its run was trained in this invocation. Runs are trained in-process through the ``train`` command,
so each one is exactly what ``landmark-afl train`` would produce with the same arguments.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

METHODS = (("baseline", False), ("afl", True))
LABELS = {"baseline": "baseline", "afl": "AFL"}
RESERVED_KEYS = ("seed", "afl", "protocol", "data", "epochs")


@dataclass
class CompareSettings:
    """What a comparison trains and evaluates (see the module docstring)."""

    data: str = "phantom"
    protocols: str = "all"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int = 12
    split: str = "test"
    which: str = "best"
    threshold: float | None = None
    overrides: list[str] = field(default_factory=list)

    def key(self) -> dict:
        """The settings that must not change when a comparison is resumed (epochs may grow)."""
        d = asdict(self)
        d.pop("epochs")
        return d


def _train_argv(settings: CompareSettings, protocol: str, afl: bool, seed: int, run_dir: Path) -> tuple[list, bool]:
    """The ``train`` arguments for one run, and whether it needs training at all."""
    from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint

    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        try:
            epoch = int(load_checkpoint(last).get("epoch", 0))
        except CheckpointError:
            epoch = -1
        if epoch >= settings.epochs:
            return [], False
        if epoch >= 0:
            return ["train", "--resume", str(run_dir), "--epochs", str(settings.epochs)], True
    argv = ["train", "--protocol", protocol, "--epochs", str(settings.epochs), "--out", str(run_dir)]
    if settings.data != "phantom":
        argv += ["--data", settings.data]
    if not afl:
        argv.append("--no-afl")
    if run_dir.exists() and any(run_dir.iterdir()):
        argv.append("--force")
    return [*argv, *settings.overrides, f"seed={seed}"], True


def _train(argv: list[str]) -> int:
    import argparse

    from landmark_afl.cli import train

    parser = argparse.ArgumentParser(prog="landmark-afl")
    train.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(train.run(args) or 0)


def _check_settings(settings: CompareSettings, out: Path) -> None:
    for item in settings.overrides:
        key = item.split("=", 1)[0].strip()
        if key in RESERVED_KEYS:
            raise ValueError(
                f"{item!r}: compare sets {key} itself; use --seeds / --protocols / --data / --epochs instead"
            )
    if not settings.seeds:
        raise ValueError("--seeds is empty; give comma-separated integers like 0,1,2")
    if settings.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {settings.epochs}")
    if settings.data != "phantom" and not Path(settings.data).is_dir():
        raise FileNotFoundError(f"--data {settings.data} is not a folder; give a data set folder or 'phantom'")
    stored = out / "compare.json"
    if stored.is_file():
        previous = json.loads(stored.read_text())
        if previous != settings.key():
            changed = sorted(k for k in settings.key() if previous.get(k) != settings.key()[k])
            raise ValueError(
                f"{out} holds a comparison with other settings ({', '.join(changed)} differ: {stored}); "
                "resume it with the same arguments or give another --out"
            )
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(f"--out {out} is not empty and holds no compare.json; give a new or empty folder")


def run_comparison(settings: CompareSettings, out: Path, console=None) -> int:
    """Train, evaluate and report (see the module docstring). Returns 0, or 3 when some runs failed."""
    from rich.console import Console

    from landmark_afl.engine.atomic import write_atomic
    from landmark_afl.evaluation.evaluator import evaluate_run, resolve_protocols
    from landmark_afl.evaluation.html import write_side_by_side
    from landmark_afl.evaluation.report import load_report, side_by_side, table_csv, table_markdown
    from landmark_afl.evaluation.report import write_evaluation as write_eval

    console = console or Console()
    out = Path(out)
    protocols = resolve_protocols(settings.protocols, "high")
    if settings.data != "phantom":
        settings.data = str(Path(settings.data).expanduser().resolve())
    _check_settings(settings, out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "compare.json", json.dumps(settings.key(), indent=1))
    entries, per_run, failures = [], [], []
    total = len(protocols) * len(settings.seeds) * len(METHODS)
    done = 0
    for protocol in protocols:
        for seed in settings.seeds:
            for method, afl in METHODS:
                done += 1
                name = f"{Path(protocol).stem}-{method}-s{seed}"
                run_dir, eval_dir = out / "runs" / name, out / "evaluations" / name
                argv, needed = _train_argv(settings, protocol, afl, seed, run_dir)
                if needed:
                    if eval_dir.exists():
                        shutil.rmtree(eval_dir)  # its model is about to change
                    console.rule(f"[{done}/{total}] training {name}: landmark-afl {' '.join(argv)}")
                    if _train(argv) != 0:
                        failures.append(f"{name}: training failed (see the log above)")
                        continue
                else:
                    console.log(f"[{done}/{total}] {name}: trained to {settings.epochs} epochs already, skipped")
                if (eval_dir / "report.json").is_file():
                    report = load_report(eval_dir)
                    console.log(f"[{done}/{total}] {name}: evaluation already written, skipped")
                else:
                    ev = evaluate_run(
                        run_dir, split=settings.split, protocols=[protocol], threshold=settings.threshold,
                        which=settings.which, device="auto",
                    )  # fmt: skip
                    eval_dir.mkdir(parents=True, exist_ok=True)
                    report = write_eval(ev, eval_dir)
                    e = report["protocols"][next(iter(report["protocols"]))]
                    console.log(
                        f"[{done}/{total}] {name}: {e['false_negatives']} false negatives / {e['present']} present, "
                        f"{e['false_positives']} false positives"
                    )
                entries.append((LABELS[method], report, eval_dir))
                per_run.append((f"{LABELS[method]} s{seed}", report))
    if not entries:
        console.print("[red]no run finished; nothing to report[/red]")
        return 1
    from landmark_afl.cli.evaluate import _notes, collect_difficulty, print_table

    report_dir = out / "report"
    report_dir.mkdir(exist_ok=True)
    notes = [*_notes([r for _, r, _ in entries]), f"seeds {settings.seeds}, epochs {settings.epochs}"]
    if settings.overrides:
        notes.append("training overrides: " + " ".join(settings.overrides))
    rows = write_side_by_side(
        report_dir, [(lb, r) for lb, r, _ in entries], [(f"{lb} ({Path(r['run']).name})", str(f)) for lb, r, f in
        entries], collect_difficulty(entries), "landmark-afl compare: baseline vs AFL per contrast protocol", notes,
    )  # fmt: skip
    run_rows = side_by_side(per_run)
    write_atomic(report_dir / "per_run.md", table_markdown(run_rows))
    write_atomic(report_dir / "per_run.csv", table_csv(run_rows))
    print_table(console, rows)
    console.print(f"wrote {report_dir}/report.md, report.csv, report.json, report.html, per_run.md")
    for failure in failures:
        console.print(f"[red]{failure}[/red]")
    return 3 if failures else 0
