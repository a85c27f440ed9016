"""``landmark-afl train``: train an FPN landmark detector, with AFL by default."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from landmark_afl.cli import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a landmark detector (AFL on by default; phantom data when no --data)",
        description="Train an FPN heatmap detector with Adversarial Focal Loss. Settings: defaults < --config FILE "
        "< key=value (see landmark_afl/engine/config.py for every key).",
    )
    p.add_argument("--protocol", help="contrast protocol name or .yaml path (default: high)")
    p.add_argument("--data", help="data set folder (default: the embedded phantom, generated once into the cache)")
    p.add_argument("--no-afl", action="store_true", help="train the baseline: plain mean of the base loss")
    p.add_argument("--epochs", type=int, help="number of epochs (with --resume: the total to reach)")
    p.add_argument("--out", help="run folder (default: runs/<protocol>-<afl|baseline>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    p.add_argument("--config", help="YAML file of key: value settings")
    p.add_argument("--force", action="store_true", help="replace an existing run folder given by --out")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. lr=3e-4 loss=focal")
    p.set_defaults(func=run)


def _resolve_config(args: argparse.Namespace):
    from landmark_afl.engine.config import TrainConfig, load_config_file, parse_overrides, update_config

    if args.resume:
        config_path = Path(args.resume) / "config.yaml"
        if not config_path.is_file():
            raise UsageError(f"--resume {args.resume}: no config.yaml there; give a run folder made by train")
        cfg = load_config_file(config_path)
    else:
        cfg = TrainConfig()
    if args.config:
        cfg = load_config_file(args.config, cfg)
    values = parse_overrides(args.overrides)
    for key, flag in (("protocol", args.protocol), ("data", args.data), ("epochs", args.epochs)):
        if flag is not None:
            values[key] = str(flag) if key == "epochs" else repr(flag)
    if args.no_afl:
        values["afl"] = "False"
    return update_config(cfg, values)


def _prepare_run_dir(args, cfg) -> Path:
    if args.resume:
        return Path(args.resume)
    if args.out:
        run_dir = Path(args.out)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = Path(cfg.protocol).stem
        run_dir = Path("runs") / f"{name}-{'afl' if cfg.afl else 'baseline'}-s{cfg.seed}-{stamp}"
    if run_dir.exists() and any(run_dir.iterdir()):
        if not args.force:
            raise UsageError(
                f"run folder {run_dir} exists and is not empty; use --resume {run_dir}, another --out, "
                "or --force to replace it"
            )
        if not (run_dir / "config.yaml").is_file():
            raise UsageError(f"--force refuses to delete {run_dir}: it has no config.yaml, so it is not a run folder")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def run(args: argparse.Namespace) -> int:
    import torch
    import yaml
    from rich.console import Console

    from landmark_afl.engine.atomic import write_atomic
    from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint
    from landmark_afl.engine.config import ConfigError, config_to_dict, sub_config
    from landmark_afl.engine.trainer import NonFiniteLossError, OptimConfig, Trainer
    from landmark_afl.evaluation.difficulty import write_difficulty_report
    from landmark_afl.tasks.landmark_run import build_training, check_compatible, resolve_device

    console = Console()
    try:
        cfg = _resolve_config(args)
        device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        run_dir = _prepare_run_dir(args, cfg)
        training = build_training(cfg)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from err
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    optim = sub_config(OptimConfig, cfg)
    trainer = Trainer(
        training.task, training.train_loader, training.val_loader, optim, run_dir, device, training.run_meta
    )
    if args.resume:
        last = run_dir / "checkpoints" / "last.pt"
        try:
            check_compatible(load_checkpoint(last), training.run_meta, last)
            trainer.resume(last)
        except CheckpointError as err:
            raise UsageError(str(err)) from err
        console.log(f"resuming {run_dir} after epoch {trainer.epoch} (step {trainer.step}) to epoch {cfg.epochs}")
    n_train, n_val = len(training.train_loader.dataset), len(training.val_loader.dataset)
    console.log(
        f"run {run_dir}: data {training.data_dir} ({n_train} train / {n_val} val images), protocol {cfg.protocol}, "
        f"{'AFL' if cfg.afl else 'baseline (no AFL)'}, encoder {cfg.encoder}, input {cfg.input_size}, device {device}"
    )
    try:
        trainer.fit(console)
    except NonFiniteLossError as err:
        console.print(f"[red]error:[/red] {err}")
        return 1
    best = trainer.best_metrics or {}
    if (run_dir / "difficulty.csv").is_file():
        write_difficulty_report(run_dir, training.data_dir)
    _print_summary(console, run_dir, best)
    return 0


def _print_summary(console, run_dir: Path, best: dict) -> None:
    present = best.get("val_present", 0)
    fn = best.get("val_false_negatives", 0)
    mre, mre_px = best.get("val_mre_mm"), best.get("val_mre_px")
    if mre is not None:
        mre_txt = f"{mre:.2f} mm"
    elif mre_px is not None:
        mre_txt = f"{mre_px:.2f} px (no spacing known)"
    else:
        mre_txt = "n/a (no landmark detected yet: train longer, or lower detect_threshold)"
    sdr = ", ".join(f"{r} mm {best.get(f'val_sdr_{r}mm') or 0:.1f} %" for r in ("2", "2.5", "3", "4"))
    console.print(
        f"[bold]validation (best epoch {best.get('epoch')}):[/bold] false negatives {fn} / {present} present landmarks "
        f"({100 * fn / max(present, 1):.1f} %), false positives {best.get('val_false_positives')}, MRE {mre_txt}, "
        f"SDR {sdr}\nrun folder: {run_dir}"
    )
