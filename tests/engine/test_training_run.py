"""End-to-end training through the CLI on a tiny phantom: run folder contract, exact resume, clear errors."""

from __future__ import annotations

import csv

import pytest
import torch

from landmark_afl.cli import main
from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint
from landmark_afl.engine.trainer import NonFiniteLossError, OptimConfig, Trainer
from landmark_afl.tasks.base import TrainTask
from landmark_afl.tasks.landmark_run import check_compatible, load_trained_run

TINY = ["input_size=[64,64]", "batch_size=4", "log_every=1", "aug_noise=0.01"]


@pytest.fixture(scope="module")
def tiny_phantom(tmp_path_factory):
    from landmark_afl.data.phantom import generate_phantom

    return generate_phantom(tmp_path_factory.mktemp("phantom") / "ph", n=12, seed=3, size=128)


def _train(data, out, *extra):
    return main(["train", "--data", str(data), "--out", str(out), *extra, *TINY])


def test_run_folder_contract_and_exact_resume(tiny_phantom, tmp_path, monkeypatch):
    full, split = tmp_path / "full", tmp_path / "split"
    assert _train(tiny_phantom, full, "--epochs", "2") == 0

    end_epoch = Trainer._end_epoch

    def killed_after_first_epoch(self, metrics, writer, console):
        end_epoch(self, metrics, writer, console)
        raise KeyboardInterrupt  # as if the job were killed right after epoch 1 was saved

    monkeypatch.setattr(Trainer, "_end_epoch", killed_after_first_epoch)
    assert _train(tiny_phantom, split, "--epochs", "2") == 130
    monkeypatch.setattr(Trainer, "_end_epoch", end_epoch)
    assert main(["train", "--resume", str(split)]) == 0

    for name in ("config.yaml", "metrics.csv", "difficulty.csv", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (full / name).is_file(), name
    assert list(full.glob("events.out.tfevents.*"))

    a, b = load_checkpoint(full / "checkpoints/last.pt"), load_checkpoint(split / "checkpoints/last.pt")
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"]
    for key, tensor in a["task"].items():
        torch.testing.assert_close(tensor, b["task"][key], rtol=0, atol=0, msg=f"{key} differs after resume")
    assert a["config"]["epochs"] == 2 and a["landmarks"] == b["landmarks"] and len(a["landmarks"]) == 36

    with (split / "metrics.csv").open() as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]
    with (split / "difficulty.csv").open() as f:
        rows = list(csv.DictReader(f))
    epochs = {int(r["epoch"]) for r in rows}
    assert epochs == {1, 2}
    assert all(0.0 < float(r["score"]) < 1.0 for r in rows)
    n_train = len(rows) // 2
    assert n_train >= 4

    run = load_trained_run(full, "best")
    assert run.protocol == "high" and run.task.codec.input_size == (64, 64)


def test_baseline_run_has_no_critic_and_resume_checks_compatibility(tiny_phantom, tmp_path):
    out = tmp_path / "base"
    assert _train(tiny_phantom, out, "--epochs", "1", "--no-afl") == 0
    state = load_checkpoint(out / "checkpoints/last.pt")
    assert not any(k.startswith("afl.") for k in state["task"])
    meta = {"landmarks": state["landmarks"][:-1], "protocol": state["protocol"]}
    with pytest.raises(CheckpointError, match="36 landmarks"):
        check_compatible(state, meta, out)
    with pytest.raises(CheckpointError, match="protocol 'high'"):
        check_compatible(state, {"landmarks": state["landmarks"], "protocol": "low"}, out)
    assert main(["train", "--resume", str(out), "--epochs", "1", "--protocol", "low"]) == 2


def test_usage_errors_exit_2(tiny_phantom, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert _train(tiny_phantom, out, "--epochs", "1") == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert main(["train", "--protocol", "hihg", "--data", str(tiny_phantom), "--out", str(tmp_path / "o2")]) == 2
    assert "high" in capsys.readouterr().err
    assert main(["train", "--data", str(tiny_phantom), "--out", str(tmp_path / "o3"), "epoch=3"]) == 2
    assert "Did you mean" in capsys.readouterr().err


class _NaNTask(TrainTask):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, batch):
        return {"loss": self.w * float("nan")}

    def validate(self, loader):
        return {"val_loss": 0.0}


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    loader = torch.utils.data.DataLoader([{"image": torch.zeros(1)}] * 2, batch_size=1)
    trainer = Trainer(_NaNTask(), loader, loader, OptimConfig(epochs=1), tmp_path, "cpu", {})
    with pytest.raises(NonFiniteLossError, match="non-finite loss.*epoch 1, step 1.*Lower lr"):
        trainer.fit()
    assert not (tmp_path / "checkpoints" / "last.pt").exists()
