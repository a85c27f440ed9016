"""Train any recipe: the one function behind ``landmark-afl train`` and ``compare``.

``resolve_config`` applies the precedence defaults < ``--config FILE`` < ``key=value`` (on top of the run's saved
config.yaml when resuming); ``train_recipe`` builds the recipe's data + model + task, hands them to the generic
trainer, and writes config.yaml only once a resume has been accepted, so a refused resume changes nothing.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from landmark_afl.engine.atomic import write_atomic
from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint, remove_stale_temporaries
from landmark_afl.engine.config import (
    config_to_dict,
    flatten_values,
    load_config_file,
    missing_saved_keys,
    update_config,
)
from landmark_afl.engine.device import resolve_device
from landmark_afl.engine.optim import precision_label
from landmark_afl.recipes.base import Recipe


def resolve_config(recipe: Recipe, values: dict, config_file: str | Path | None = None, resume: Path | None = None):
    """The run's config: defaults (or ``resume``'s config.yaml) < ``config_file`` < ``values`` (dotted keys)."""
    cfg = recipe.config()
    if resume is not None:
        saved = Path(resume) / "config.yaml"
        if not saved.is_file():
            raise FileNotFoundError(f"--resume {resume}: no config.yaml there; give a run folder made by train")
        cfg = load_config_file(saved, cfg, aliases=recipe.aliases)
        cfg = update_config(
            cfg, _saved_before_values(recipe, saved), source=f"{saved} (saved before these keys existed)"
        )
    if config_file is not None:
        cfg = load_config_file(config_file, cfg, aliases=recipe.aliases)
    return update_config(cfg, values, aliases=recipe.aliases)


def _saved_before_values(recipe: Recipe, saved: Path) -> dict:
    """The keys a run's config.yaml ``saved`` lacks, with the values it was trained with (``recipe.saved_before``)."""
    return missing_saved_keys(yaml.safe_load(saved.read_text()) or {}, recipe.saved_before, recipe.aliases)


def default_run_dir(recipe: Recipe, cfg) -> Path:
    """``runs/<name>-<time>``, the name from the recipe (e.g. ``high-afl-s0``)."""
    name = recipe.run_name(cfg) if recipe.run_name else f"{recipe.name}-{'afl' if cfg.afl.enabled else 'baseline'}"
    if recipe.run_name is None:
        name += f"-s{cfg.seed}"
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(run_dir: Path, force: bool = False) -> Path:
    """An empty run folder; a non-empty one is refused unless ``force`` (and then only if it is a run folder)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            if (run_dir / "checkpoints" / "last.pt").is_file():
                hint = f"use --resume {run_dir} to continue it, another --out, or --force to replace it"
            else:  # stopped before its first epoch ended: nothing to resume
                hint = "it has no finished epoch to resume, so start it again with --force (or choose another --out)"
            raise FileExistsError(f"run folder {run_dir} exists and is not empty; {hint}")
        if not (run_dir / "config.yaml").is_file():
            raise FileExistsError(
                f"--force refuses to delete {run_dir}: it has no config.yaml, so it is not a run folder"
            )
        shutil.rmtree(run_dir)
    return run_dir


def train_recipe(recipe: Recipe, cfg, run_dir: Path, resume: bool = False, console=None, dist=None) -> dict:
    """Train ``cfg`` with ``recipe`` into ``run_dir`` (resuming its last checkpoint when ``resume``).

    Under torchrun, pass the job's ``DistContext`` (``landmark_afl.engine.distributed.init_distributed``): every
    process calls this with the same arguments; rank 0 alone writes the run folder.

    Returns:
        The metrics of the best epoch.

    Raises:
        ValueError, FileNotFoundError, CheckpointError: bad settings, data or checkpoint (before anything is written).
        NonFiniteLossError: the loss diverged (the last good checkpoint is kept).
    """
    import torch
    from rich.console import Console

    from landmark_afl.engine.distributed import DistContext
    from landmark_afl.engine.optim import effective_lr
    from landmark_afl.engine.trainer import Trainer

    dist = dist or DistContext()
    console = console or Console(log_path=False)
    if not dist.is_main:
        console = Console(quiet=True)
    run_dir = Path(run_dir)
    device = resolve_device(cfg.device)
    if dist.backend == "nccl":
        device = torch.device("cuda", dist.local_rank)
    torch.manual_seed(cfg.seed)
    training = recipe.build(cfg)
    run_meta = {"recipe": recipe.name, "config": config_to_dict(cfg), **training.run_meta}
    trainer = Trainer(
        training.task, training.train_loader, training.val_loader, cfg.optim, run_dir, device, run_meta, cfg.seed,
        dist=dist,
    )  # fmt: skip
    if resume:
        last = run_dir / "checkpoints" / "last.pt"
        if not last.is_file() and (run_dir / "config.yaml").is_file():
            raise CheckpointError(
                f"--resume {run_dir}: the run has no finished epoch yet ({last} is missing), so there is nothing to "
                f"resume; start it again: landmark-afl train --out {run_dir} --force (with its settings)"
            )
        state = load_checkpoint(last)
        trained_as = state.get("recipe", "landmarks")
        if trained_as != recipe.name:
            raise CheckpointError(f"{last} was trained with --task {trained_as}, not {recipe.name}; resume with it")
        if recipe.check_resume is not None:
            recipe.check_resume(state, training, last)
        trainer.resume(last, console, state)  # the checkpoint is read once
        if dist.is_main:
            for path in remove_stale_temporaries(run_dir):
                console.log(f"removed {path}, left by a save that was interrupted")
        console.log(f"resuming {run_dir} after epoch {trainer.epoch} (step {trainer.step}) to epoch {cfg.optim.epochs}")
    created = not run_dir.exists()
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    precision = precision_label(cfg.optim.amp, device)
    console.log(f"run {run_dir} (--task {recipe.name}): {training.description}, device {device}, {precision}")
    if dist.distributed:
        lr = effective_lr(cfg.optim, dist.world)
        scaling = "scaled linearly: optim.scale_lr=linear" if cfg.optim.scale_lr == "linear" else "optim.scale_lr=none"
        console.log(
            f"data-parallel over {dist.world} processes ({dist.backend}): batch_size {cfg.batch_size} per process, "
            f"effective batch {cfg.batch_size * dist.world}, lr {lr:g} ({scaling})"
        )
    try:
        trainer.fit(console)
    except BaseException:
        if dist.is_main and not resume and not (run_dir / "checkpoints" / "last.pt").is_file():
            _remove_unfinished(run_dir, created)  # nothing to resume: do not leave a run folder that looks like one
            console.log(f"no epoch finished: {run_dir} {'removed' if created else 'emptied'}")
        raise
    if recipe.after_fit is not None and dist.is_main:
        recipe.after_fit(run_dir, training)
    return trainer.best_metrics or {}


def _remove_unfinished(run_dir: Path, created: bool) -> None:
    """Delete what a run that stopped before its first epoch wrote (the folder itself when this run made it)."""
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for path in [run_dir / "config.yaml", run_dir / "checkpoints", *run_dir.glob("events.out.tfevents.*")]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def check_saved_before(recipe: Recipe, cfg, run_dir: Path) -> None:
    """Refuse to resume ``run_dir`` with ``cfg`` where ``cfg`` changes a key the run was saved without.

    A run saved before a key existed was trained with ``recipe.saved_before``'s value of it (e.g. ``jpeg_scaling``
    False); a comparison resolves today's default instead, and resuming with it would change the run half-way.

    Raises:
        ValueError: naming the run, the key, both values and the fix.
    """
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    older = _saved_before_values(recipe, saved)
    asked = flatten_values(config_to_dict(cfg))
    changed = {k: v for k, v in older.items() if k in asked and asked[k] != v}
    if changed:
        keys = ", ".join(f"{k}={v!r} (asked: {asked[k]!r})" for k, v in changed.items())
        fix = " ".join(f"{k}={v}" for k, v in changed.items())
        raise ValueError(
            f"{run_dir} was saved before these keys existed and trained with {keys}; resuming it with other values "
            f"would change it half-way. Add {fix} to the command to finish it as it was trained, or give another --out"
        )


def train_to_epochs(recipe: Recipe, cfg, run_dir: Path, console=None) -> bool:
    """Bring ``run_dir`` to ``cfg.optim.epochs``: skip a run already there, resume a shorter one, (re)start one
    without a readable checkpoint. Returns whether anything was trained (for comparisons that resume)."""
    last = Path(run_dir) / "checkpoints" / "last.pt"
    epoch = -1
    if last.is_file():
        try:
            epoch = int(load_checkpoint(last).get("epoch", 0))
        except CheckpointError:
            epoch = -1
    if epoch >= cfg.optim.epochs:
        return False
    if epoch >= 0:
        check_saved_before(recipe, cfg, Path(run_dir))
        train_recipe(recipe, cfg, run_dir, resume=True, console=console)
    else:
        prepare_run_dir(run_dir, force=(Path(run_dir) / "config.yaml").is_file())
        train_recipe(recipe, cfg, run_dir, console=console)
    return True
