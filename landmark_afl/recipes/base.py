"""What a recipe is: a task's config, the builder of its data + model + task, and its evaluation.

A recipe module (``landmark_afl/recipes/<name>.py``) defines its frozen config dataclass, ``build(cfg) ->
Training``, ``evaluate(run_dir, split) -> metrics`` and ``RECIPE = Recipe(...)``; one line in the registry
(``landmark_afl/recipes/__init__.py``) makes it ``landmark-afl train --task <name>``. Every config has the keys
``data``, ``seed``, ``batch_size``, ``num_workers``, ``device``, ``optim`` (``OptimConfig``) and ``afl``
(``AFLConfig``); the generic ``train_recipe`` needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED_KEYS = ("data", "seed", "batch_size", "num_workers", "device", "optim", "afl")


@dataclass
class Training:
    """What a recipe's ``build`` returns and the generic trainer takes.

    Attributes:
        task: the ``TrainTask`` (on the CPU; the trainer moves it).
        train_loader: the training loader (its data set may expose ``set_epoch``).
        val_loader: the validation loader.
        run_meta: extra entries saved in every checkpoint (``train_recipe`` adds "recipe" and "config").
        description: one line printed at the start: data folder, image counts, model, input size.
        data_dir: the resolved data folder, where there is one.
    """

    task: Any
    train_loader: Any
    val_loader: Any
    run_meta: dict = field(default_factory=dict)
    description: str = ""
    data_dir: Path | None = None


@dataclass(frozen=True)
class Recipe:
    """One task's recipe (see the module docstring).

    Attributes:
        name: the ``--task`` name.
        summary: one line for the registry listing.
        config: the recipe's frozen config dataclass (its defaults are the recipe's defaults).
        build: cfg -> ``Training``; validates the data up front with errors that name the file and the fix.
        evaluate: (run_dir, split) -> metrics of ``checkpoints/best.pt`` on that split (floats), for ``compare``.
        arms: compare arms, label -> dotted overrides (e.g. ``{"baseline": {"afl.enabled": False}}``).
        report_metrics: the ``evaluate`` keys that ``compare`` tabulates as mean +- std.
        splits: the splits ``evaluate`` accepts; the first is the default of ``compare --split``.
        aliases: old config key -> new dotted key, accepted for one release with a notice.
        saved_before: dotted key -> the value a run saved before that key existed was trained (or decoded) with;
            a resumed or loaded run whose saved config lacks the key gets that value, not today's default.
        after_fit: (run_dir, training) -> None, run once training has finished (plots, summaries).
        check: (data_dir, cfg) -> text for ``landmark-afl data check --task NAME`` (e.g. the accuracy ceiling of
            the data path at the configured input size).
        check_resume: (checkpoint state, training, path) -> None; raises ``CheckpointError`` when the checkpoint
            does not belong to this run's data (other landmarks, another protocol...).
        run_name: cfg -> the default run folder name prefix (``--out`` not given).
        summarize: best-epoch metrics -> the text printed when training ends (default: every ``val_*`` value).
    """

    name: str
    summary: str
    config: type
    build: Callable[[Any], Training]
    evaluate: Callable[[Path, str], dict]
    arms: dict[str, dict] = field(default_factory=lambda: {"baseline": {"afl.enabled": False}, "AFL": {}})
    report_metrics: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("val",)
    aliases: dict[str, str] = field(default_factory=dict)
    saved_before: dict[str, object] = field(default_factory=dict)
    after_fit: Callable[[Path, Training], None] | None = None
    check: Callable[[str, Any], str] | None = None
    check_resume: Callable[[dict, Training, Path], None] | None = None
    run_name: Callable[[Any], str] | None = None
    summarize: Callable[[dict], str] | None = None

    def __post_init__(self) -> None:
        import dataclasses

        names = {f.name for f in dataclasses.fields(self.config)}
        missing = [k for k in REQUIRED_KEYS if k not in names]
        assert not missing, f"recipe {self.name!r}: config {self.config.__name__} lacks {missing}"


def load_run(run_dir: Path, recipe: str, config_cls):
    """(checkpoint path, state, cfg) of ``run_dir/checkpoints/best.pt``, checked to be a ``recipe`` run.

    Raises:
        CheckpointError: no readable checkpoint, or one trained with another ``--task``.
    """
    from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint
    from landmark_afl.engine.config import update_config

    path = Path(run_dir) / "checkpoints" / "best.pt"
    state = load_checkpoint(path, map_location="cpu")
    if state.get("recipe") != recipe:
        raise CheckpointError(f"{path} was trained with --task {state.get('recipe')}, not {recipe}")
    return path, state, update_config(config_cls(), state["config"], source=str(path))
