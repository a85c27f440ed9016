"""The ``decode`` setting: soft-argmax for new runs, the parabola for checkpoints saved before the key existed."""

from __future__ import annotations

import pytest
import torch

from landmark_afl.engine.checkpoint import load_checkpoint, save_checkpoint
from landmark_afl.recipes.landmarks import LandmarkConfig, load_trained_run
from tests.run_fixture import make_untrained_run

LANDMARKS = ["a", "b", "c"]


def test_new_runs_decode_with_soft_argmax_and_the_setting_is_checked(tmp_path):
    run = load_trained_run(make_untrained_run(tmp_path / "run", LANDMARKS))
    assert run.config.decode == "soft-argmax" and run.codec.refine == "soft-argmax"
    parabola = load_trained_run(make_untrained_run(tmp_path / "p", LANDMARKS, decode="parabola"))
    assert parabola.codec.refine == "parabola"
    with pytest.raises(ValueError, match="decode must be one of"):
        LandmarkConfig(decode="dark")


def test_a_checkpoint_saved_before_the_setting_keeps_the_parabola(tmp_path):
    path = make_untrained_run(tmp_path / "old", LANDMARKS) / "checkpoints" / "best.pt"
    state = load_checkpoint(path)
    del state["config"]["decode"]
    state["codec"].pop("refine")
    save_checkpoint(path, state)
    run = load_trained_run(path)
    assert run.config.decode == "parabola" and run.codec.refine == "parabola"


def test_set_decode_changes_only_the_refinement(tmp_path):
    run = load_trained_run(make_untrained_run(tmp_path / "run", LANDMARKS))
    maps = torch.rand(2, 3, 64, 64)
    soft = run.codec.decode(maps)
    run.set_decode("parabola")
    assert run.config.decode == "parabola" and run.codec.refine == "parabola"
    assert run.codec.input_size == (64, 64) and run.codec.sigma == 3.0
    parabola = run.codec.decode(maps)
    assert torch.equal(soft[1], parabola[1]) and not torch.equal(soft[0], parabola[0])
