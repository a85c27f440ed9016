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
