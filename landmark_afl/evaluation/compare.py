"""The baseline-vs-AFL comparison recipe: train both with the same seeds under each protocol, evaluate, report.

Layout of the comparison folder::

    OUT/compare.json                      the settings (a resumed comparison must use the same ones)
    OUT/runs/<protocol>-<baseline|afl>-s<seed>/         training run folders
    OUT/evaluations/<protocol>-<baseline|afl>-s<seed>/  evaluate output, under the run's own protocol
    OUT/report/                           report.md / .csv / .json / .html (mean +- std over seeds), per_run.md / .csv,
                                          paired.csv / .json (each arm against the first), validation.json (the
                                          validation figures of each evaluated checkpoint: choose an arm on these)

Resumable: a run whose ``checkpoints/last.pt`` has reached the epochs is not trained again (a shorter one is resumed
to the epochs; a run folder without a checkpoint is restarted), and an evaluation whose ``report.json`` is there is
not redone unless its run was trained in this invocation. Runs are trained in-process by the recipe's
``train_recipe``, the function behind ``landmark-afl train``, so each is what ``train`` makes with the same settings.
Tasks other than landmarks are compared by ``compare_tasks`` (arms x seeds, the recipe's metrics).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESERVED_KEYS = ("seed", "afl.enabled", "afl", "protocol", "data", "epochs", "optim.epochs")


@dataclass
class CompareSettings:
    """What a comparison trains and evaluates (see the module docstring).

    ``data`` None is the recipe's default data (the landmark phantom); ``protocols`` applies to the landmark task.
    """

    task: str = "landmarks"
    data: str | None = None
    protocols: str = "all"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int = 12
    split: str | None = None
    which: str = "best"
    threshold: float | None = None
    overrides: list[str] = field(default_factory=list)
    arms: dict[str, dict] | None = None  # label -> dotted overrides; None: the recipe's arms

    def key(self) -> dict:
        """The settings that must not change when a comparison is resumed (epochs may grow)."""
        d = asdict(self)
        d.pop("epochs")
        return d


def arm_slug(label: str) -> str:
    """A label as part of a folder name: ``AFL centred`` -> ``afl-centred``."""
    import re

    return re.sub(r"[^a-z0-9+._-]+", "-", label.lower()).strip("-") or "arm"


def run_config(recipe, settings: CompareSettings, arm: dict, seed: int, protocol: str | None = None):
    """The config of one run of a comparison: the overrides, then the arm's, then seed, epochs, data, protocol."""
    from landmark_afl.engine.config import parse_overrides
    from landmark_afl.recipes.train import resolve_config

    values: dict = {**parse_overrides(settings.overrides), **arm, "seed": seed, "optim.epochs": settings.epochs}
    if settings.data is not None:
        values["data"] = settings.data
    if protocol is not None:
        values["protocol"] = protocol
    return resolve_config(recipe, values)


def train_arm(recipe, cfg, run_dir: Path, name: str, progress: str, console) -> bool:
    """Train one run of a comparison unless it is done; returns whether it was trained now."""
    from landmark_afl.recipes.train import train_to_epochs

    console.rule(f"{progress} {name}")
    trained = train_to_epochs(recipe, cfg, run_dir, console)
    if not trained:
        console.log(f"{progress} {name}: trained to {cfg.optim.epochs} epochs already, skipped")
    return trained


def check_settings(settings: CompareSettings, out: Path) -> None:
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
    if settings.data is not None and not Path(settings.data).exists():
        raise FileNotFoundError(f"--data {settings.data} does not exist; give the task's data folder")
    stored = out / "compare.json"
    if stored.is_file():
        previous = {"task": "landmarks", "arms": None, **json.loads(stored.read_text())}  # first-release folders
        if previous.get("data") == "phantom":
            previous["data"] = None
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
    from landmark_afl.recipes import get_recipe

    recipe = get_recipe(settings.task)
    if recipe.name != "landmarks":
        from landmark_afl.evaluation.compare_tasks import run_task_comparison

        return run_task_comparison(recipe, settings, out, console)
    return _run_landmark_comparison(recipe, settings, out, console)


def _run_landmark_comparison(recipe, settings: CompareSettings, out: Path, console=None) -> int:
    from rich.console import Console

    from landmark_afl.engine.atomic import write_atomic
    from landmark_afl.engine.trainer import NonFiniteLossError
    from landmark_afl.evaluation.evaluator import evaluate_run, resolve_protocols
    from landmark_afl.evaluation.html import write_side_by_side
    from landmark_afl.evaluation.report import load_report, side_by_side, table_markdown
    from landmark_afl.evaluation.report import write_evaluation as write_eval

    console = console or Console()
    out = Path(out)
    protocols = resolve_protocols(settings.protocols, "high")
    if settings.data is not None:
        settings.data = str(Path(settings.data).expanduser().resolve())
    settings.split = settings.split or recipe.splits[0]
    check_settings(settings, out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "compare.json", json.dumps(settings.key(), indent=1))
    entries, per_run, failures, val_entries = [], [], [], []
    arms = settings.arms or recipe.arms
    evaluations: dict[tuple[str, str, int], Path] = {}
    total = len(protocols) * len(settings.seeds) * len(arms)
    done = 0
    for protocol in protocols:
        for seed in settings.seeds:
            for label, arm in arms.items():
                done += 1
                name = f"{Path(protocol).stem}-{arm_slug(label)}-s{seed}"
                run_dir, eval_dir = out / "runs" / name, out / "evaluations" / name
                cfg = run_config(recipe, settings, arm, seed, protocol)
                try:
                    trained = train_arm(recipe, cfg, run_dir, name, f"[{done}/{total}]", console)
                except NonFiniteLossError as err:
                    failures.append(f"{name}: training failed ({err})")
                    continue
                if trained and eval_dir.exists():
                    shutil.rmtree(eval_dir)  # its model has changed
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
                entries.append((label, report, eval_dir))
                val_entries.append((protocol, label, report))
                evaluations[(protocol, label, seed)] = eval_dir
                per_run.append((f"{label} s{seed}", report))
    if not entries:
        console.print("[red]no run finished; nothing to report[/red]")
        return 1
    from landmark_afl.evaluation import validation_choice as vc
    from landmark_afl.evaluation.paired_report import PAIRED_NOTE, paired_csv, paired_html, paired_markdown, paired_rows
    from landmark_afl.evaluation.side_by_side import collect_difficulty, print_table, report_notes, side_by_side_csv

    report_dir = out / "report"
    report_dir.mkdir(exist_ok=True)
    notes = [*report_notes([r for _, r, _ in entries]), f"seeds {settings.seeds}, epochs {settings.epochs}"]
    if settings.overrides:
        notes.append("training overrides: " + " ".join(settings.overrides))
    reference = next(iter(arms))
    paired = paired_rows(evaluations, reference)
    validation = vc.validation_rows(val_entries)
    sections = [("Validation: choose an arm here", vc.VALIDATION_NOTE, vc.validation_markdown(validation),
                 vc.validation_html(validation))]  # fmt: skip
    if paired:
        sections.append((f"Each arm against {reference}, paired by seed", PAIRED_NOTE, paired_markdown(paired),
                         paired_html(paired)))  # fmt: skip
    rows = write_side_by_side(
        report_dir, [(lb, r) for lb, r, _ in entries], [(f"{lb} ({Path(r['run']).name})", str(f)) for lb, r, f in
        entries], collect_difficulty(entries), f"landmark-afl compare: {', '.join(arms)} per contrast protocol", notes,
        sections,
    )  # fmt: skip
    write_atomic(report_dir / "paired.csv", paired_csv(paired))
    write_atomic(report_dir / "paired.json", json.dumps(paired, indent=1))
    write_atomic(report_dir / "validation.json", json.dumps(validation, indent=1))
    run_rows = side_by_side(per_run)
    write_atomic(report_dir / "per_run.md", table_markdown(run_rows))
    write_atomic(report_dir / "per_run.csv", side_by_side_csv(run_rows))
    print_table(console, rows)
    print("validation (choose here):\n" + vc.validation_markdown(validation), flush=True)
    if paired:
        print(paired_markdown(paired), flush=True)
    console.print(
        f"wrote {report_dir}/report.md, report.csv, report.json, report.html, per_run.md, paired.csv, validation.json"
    )
    for failure in failures:
        console.print(f"[red]{failure}[/red]")
    return 3 if failures else 0
