import pytest
import torch

from landmark_afl.models import ModelConfig, PretrainedWeightsError, build_model
from landmark_afl.models.fpn import check_input_size


@pytest.mark.parametrize("encoder", ["resnet18", "mobilenet_v2", "efficientnet-b0"])
def test_fpn_outputs_k_maps_at_input_resolution_and_starts_near_zero(encoder):
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder=encoder, num_landmarks=7)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 96, 64))
    assert out.shape == (2, 7, 96, 64)
    assert out.abs().max() < 0.1  # near-empty heatmaps at the start (init_heatmap_head)


def test_head_bias_for_sigmoid_losses():
    model = build_model(ModelConfig(num_landmarks=3, head_bias=-2.19)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 64, 64))
    assert torch.sigmoid(out).mean().item() == pytest.approx(0.1, abs=0.01)


def test_clear_errors():
    with pytest.raises(ValueError, match="Did you mean resnet18"):
        build_model(ModelConfig(encoder="resnet81"))
    with pytest.raises(ValueError, match="divisible by 32"):
        check_input_size((100, 64))


def test_pretrained_weights_offline_fail_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsError, match="encoder_weights=None"):
        build_model(ModelConfig(encoder_weights="imagenet"))
