"""``key=value`` overrides go anywhere on the command line, between options too (as ``yolo`` takes them)."""

from __future__ import annotations

import pytest

import landmark_afl.cli.compare as compare_cli
import landmark_afl.cli.data as data_cli
import landmark_afl.cli.train as train_cli
from landmark_afl.cli import main
from landmark_afl.engine.config import parse_overrides
from landmark_afl.recipes import get_recipe
from landmark_afl.recipes.train import resolve_config


@pytest.fixture
def received(monkeypatch):
    """The parsed arguments each command would have run with (nothing is trained or read)."""
    seen = []
    for module, name in ((train_cli, "run"), (compare_cli, "run_compare"), (data_cli, "run_check")):
        monkeypatch.setattr(module, name, lambda args: seen.append(args) or 0)
    return seen


def test_train_takes_overrides_between_options(received):
    assert main(["train", "--data", "D", "lr=1e-3", "--epochs", "5", "seed=1"]) == 0
    args = received[-1]
    assert (args.data, args.epochs, args.overrides) == ("D", 5, ["lr=1e-3", "seed=1"])
    recipe = get_recipe("landmarks")
    with pytest.warns(FutureWarning, match="lr -> optim.lr"):  # the flat key of the first release, still taken
        cfg = resolve_config(recipe, {**parse_overrides(args.overrides), **train_cli.flag_values(args, recipe.config)})
    assert (cfg.data, cfg.optim.epochs, cfg.optim.lr, cfg.seed) == ("D", 5, 1e-3, 1)


def test_overrides_first_last_and_between_keep_their_order(received):
    assert main(["train", "a=1", "--no-afl", "b=2", "--out", "R", "a=3", "c=[1,2]"]) == 0
    args = received[-1]
    assert args.no_afl and args.out == "R" and args.overrides == ["a=1", "b=2", "a=3", "c=[1,2]"]
    assert parse_overrides(args.overrides)["a"] == "3"  # the later value wins, as when they are all at the end


def test_other_commands_with_overrides_take_them_anywhere(received):
    assert main(["data", "check", "DIR", "input_size=[64,64]", "--task", "landmarks", "sigma=2.0"]) == 0
    assert received[-1].overrides == ["input_size=[64,64]", "sigma=2.0"] and received[-1].task == "landmarks"
    assert main(["compare", "--epochs", "2", "lr=1e-3", "--out", "O", "seed=4"]) == 0
    assert received[-1].overrides == ["lr=1e-3", "seed=4"] and received[-1].epochs == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "D", "lr=1e-3", "--bogus"],  # an unknown option is not an override
        ["train", "lr=1", "--epochs", "5", "seed"],  # "seed" is no key=value
        ["protocols", "list", "seed=1"],  # a command without overrides takes none
    ],
)
def test_what_is_not_an_override_is_refused(argv, received, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
    assert not received
