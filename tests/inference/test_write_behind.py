"""The write-behind thread of ``predict``: order, failures, and the writing overlapping the next forward pass."""

from __future__ import annotations

import errno
import threading

import pytest

from landmark_afl.inference.write_behind import WriteBehind


def test_calls_run_in_order_on_another_thread_and_close_waits_for_them():
    seen, gate = [], threading.Event()

    def write(i):
        gate.wait(5)
        seen.append((i, threading.current_thread().name))

    behind = WriteBehind(write, depth=2)
    for i in range(3):  # the first runs (held at the gate), two wait: none of these hand-overs blocks
        behind.submit(i)
    assert seen == []
    gate.set()
    behind.close()
    assert [i for i, _ in seen] == [0, 1, 2]
    assert {name for _, name in seen} == {"landmark-afl-write-behind"}
    with pytest.raises(RuntimeError, match="closed"):
        behind.submit(3)


def test_a_failure_is_raised_at_the_next_hand_over_and_nothing_after_it_is_written():
    seen, failed = [], threading.Event()

    def write(i):
        if i == 1:
            failed.set()
            raise OSError(errno.ENOSPC, "No space left on device")
        seen.append(i)

    behind = WriteBehind(write)
    behind.submit(0)
    behind.submit(1)
    assert failed.wait(5)
    with pytest.raises(OSError, match="No space"):
        for i in range(2, 100):  # raised at the first hand-over after the failure was seen
            behind.submit(i)
    with pytest.raises(OSError, match="No space"):
        behind.close()
    assert seen == [0]


def test_a_failing_loop_still_gets_its_handed_over_batches_written_and_its_own_error_raised():
    seen = []
    with pytest.raises(KeyError, match="engine"), WriteBehind(seen.append, depth=3) as behind:
        for i in range(3):
            behind.submit(i)
        raise KeyError("engine")
    assert seen == [0, 1, 2]


def test_the_writing_threads_failure_is_noted_on_a_different_loop_error():
    def write(i):
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(KeyError) as info, WriteBehind(write) as behind:
        behind.submit(0)
        raise KeyError("engine")
    if hasattr(info.value, "add_note"):  # Python >= 3.11
        assert any("Input/output error" in note for note in info.value.__notes__)


def test_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="depth"):
        WriteBehind(print, depth=0)


@pytest.fixture(scope="module")
def png_job(tmp_path_factory):
    import cv2
    import numpy as np

    from landmark_afl.inference.inputs import collect_inputs
    from landmark_afl.recipes.landmarks import load_trained_run
    from tests.run_fixture import make_untrained_run

    root = tmp_path_factory.mktemp("write_behind")
    rng = np.random.default_rng(0)
    for i in range(10):
        (root / "in").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "in" / f"img_{i:02d}.png"), (rng.random((80, 64)) * 255).astype(np.uint8))
    (root / "in" / "broken.png").write_bytes(b"not a png")
    run = load_trained_run(make_untrained_run(root / "run", ["a", "b", "c"]))
    return root, run, collect_inputs(root / "in")


def _predict(job, out, **options):
    from landmark_afl.inference.engines import TorchEngine
    from landmark_afl.inference.predictor import PredictOptions, run_predict
    from landmark_afl.protocols.protocol import load_protocol

    root, run, paths = job
    engine = TorchEngine(run.task, amp="off")
    opts = PredictOptions(batch_size=4, workers=0, progress=False, **options)
    return run_predict(paths, root / out, run, engine, load_protocol(run.protocol), opts), engine


def test_predict_writes_the_same_bytes_behind_the_network_as_between_its_passes(png_job):
    root = png_job[0]
    behind, _ = _predict(png_job, "behind")
    inline, _ = _predict(png_job, "inline", write_behind=False)
    counts = [(x.processed, x.failed, x.results_total, x.failed_total) for x in (behind, inline)]
    assert counts == [(11, 1, 10, 1)] * 2
    for name in ("results.csv", "results.jsonl", "errors.csv"):
        assert (root / "behind" / name).read_bytes() == (root / "inline" / name).read_bytes()


def test_a_batchs_fsync_overlaps_the_next_forward_pass_but_the_first_batch_is_written_in_the_loop(png_job, monkeypatch):
    from landmark_afl.inference.engines import TorchEngine
    from landmark_afl.inference.writer import OutputWriter

    third_pass, log, waited, lock = threading.Event(), [], [], threading.Lock()
    sync, call = OutputWriter.sync, TorchEngine.__call__

    def slow_sync(self):  # the second batch's fsync lasts until the network has started on the third batch
        with lock:
            log.append(("sync", threading.current_thread().name))
        if len(log) == 4:
            waited.append(third_pass.wait(10))  # True: the next pass started while this fsync was in progress
        sync(self)

    def forward(self, images, valid=None):
        with lock:
            log.append(("forward", threading.current_thread().name))
        if sum(e == "forward" for e, _ in log) == 3:
            third_pass.set()
        return call(self, images, valid)

    monkeypatch.setattr(OutputWriter, "sync", slow_sync)
    monkeypatch.setattr(TorchEngine, "__call__", forward)
    summary, _ = _predict(png_job, "overlap")
    assert summary.results_total == 10
    events = [e for e, _ in log]
    # batch 1 is written before pass 2 in the loop's own thread (the reader may fork after it); batch 2's fsync,
    # on the write-behind thread, was still waiting when pass 3 began
    assert events[:5] == ["forward", "sync", "forward", "sync", "forward"] and waited == [True]
    assert log[1][1] == log[0][1] and log[3][1] == "landmark-afl-write-behind"


def test_a_full_disk_behind_the_network_stops_the_job_and_a_resume_writes_what_an_uninterrupted_job_does(
    png_job, monkeypatch
):
    import landmark_afl.inference.writer as writer

    root = png_job[0]
    _predict(png_job, "uninterrupted")
    write, calls = writer.os.write, []

    def filling(fd, data):  # the disk fills up in the middle of the second batch, on the write-behind thread
        calls.append(threading.current_thread().name)
        if len(calls) > 9:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(fd, data)

    monkeypatch.setattr(writer.os, "write", filling)
    with pytest.raises(OSError, match="No space left"):
        _predict(png_job, "full")
    assert calls[-1] == "landmark-afl-write-behind"
    monkeypatch.undo()
    resumed, _ = _predict(png_job, "full")
    assert 0 < resumed.skipped < 11 and resumed.results_total == 10
    for name in ("results.csv", "results.jsonl", "errors.csv"):
        assert (root / "full" / name).read_bytes() == (root / "uninterrupted" / name).read_bytes()
