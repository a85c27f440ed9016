"""A run initialised from pretrained encoder weights is rebuilt from its checkpoint alone: no download, offline."""

from __future__ import annotations

import pytest
import torch

from landmark_afl.cli import main
from landmark_afl.recipes.landmarks import load_trained_run
from tests.run_fixture import make_untrained_run


def test_an_imagenet_initialised_run_loads_evaluates_nothing_and_exports_offline(tmp_path, monkeypatch):
    run = make_untrained_run(tmp_path / "run", ["a", "b", "c"], encoder_weights="imagenet")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_download(*args, **kwargs):
        raise AssertionError("a trained run must not fetch pretrained weights")

    import segmentation_models_pytorch.encoders as smp_encoders

    monkeypatch.setattr(smp_encoders, "load_state_dict_from_url", no_download, raising=False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    trained = load_trained_run(run)
    assert trained.config.encoder_weights == "imagenet"  # the run's own record is kept
    saved = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["task"]
    for key, value in trained.task.state_dict().items():
        assert torch.equal(value, saved[key]), key  # the weights are the checkpoint's
    pytest.importorskip("onnx")
    assert main(["export", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 0
