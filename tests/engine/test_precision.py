"""Mixed precision: what ``amp`` means on this CPU, bf16 autocast in training and inference, the fp32 head."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from landmark_afl.engine import optim
from landmark_afl.engine.device import bf16_from_cpuinfo, cpu_bf16_support
from landmark_afl.engine.optim import autocast_dtype, precision_label
from landmark_afl.models import ModelConfig, build_model

CPU = torch.device("cpu")


def test_cpu_bf16_detection_agrees_with_the_cpu_flags():
    assert bf16_from_cpuinfo("flags : fpu avx512f avx512_bf16 sse") == "avx512_bf16"
    assert bf16_from_cpuinfo("flags : fpu avx512f amx_tile amx_bf16 avx512_bf16") == "amx_bf16"
    assert bf16_from_cpuinfo("flags : fpu avx2 avx512f") is None  # AVX-512 alone only emulates bf16
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo (not Linux): torch's own check is the only one")
    # torch's check and the kernel's flags must agree on whether this CPU has native bf16
    assert (cpu_bf16_support() is None) == (bf16_from_cpuinfo(cpuinfo.read_text()) is None)


@pytest.mark.parametrize("support", [None, "avx512_bf16"])
def test_amp_auto_on_the_cpu_is_bf16_only_with_native_support(monkeypatch, support):
    monkeypatch.setattr(optim, "cpu_bf16_support", lambda: support)
    assert autocast_dtype("auto", CPU) == (torch.bfloat16 if support else None)
    assert precision_label("auto", CPU) == (f"bf16 autocast (CPU {support})" if support else
                                            "fp32 (this CPU has no native bf16)")  # fmt: skip
    assert autocast_dtype("off", CPU) is None and precision_label("off", CPU) == "fp32"
    assert autocast_dtype("bf16", CPU) == torch.bfloat16  # forced: emulated where there is no support
    if not support:
        assert "emulated" in precision_label("bf16", CPU)


def test_fp16_on_the_cpu_is_refused_with_the_alternatives():
    with pytest.raises(ValueError, match="CUDA only.*amp=auto"):
        autocast_dtype("fp16", CPU)


def test_the_heatmap_head_stays_float32_under_bf16_and_keeps_smp_keys():
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_landmarks=3)).eval()
    assert "segmentation_head.0.weight" in model.state_dict()  # checkpoints of the first release still load
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        fp32 = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(x)
            decoder = model.decoder(model.encoder(x))
    assert decoder.dtype == torch.bfloat16  # the body runs in bf16 ...
    assert bf16.dtype == torch.float32  # ... the head in float32
    assert torch.allclose(bf16, fp32, atol=0.02 * float(fp32.abs().max()))


def test_a_bf16_training_run_trains_validates_and_says_its_precision(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one log line per message
    from landmark_afl.cli import main
    from landmark_afl.data.phantom import generate_phantom

    data = generate_phantom(tmp_path / "ph", n=8, seed=3, size=96)
    run = tmp_path / "run"
    code = main(["train", "--data", str(data), "--out", str(run), "--epochs", "1", "optim.amp=bf16",
                 "input_size=[64,64]", "batch_size=4"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr()
    assert "bf16 autocast (CPU" in out.out + out.err
    import csv

    with (run / "metrics.csv").open() as f:
        row = next(csv.DictReader(f))
    assert float(row["train_loss"]) > 0 and row["val_false_negatives"] != ""
