"""Keys added after a run was saved: a loaded or resumed run keeps what it trained with, not today's default."""

from __future__ import annotations

from pathlib import Path

import yaml

from landmark_afl.engine.config import config_to_dict, missing_saved_keys
from landmark_afl.recipes import get_recipe
from landmark_afl.recipes.landmarks import SAVED_BEFORE, LandmarkConfig, config_from_state
from landmark_afl.recipes.train import resolve_config


def test_new_runs_focus_the_weights_and_older_ones_keep_gamma_one():
    assert LandmarkConfig().afl.focus_gamma == 2.0 and LandmarkConfig().afl.critic_center
    older = config_to_dict(LandmarkConfig())
    del older["afl"]["focus_gamma"], older["decode"], older["jpeg_scaling"]
    cfg = config_from_state({"config": older}, Path("old.pt"))
    assert cfg.afl.focus_gamma == 1.0 and cfg.decode == "parabola" and cfg.afl.critic_center
    assert cfg.jpeg_scaling is False and LandmarkConfig().jpeg_scaling is True  # old runs read JPEG in full
    first_release = config_from_state({"config": {"afl": True, "critic_center": True}}, Path("first.pt"))
    assert first_release.afl.enabled and first_release.afl.focus_gamma == 1.0
    saved = config_to_dict(LandmarkConfig())  # saved with the keys: their values are kept
    assert config_from_state({"config": saved}, Path("new.pt")).afl.focus_gamma == 2.0


def test_a_resumed_run_saved_without_the_key_keeps_its_value(tmp_path):
    recipe = get_recipe("landmarks")
    older = config_to_dict(LandmarkConfig())
    del older["afl"]["focus_gamma"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(older))
    assert resolve_config(recipe, {}, resume=tmp_path).afl.focus_gamma == 1.0
    assert resolve_config(recipe, {"afl.focus_gamma": "3"}, resume=tmp_path).afl.focus_gamma == 3.0  # asked for
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config_to_dict(LandmarkConfig())))
    assert resolve_config(recipe, {}, resume=tmp_path).afl.focus_gamma == 2.0


def test_missing_saved_keys_reads_nested_dotted_and_aliased_keys():
    defaults = {"afl.focus_gamma": 1.0, "decode": "parabola"}
    assert missing_saved_keys({"afl": {"focus_gamma": 2}}, defaults) == {"decode": "parabola"}
    assert missing_saved_keys({"afl.focus_gamma": 2, "decode": "x"}, defaults) == {}
    assert missing_saved_keys({"gamma": 2}, defaults, {"gamma": "afl.focus_gamma"}) == {"decode": "parabola"}
    assert set(SAVED_BEFORE) == {"decode", "afl.focus_gamma", "jpeg_scaling"}
