"""Fault injection: SIGKILL at random moments of ``predict`` and ``train``, then the same command again.

The outputs must equal those of an uninterrupted job: no row lost, none doubled, no epoch lost or redone twice,
best/last consistent. The kill moments are drawn from a seeded generator (reproducible) and land anywhere: during
imports, in the middle of a batch, between a row's jsonl line and its csv row, during a checkpoint save. The larger
versions (more kills) are marked slow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.run_fixture import make_untrained_run

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "landmark_afl", *args], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_when(proc: subprocess.Popen, ready, extra_s: float, timeout: float = 120.0) -> bool:
    """SIGKILL ``proc`` ``extra_s`` seconds after ``ready()`` turns true; False when it finished first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the job made no progress")
        time.sleep(0.02)
    time.sleep(extra_s)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)  # the job and its reader workers, as an OOM killer or a power cut would
    proc.wait()
    return True


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    folder = root / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        cv2.imwrite(str(folder / f"img_{i:03d}.png"), (rng.random((72, 60)) * 65535).astype(np.uint16))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return root, make_untrained_run(root / "run", ["a", "b", "c"]), folder


def _predict_args(run: Path, folder: Path, out: Path) -> list[str]:
    return ["predict", str(run), str(folder), "--out", str(out), "--no-progress", "--batch-size", "2",
            "--workers", "1", "--amp", "off"]  # fmt: skip


def _kill_predict_and_finish(images, out: Path, kills: int, seed: int) -> int:
    root, run, folder = images
    rng = np.random.default_rng(seed)
    killed = 0
    for _ in range(kills):
        target = int(rng.integers(1, 20))
        proc = _start(_predict_args(run, folder, out))
        killed += _kill_when(proc, lambda t=target: _lines(out / "results.csv") + _lines(out / "errors.csv") >= t,
                             float(rng.uniform(0, 0.3)))  # fmt: skip
    final = subprocess.run([sys.executable, "-m", "landmark_afl", *_predict_args(run, folder, out)], env=ENV,
                           capture_output=True, text=True)  # fmt: skip
    assert final.returncode == 3, final.stderr  # the broken file is an error, every other image a result
    return killed


def _assert_same_outputs(a: Path, b: Path) -> None:
    for name in ("results.csv", "results.jsonl", "errors.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def uninterrupted(images):
    root, run, folder = images
    out = root / "clean"
    done = subprocess.run([sys.executable, "-m", "landmark_afl", *_predict_args(run, folder, out)], env=ENV,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert _lines(out / "results.csv") == 25 and _lines(out / "errors.csv") == 2  # headers + 24 / + 1
    return out


def test_predict_killed_twice_at_random_moments_ends_byte_identical(images, uninterrupted, tmp_path):
    out = tmp_path / "out"
    assert _kill_predict_and_finish(images, out, kills=2, seed=1) >= 1
    _assert_same_outputs(out, uninterrupted)


@pytest.mark.slow
def test_predict_killed_eight_times_ends_byte_identical(images, uninterrupted, tmp_path):
    out = tmp_path / "out"
    assert _kill_predict_and_finish(images, out, kills=8, seed=2) >= 4
    _assert_same_outputs(out, uninterrupted)


def _train_args(data: Path, out: Path) -> list[str]:
    """What a user runs after a kill: --resume once an epoch is saved, else the same training again (--force)."""
    if (out / "checkpoints" / "last.pt").is_file():
        return ["train", "--resume", str(out)]
    return ["train", "--data", str(data), "--out", str(out), "--epochs", "3", "input_size=[64,64]", "batch_size=4",
            "optim.log_every=1", "--force"]  # fmt: skip


def _epochs(path: Path) -> list[int]:
    import csv

    with path.open() as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _kill_train_and_finish(data: Path, out: Path, kills: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    killed = 0
    for _ in range(kills):
        rows = int(rng.integers(1, 3))  # after epoch 1 or 2 is written, somewhere in the next one or its save
        proc = _start(_train_args(data, out))
        killed += _kill_when(proc, lambda r=rows: _lines(out / "metrics.csv") > r, float(rng.uniform(0, 1.5)))
    final = subprocess.run([sys.executable, "-m", "landmark_afl", *_train_args(data, out)], env=ENV,
                           capture_output=True, text=True)  # fmt: skip
    assert final.returncode == 0, final.stderr[-3000:]
    return killed


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from landmark_afl.data.phantom import generate_phantom

    return generate_phantom(tmp_path_factory.mktemp("faults_ph") / "ph", n=12, seed=3, size=96)


def _train_once(data: Path, out: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "landmark_afl", *_train_args(data, out)], env=ENV,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def _assert_same_run(a: Path, b: Path) -> None:
    assert _epochs(a / "metrics.csv") == _epochs(b / "metrics.csv") == [1, 2, 3]
    assert not list((a / "checkpoints").glob("*.tmp"))
    last_a, last_b = (torch.load(p / "checkpoints" / "last.pt", weights_only=True) for p in (a, b))
    assert last_a["epoch"] == last_b["epoch"] == 3
    for key, value in last_b["task"].items():
        assert torch.equal(last_a["task"][key], value), key
    best = torch.load(a / "checkpoints" / "best.pt", weights_only=True)
    assert last_a["best_metrics"]["epoch"] == best["epoch"]


def test_train_killed_at_a_random_moment_resumes_to_the_same_weights(phantom, tmp_path):
    clean, out = tmp_path / "clean", tmp_path / "out"
    _train_once(phantom, clean)
    assert _kill_train_and_finish(phantom, out, kills=1, seed=3) == 1
    _assert_same_run(out, clean)


@pytest.mark.slow
def test_train_killed_four_times_resumes_to_the_same_weights(phantom, tmp_path):
    clean, out = tmp_path / "clean", tmp_path / "out"
    _train_once(phantom, clean)
    assert _kill_train_and_finish(phantom, out, kills=4, seed=4) >= 2
    _assert_same_run(out, clean)
