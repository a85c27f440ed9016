"""Keys added after a run was saved: a loaded or resumed run keeps what it trained with, not today's default."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from landmark_afl.engine.config import config_to_dict, missing_saved_keys
from landmark_afl.recipes import get_recipe
from landmark_afl.recipes.landmarks import SAVED_BEFORE, LandmarkConfig, config_from_state
from landmark_afl.recipes.train import check_saved_before, resolve_config


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


def test_a_comparison_refuses_to_resume_an_older_run_with_another_value(tmp_path):
    """compare resolves today's defaults: resuming an interrupted run saved before a key would change it half-way."""
    recipe = get_recipe("landmarks")
    older = config_to_dict(LandmarkConfig())
    del older["jpeg_scaling"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(older))
    with pytest.raises(ValueError, match=r"jpeg_scaling=False \(asked: True\).*Add jpeg_scaling=False"):
        check_saved_before(recipe, resolve_config(recipe, {}), tmp_path)
    check_saved_before(recipe, resolve_config(recipe, {"jpeg_scaling": "False"}), tmp_path)  # as trained: accepted
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config_to_dict(LandmarkConfig())))
    check_saved_before(recipe, resolve_config(recipe, {}), tmp_path)  # saved with the key: nothing to check


def test_every_reader_of_a_run_follows_its_jpeg_scaling(tmp_path, monkeypatch):
    """evaluate, the Detector and the training sets pass the run's jpeg_scaling to prepare_image: an older run
    (saved without the key, so False) reads JPEG in full everywhere, a new one scales."""
    import numpy as np
    from PIL import Image

    import landmark_afl.data.training as training
    from landmark_afl.data.dataset import load_dataset
    from landmark_afl.detector import Detector
    from landmark_afl.evaluation.evaluator import evaluate_run
    from landmark_afl.protocols import load_protocol
    from landmark_afl.recipes.landmarks import _split_set, load_trained_run
    from tests.run_fixture import make_untrained_run

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for name in ("a", "b"):
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 260), dtype=np.uint8)).save(
            data / "images" / f"{name}.jpg"
        )
    (data / "landmarks.csv").write_text("image,landmark,x,y\na.jpg,p,10,20\nb.jpg,p,30,40\n")
    spec = {"name": "jpg", "landmarks": ["p"], "splits": {"train": ["a.jpg"], "val": ["a.jpg"], "test": ["b.jpg"]}}
    (data / "dataset.yaml").write_text(yaml.safe_dump(spec))
    seen = []
    real = training.prepare_image

    def recording(path, protocol, input_size, fallback_spacing=None, jpeg_scaling=True):
        seen.append(jpeg_scaling)
        return real(path, protocol, input_size, fallback_spacing, jpeg_scaling)

    monkeypatch.setattr(training, "prepare_image", recording)
    for saved_with_key, expected in ((False, False), (True, True)):
        run = make_untrained_run(tmp_path / f"run-{saved_with_key}", ["p"], data=str(data))
        if not saved_with_key:  # a run from before the key: its checkpoints' config lacks it
            for name in ("best", "last"):
                path = run / "checkpoints" / f"{name}.pt"
                state = torch.load(path, weights_only=False)
                del state["config"]["jpeg_scaling"]
                torch.save(state, path)
        seen.clear()
        evaluate_run(run, split="test")
        Detector(load_trained_run(run), device="cpu")(data / "images" / "a.jpg")
        trained = load_trained_run(run)
        items = _split_set(trained.config, "val", trained.task, load_dataset(data), load_protocol("high"))
        items.prepared(0)
        assert seen == [expected] * 3, (saved_with_key, seen)
