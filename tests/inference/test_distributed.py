"""torchrun with 2 CPU processes (gloo): the shards' outputs merge into the single-process outputs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from landmark_afl.cli import main
from landmark_afl.inference.distributed import DistContext
from tests.inference.real_inputs import make_real_folder, make_run


def test_shards_are_interleaved_and_cover_everything():
    items = list(range(11))
    shards = [DistContext(rank=r, world=3).shard(items) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert sorted(sum(shards, [])) == items


def _numbers(rows: list[dict]) -> np.ndarray:
    return np.array([[float(v) for k, v in r.items() if k.endswith(("_x", "_y", "_peak"))] for r in rows])


@pytest.mark.slow  # ~30 s on 2 shared cores: two torchrun launches of 2 processes each
def test_torchrun_two_processes_merge_into_the_single_process_result(tmp_path):
    good, broken = make_real_folder(tmp_path / "in")
    run = make_run(tmp_path)
    single = tmp_path / "single"
    assert main(["predict", str(run), str(tmp_path / "in"), "--out", str(single), "--workers", "0",
                 "--batch-size", "2", "--no-progress"]) == 3  # fmt: skip
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    out = tmp_path / "dist"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "landmark_afl", "predict", str(run),
           str(tmp_path / "in"), "--out", str(out), "--workers", "0", "--batch-size", "2", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert "exitcode  : 3" in proc.stderr, proc.stderr[-3000:]  # each rank exits 3: some files failed
    assert not (out / "parts").exists()  # merged and removed
    assert (out / "errors.csv").read_text() == (single / "errors.csv").read_text()
    rows = {}
    for folder in (single, out):
        with (folder / "results.csv").open(newline="") as f:
            rows[folder] = list(csv.DictReader(f))
    assert [r["path"] for r in rows[out]] == [r["path"] for r in rows[single]] == [str(p) for p in good]
    np.testing.assert_allclose(_numbers(rows[out]), _numbers(rows[single]), atol=0.01)
    jsonl = [json.loads(line)["path"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert jsonl == [str(p) for p in good]
    # resumed under torchrun: nothing left to do, outputs unchanged
    before = (out / "results.csv").read_bytes()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert "0 processed" in proc.stderr, proc.stderr[-3000:]
    assert (out / "results.csv").read_bytes() == before
