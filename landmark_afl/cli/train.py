"""``landmark-afl train``: train any task's recipe (landmarks by default, with AFL on)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from landmark_afl.cli import UsageError


def add_parser(sub) -> None:
    from landmark_afl.recipes import DEFAULT_TASK, RECIPES

    p = sub.add_parser(
        "train",
        help="train a model (--task landmarks by default: AFL on, phantom data when no --data)",
        description="Train a task's recipe with the generic trainer. Settings: defaults < --config FILE < key=value "
        "(dotted keys, e.g. optim.lr=3e-4 afl.critic_center=True); --show-config lists every key of a task with its "
        "default and its meaning.",
    )
    p.add_argument("--task", default=None, help=f"the recipe: {', '.join(RECIPES)} (default: {DEFAULT_TASK})")
    p.add_argument("--show-config", action="store_true", help="print every config key, default and doc; then exit")
    p.add_argument("--protocol", help="contrast protocol name or .yaml path (landmarks; default: high)")
    p.add_argument("--data", help="data folder (landmarks default: the embedded phantom, generated once)")
    p.add_argument("--no-afl", action="store_true", help="train the baseline: afl.enabled=False")
    p.add_argument("--epochs", type=int, help="optim.epochs (with --resume: the total to reach)")
    p.add_argument("--out", help="run folder (default: runs/<name>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    p.add_argument("--config", help="YAML file of key: value settings (nested or dotted keys)")
    p.add_argument("--force", action="store_true", help="replace an existing run folder given by --out")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=3e-4 loss=focal")
    p.set_defaults(func=run)


def _task_name(args: argparse.Namespace) -> str:
    """--task, or the task a resumed run was trained with."""
    from landmark_afl.recipes import DEFAULT_TASK

    if args.resume and (Path(args.resume) / "checkpoints" / "last.pt").is_file():
        from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint

        try:
            trained_as = load_checkpoint(Path(args.resume) / "checkpoints" / "last.pt").get("recipe", DEFAULT_TASK)
        except CheckpointError as err:
            raise UsageError(str(err)) from err
        if args.task not in (None, trained_as):
            raise UsageError(f"--resume {args.resume} was trained with --task {trained_as}, not --task {args.task}")
        return trained_as
    return args.task or DEFAULT_TASK


def flag_values(args: argparse.Namespace, config) -> dict[str, str]:
    """The dedicated flags as dotted config keys (a flag the task has no key for is refused)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config)}
    values = {}
    for key, flag, value in (
        ("protocol", "--protocol", None if args.protocol is None else repr(args.protocol)),
        ("data", "--data", None if args.data is None else repr(args.data)),
        ("optim.epochs", "--epochs", None if args.epochs is None else str(args.epochs)),
        ("afl.enabled", "--no-afl", "False" if args.no_afl else None),
    ):
        if value is None:
            continue
        if key.split(".")[0] not in names:
            raise UsageError(f"{flag} does not apply to this task (it has no {key!r} key); see --show-config")
        values[key] = value
    return values


def run(args: argparse.Namespace) -> int:
    import warnings

    from landmark_afl.engine.checkpoint import CheckpointError
    from landmark_afl.engine.config import ConfigError, format_config_docs, parse_overrides
    from landmark_afl.engine.console import RunConsole
    from landmark_afl.engine.distributed import init_distributed
    from landmark_afl.engine.trainer import NonFiniteLossError
    from landmark_afl.recipes import get_recipe
    from landmark_afl.recipes.train import resolve_config, train_recipe

    # no source-file column; whole lines when piped; run_dir/train.log gets a plain copy once training starts
    console = RunConsole(command=getattr(args, "command_line", None))
    try:
        recipe = get_recipe(_task_name(args))
        if args.show_config:
            print(f"# landmark-afl train --task {recipe.name}: {recipe.summary}\n{format_config_docs(recipe.config)}")
            return 0
        with warnings.catch_warnings(record=True) as notices:
            warnings.simplefilter("always", FutureWarning)
            values = {**parse_overrides(args.overrides), **flag_values(args, recipe.config)}
            cfg = resolve_config(recipe, values, args.config, Path(args.resume) if args.resume else None)
        for notice in notices:
            console.print(f"[yellow]notice:[/yellow] {notice.message}")
        dist = init_distributed(cfg.device, cfg.optim.dist_timeout_min)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from err
    try:
        try:
            run_dir = Path(args.resume) if args.resume else _prepare_on_rank0(args, recipe, cfg, dist)
            if dist.is_main:  # at once: reading the data (or generating the phantom) may take a while
                what = "resuming" if args.resume else "training"
                console.log(f"{what} {run_dir} (--task {recipe.name}): reading the data set, building the model")
            best = train_recipe(recipe, cfg, run_dir, resume=bool(args.resume), console=console, dist=dist)
        except NonFiniteLossError as err:
            console.print(f"[red]error:[/red] {err}")
            return 1
        except (CheckpointError, ConfigError, ValueError, FileNotFoundError, FileExistsError) as err:
            raise UsageError(_on_rank(dist, str(err))) from err
        except Exception as err:  # a rank that fails names itself; torchrun then stops the others
            if dist.distributed:
                print(_on_rank(dist, f"{type(err).__name__}: {err}"), file=sys.stderr, flush=True)
            raise
        if dist.is_main:
            summary = recipe.summarize(best) if recipe.summarize else _generic_summary(best)
            console.print(f"[bold]validation (best epoch {best.get('epoch')}):[/bold] {summary}\nrun folder: {run_dir}")
        return 0
    finally:
        console.close_log()
        dist.close()


def _on_rank(dist, message: str) -> str:
    return f"rank {dist.rank} of {dist.world}: {message}" if dist.distributed else message


def _prepare_on_rank0(args, recipe, cfg, dist) -> Path:
    """Rank 0 makes the run folder (the name is agreed on first); the others wait for it."""
    from landmark_afl.recipes.train import default_run_dir, prepare_run_dir

    run_dir = Path(dist.broadcast_object(str(args.out or default_run_dir(recipe, cfg))))
    error = None
    if dist.is_main:
        try:
            prepare_run_dir(run_dir, args.force)
        except FileExistsError as err:
            error = str(err)
    error = dist.broadcast_object(error)
    if error:
        raise FileExistsError(error)
    return run_dir


def _generic_summary(best: dict) -> str:
    return ", ".join(
        f"{k[4:]} {v:.4g}" if isinstance(v, float) else f"{k[4:]} {v}" for k, v in best.items() if k.startswith("val_")
    )
