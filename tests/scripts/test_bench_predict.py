"""scripts/bench_predict.py: reads served from memory give the predictions of the files, and are undone after."""

from __future__ import annotations

import csv

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_predict")


def rows(out_dir) -> list[dict]:
    with open(out_dir / "results.csv", newline="") as f:
        return sorted(csv.DictReader(f), key=lambda row: row["path"])


@pytest.mark.parametrize("reader", ["thread", "process"])
def test_reads_from_memory_give_the_predictions_of_the_files(bench, tmp_path, reader):
    """With the image folder moved away, every read (the reader's included) must come from the cache."""
    from landmark_afl.inference.engines import TorchEngine
    from landmark_afl.inference.inputs import collect_inputs
    from landmark_afl.inference.stream import InferenceSet
    from landmark_afl.recipes.landmarks import load_trained_run

    run = load_trained_run(bench.make_run(tmp_path / "run", 64, "resnet18"))
    paths = collect_inputs(bench.make_images(tmp_path / "images", 5, 64))
    engine = TorchEngine(run.task, amp="off")
    original = InferenceSet.__getitem__
    files = bench.end_to_end(run, engine, paths, tmp_path / "files", 2, 1, reader)
    with bench.reads_from_memory(run, paths, processes=reader == "process"):
        (tmp_path / "images").rename(tmp_path / "away")
        try:
            memory = bench.end_to_end(run, engine, paths, tmp_path / "memory", 2, 1, reader)  # asserts none failed
        finally:
            (tmp_path / "away").rename(tmp_path / "images")
    assert InferenceSet.__getitem__ is original
    assert files["images"] == memory["images"] == 5
    assert rows(tmp_path / "files") == rows(tmp_path / "memory")


def test_reads_from_memory_are_undone_after_an_error_and_refuse_other_settings(bench, tmp_path):
    from landmark_afl.inference.inputs import collect_inputs
    from landmark_afl.inference.stream import InferenceSet
    from landmark_afl.protocols import load_protocol
    from landmark_afl.recipes.landmarks import load_trained_run

    run = load_trained_run(bench.make_run(tmp_path / "run", 64, "resnet18"))
    paths = collect_inputs(bench.make_images(tmp_path / "images", 2, 64))
    original = InferenceSet.__getitem__
    with pytest.raises(ValueError, match="cached reads were made with"):
        with bench.reads_from_memory(run, paths):
            InferenceSet(paths, load_protocol(run.protocol), (32, 32))[0]
    assert InferenceSet.__getitem__ is original


class CountingEngine:
    """An engine whose passes are counted and numbered (the maps hold the pass number)."""

    def __init__(self) -> None:
        import torch

        from landmark_afl.codecs.gaussian_heatmap import GaussianHeatmapCodec

        self.codec = GaussianHeatmapCodec((8, 8), sigma=1.0)
        self.name, self.precision, self.passes = "counting", "fp32", 0
        self._torch = torch

    def heatmaps(self, images):
        self.passes += 1
        return self._torch.full((images.shape[0], 2, 8, 8), float(self.passes))


def test_paired_passes_run_every_batch_again_apart_and_return_the_first(bench):
    import torch

    inner = CountingEngine()
    timed = bench.TimedEngine(inner, paired=True)
    xy, peaks = timed(torch.zeros(3, 1, 8, 8))
    assert inner.passes == 2  # the batch, then its paired pass
    assert peaks.shape == (3, 2) and (peaks == 1.0).all()  # the first pass's maps were decoded, not the second's
    assert timed.alone_s > 0 and timed.forward_s > 0
    plain = bench.TimedEngine(CountingEngine())
    plain(torch.zeros(3, 1, 8, 8))
    assert plain.engine.passes == 1 and plain.alone_s == 0.0


def test_paired_ratio_leaves_the_paired_passes_out_of_the_loop(bench, tmp_path):
    report = bench.bench_predict(
        size=64, images=6, batch_size=2, engines=("torch",), amp="off", rss_counts=(), work_dir=tmp_path,
        verbose=False, repeats=1, paired=True,
    )  # fmt: skip
    arm = report["engines"]["torch"]
    assert report["setting"]["paired"] is True
    assert arm["loop_with_paired_s"] == pytest.approx(arm["loop_s"] + arm["alone_s"])
    assert arm["ratio_paired"] == pytest.approx(arm["alone_s"] / arm["loop_s"])
    assert arm["images_per_s"] == pytest.approx(6 / arm["loop_s"])
    assert arm["ratio_paired_median"] == arm["ratio_paired"]  # one round
    assert 0 < arm["ratio_paired"] < 2


def test_the_cpu_accounting_splits_the_loop_between_the_reader_thread_and_the_rest(bench, tmp_path):
    report = bench.bench_predict(
        size=64, images=6, batch_size=2, engines=("torch",), amp="off", rss_counts=(), work_dir=tmp_path,
        verbose=False, repeats=1, paired=True, readers=("thread",),
    )  # fmt: skip
    use = report["engines"]["torch, thread reader"]["cpu_per_image"]
    assert use["loop_cpu_ms"] == pytest.approx(use["reader_cpu_ms"] + use["rest_cpu_ms"])
    assert use["reader_cpu_ms"] > 0 and use["network_alone_cpu_ms"] > 0  # both were measured, as CPU time
    assert use["idle_share"] < 1 and use["network_alone_idle_share"] < 1
    assert use["cores"] >= 1
    arm = report["engines"]["torch, thread reader"]
    assert use["ratio_from_cpu"] == pytest.approx(arm["ratio_paired"], rel=0.05)  # the same loop, from its CPU time


def test_write_behind_both_measures_an_arm_with_the_rows_written_behind_and_one_between_passes(bench, tmp_path):
    report = bench.bench_predict(
        size=64, images=4, batch_size=2, engines=("torch",), amp="off", rss_counts=(), work_dir=tmp_path,
        verbose=False, repeats=1, write_behind=(True, False),
    )  # fmt: skip
    assert report["setting"]["write_behind"] == [True, False]
    arms = report["engines"]
    assert set(arms) == {"torch", "torch, rows between passes"}
    assert arms["torch"]["write_behind"] is True and arms["torch, rows between passes"]["write_behind"] is False
    assert all(arm["images"] == 4 and arm["images_per_s"] > 0 for arm in arms.values())
