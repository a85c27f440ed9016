"""scripts/isbi_benchmark.py's own logic: the wall-clock budget stops a command, and the summary's mean +- std."""

from __future__ import annotations

import json
import statistics
import sys

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("isbi_benchmark")


def test_the_budget_stops_a_command_and_says_so(bench, tmp_path):
    cmd = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    rc, seconds, rss, stopped = bench._run(cmd, tmp_path / "log", deadline=0.0)
    assert stopped and rc != 0 and seconds < 30 and rss > 0
    assert "$ " in (tmp_path / "log").read_text()  # the command line heads its log
    rc, seconds, _, stopped = bench._run([sys.executable, "-c", "pass"], tmp_path / "log2")
    assert rc == 0 and not stopped


def _seed(seed: int, mre: float, fn: int) -> dict:
    figures = {"mre_all_mm": mre, "sd_all_mm": 1.0, "mre_mm": mre - 0.03, "false_negatives": fn, "present": 2850,
               "epoch": 30, "sdr_all": {"2": 80.0 + seed, "4": 97.0}, "sdr": {"2": 82.0, "4": 98.0}}  # fmt: skip
    return {"seed": seed, "train_minutes": 30.0 + seed, "train_peak_rss_mb": 1900.0 + seed,
            "test_best": figures, "test_last": dict(figures, epoch=40)}  # fmt: skip


def test_the_summary_gathers_every_seed_file_with_mean_and_sample_std(bench, tmp_path):
    runs = [_seed(0, 1.20, 50), _seed(1, 1.25, 60), _seed(2, 1.19, 55)]
    for run in runs:
        (tmp_path / f"seed-{run['seed']}.json").write_text(json.dumps(run))
    summary = bench.summarize(tmp_path)
    assert summary["seeds"] == [0, 1, 2] and summary["train_peak_rss_mb"] == 1902.0
    mre = summary["test_best"]["mre_all_mm"]
    assert mre["mean"] == pytest.approx(statistics.fmean([1.20, 1.25, 1.19]))
    assert mre["std"] == pytest.approx(statistics.stdev([1.20, 1.25, 1.19]))
    assert summary["test_last"]["sdr_all"]["2"]["mean"] == pytest.approx(81.0)
    single = tmp_path / "one"
    single.mkdir()
    (single / "seed-0.json").write_text(json.dumps(runs[0]))
    assert bench.summarize(single)["test_best"]["false_negatives"] == {"mean": 50, "std": None}


def test_the_summary_refuses_seed_files_of_different_settings(bench, tmp_path):
    command = "train --data isbi --config configs/isbi2015.yaml --out {out}/seed-{seed} seed={seed}"
    for seed, extra in ((0, ""), (1, ""), (2, " afl.enabled=False")):
        run = dict(_seed(seed, 1.2, 50), train_command=command.format(out=tmp_path, seed=seed) + extra)
        (tmp_path / f"seed-{seed}.json").write_text(json.dumps(run))
    with pytest.raises(SystemExit, match="2 different train commands"):
        bench.summarize(tmp_path)
    (tmp_path / "seed-2.json").unlink()
    assert bench.summarize(tmp_path)["seeds"] == [0, 1]  # the seed and the run folder may differ
    assert bench._setting("train --config /a/configs/x.yaml --out o seed=1 k=v") == "train --config x.yaml k=v"


def test_the_summary_refuses_one_command_run_with_different_defaults(bench, tmp_path):
    command = "train --data isbi --config configs/isbi2015.yaml --out o seed=0"
    for seed, scaling in ((0, True), (1, False)):
        config = {"input_size": [448, 352], "jpeg_scaling": scaling}
        run = dict(_seed(seed, 1.2, 50), train_command=command, config=config)
        (tmp_path / f"seed-{seed}.json").write_text(json.dumps(run))
    with pytest.raises(SystemExit, match="different configs"):
        bench.summarize(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: 3\ninput_size: [448, 352]\njpeg_scaling: true\n")
    assert bench._run_config(run_dir) == {"input_size": [448, 352], "jpeg_scaling": True}  # the seed left out
    assert bench._run_config(tmp_path / "missing") is None
