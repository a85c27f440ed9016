import dataclasses
import warnings

import pytest

from landmark_afl.engine.config import (
    ConfigError,
    config_docs,
    config_to_dict,
    load_config_file,
    parse_overrides,
    update_config,
)
from landmark_afl.recipes import RECIPES, get_recipe
from landmark_afl.recipes.landmarks import ALIASES, LandmarkConfig


def test_precedence_defaults_file_then_command_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.01\n  epochs: 3\ninput_size: [320, 256]\n")
    cfg = load_config_file(path, LandmarkConfig())
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.input_size) == (0.01, 3, (320, 256))
    cfg = update_config(
        cfg, parse_overrides(["optim.epochs=5", "afl.enabled=False", "data=/x/y", "encoder_weights=None"])
    )
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.afl.enabled, cfg.data, cfg.encoder_weights) == (
        0.01,
        5,
        False,
        "/x/y",
        None,
    )
    assert LandmarkConfig().optim.epochs != 5  # defaults untouched (frozen dataclass copies)
    assert cfg.afl.critic_lr == LandmarkConfig().afl.critic_lr  # the rest of a section is kept


def test_dotted_keys_in_a_file_and_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("afl.critic_center: true\naugment.rotate: 0\n")
    cfg = load_config_file(path, LandmarkConfig())
    assert cfg.afl.critic_center is True and cfg.augment.rotate == 0.0
    assert update_config(LandmarkConfig(), config_to_dict(cfg)) == cfg


def test_old_flat_keys_are_aliases_with_a_notice():
    with pytest.warns(FutureWarning, match="lr -> optim.lr"):
        cfg = update_config(LandmarkConfig(), {"lr": "3e-4", "afl": "False", "critic_center": "True"}, aliases=ALIASES)
    assert (cfg.optim.lr, cfg.afl.enabled, cfg.afl.critic_center) == (3e-4, False, True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        update_config(LandmarkConfig(), {"optim.lr": "3e-4"}, aliases=ALIASES)  # new keys: no notice


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match="Did you mean.*optim.epochs"):
        update_config(LandmarkConfig(), {"optim.epoch": "3"})
    with pytest.raises(ConfigError, match="unknown config key 'optim.nope'"):
        update_config(LandmarkConfig(), {"optim.nope": "3"})
    with pytest.raises(ConfigError, match="is a section"):
        update_config(LandmarkConfig(), {"optim": "3"})


@pytest.mark.parametrize(
    ("item", "message"),
    [("optim.epochs=2.5", "must be int"), ("afl.enabled=yes", "True or False"), ("input_size=[256]", "list of 2"),
     ("optim.lr=None", "cannot be None"), ("lr", "key=value"), ("optim.schedule=linear", "must be one of"),
     ("optim.lr=-1.0", "must be > 0"), ("optim.milestones=[a]", "list")],
)  # fmt: skip
def test_bad_values_name_the_key(item, message):
    with pytest.raises(ValueError, match=message):
        update_config(LandmarkConfig(), parse_overrides([item]))


def test_variable_length_tuples():
    cfg = update_config(LandmarkConfig(), {"optim.milestones": "[60, 120, 160]"})
    assert cfg.optim.milestones == (60, 120, 160)


def test_int_for_float_and_never_eval():
    cfg = update_config(LandmarkConfig(), {"optim.lr": "1", "protocol": "__import__('os').system('false')"})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.protocol.startswith("__import__")  # kept as a plain string, never evaluated


def test_bad_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml", LandmarkConfig())
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(bad, LandmarkConfig())


@pytest.mark.parametrize("task", list(RECIPES))
def test_every_key_of_every_recipe_is_documented(task):
    recipe = get_recipe(task)
    rows = config_docs(recipe.config)
    undocumented = [key for key, _, doc in rows if not doc]
    assert not undocumented, f"--task {task}: keys without a doc line in their dataclass's Attributes: {undocumented}"
    assert len({k for k, _, _ in rows}) == len(rows)
    defaults = recipe.config()
    assert all(dataclasses.is_dataclass(getattr(defaults, s)) for s in ("optim", "afl"))
