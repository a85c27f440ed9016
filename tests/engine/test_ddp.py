"""Data-parallel training under torchrun: 2 CPU processes with gloo, on a tiny phantom (slow: ~1 min)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from landmark_afl.cli import main
from landmark_afl.engine.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")
TINY = ["input_size=[64,64]", "batch_size=2", "optim.log_every=1"]


def _torchrun(dump: Path, stop: int, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
           str(dump), str(stop), *argv]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from landmark_afl.data.phantom import generate_phantom

    return generate_phantom(tmp_path_factory.mktemp("phantom") / "ph", n=12, seed=3, size=128)


def _states(dump: Path, epoch: int) -> tuple[dict, dict]:
    return torch.load(dump / f"rank0-epoch{epoch}.pt"), torch.load(dump / f"rank1-epoch{epoch}.pt")


@pytest.mark.slow
def test_two_processes_train_resume_exactly_and_evaluate_in_one(phantom, tmp_path):
    full, split = tmp_path / "full", tmp_path / "split"
    args = ["train", "--data", str(phantom), "--epochs", "2", *TINY]
    done = _torchrun(tmp_path / "dump_full", 0, *args, "--out", str(full))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "effective batch 4" in done.stdout + done.stderr

    # replicas identical after every epoch: model, critic and BatchNorm statistics
    for epoch in (1, 2):
        a, b = _states(tmp_path / "dump_full", epoch)
        assert any(k.startswith("afl.critic") for k in a)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{key} differs between ranks")

    # one metrics row per epoch; every training image once per epoch in difficulty.csv (8 images, 2 x 2 x 2)
    with (full / "metrics.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    with (full / "difficulty.csv").open() as f:
        rows = list(csv.DictReader(f))
    per_epoch = Counter(r["epoch"] for r in rows)
    assert per_epoch == {"1": 8, "2": 8}
    assert len({(r["epoch"], r["image"]) for r in rows}) == 16
    state = load_checkpoint(full / "checkpoints/last.pt")
    assert state["world_size"] == 2 and not any(k.startswith("module.") for k in state["task"])
    log = (full / "train.log").read_text()  # rank 0 alone writes it
    assert log.count("=== [") == 1 and log.count("epoch 1 done in") == 1 and log.count("epoch 2 done in") == 1

    # killed after epoch 1, resumed under torchrun: the same final weights as the uninterrupted run
    stopped = _torchrun(tmp_path / "dump_split", 1, *args, "--out", str(split))
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert load_checkpoint(split / "checkpoints/last.pt")["epoch"] == 1
    resumed = _torchrun(tmp_path / "dump_split", 0, "train", "--resume", str(split))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = (split / "train.log").read_text()
    assert log.count("=== [") == 2 and "] resumed after epoch 1 " in log and log.count("epoch 2 done in") == 1
    a, b = load_checkpoint(full / "checkpoints/last.pt"), load_checkpoint(split / "checkpoints/last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for key, tensor in a["task"].items():
        torch.testing.assert_close(tensor, b["task"][key], rtol=0, atol=0, msg=f"{key} differs after resume")

    # the DDP checkpoint is evaluated in one process, and training continues there (with a notice)
    assert main(["evaluate", str(full), "--split", "val", "--out", str(tmp_path / "eval")]) == 0
    assert main(["train", "--resume", str(full), "--epochs", "3"]) == 0


@pytest.mark.slow
def test_a_failing_rank_stops_the_job_and_names_itself(phantom, tmp_path):
    bad = _torchrun(tmp_path / "dump", 0, "train", "--data", str(phantom), "--out", str(tmp_path / "r"), "--epochs",
                    "1", *TINY, "optim.sync_bn=True")  # fmt: skip
    assert bad.returncode != 0
    assert "rank 0 of 2" in bad.stderr and "sync_bn" in bad.stderr
