from __future__ import annotations

import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from landmark_afl.inference.stream import InferenceSet, make_loader, stream_batches
from landmark_afl.protocols import load_protocol

# A parent that has used OpenCV's thread pool forks a reader (the case that deadlocks with cv2.setNumThreads(1)); the
# reader must run OpenCV sequentially, read the images and exit. Run in a fresh interpreter so that the pool state is
# known, with a timeout so that a deadlock fails the test instead of hanging it.
_FORKED_READER = textwrap.dedent(
    """
    import sys
    import cv2
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, Dataset

    from landmark_afl.inference.stream import _worker_init

    big = np.random.default_rng(0).random((1500, 1500), dtype=np.float32)
    for _ in range(3):
        cv2.GaussianBlur(big, (0, 0), 5)  # the parent's pool threads now exist (on a machine of 2 cores or more)

    class Blurs(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            cv2.GaussianBlur(big, (0, 0), 3)
            return torch.tensor([cv2.getNumThreads()])

    threads = [int(t) for t in DataLoader(Blurs(), batch_size=1, num_workers=1, worker_init_fn=_worker_init)]
    print("worker OpenCV threads", threads)
    sys.exit(0 if threads == [1, 1, 1, 1] else 1)
    """
)


def _write_pngs(folder, n: int, step: int) -> list:
    """``n`` small 16-bit PNGs img_0.png ... (a flat level ``step * (i + 1)`` plus a ramp), in order."""
    paths = []
    for i in range(n):
        path = folder / f"img_{i}.png"
        cv2.imwrite(str(path), np.full((40, 30), step * (i + 1), np.uint16) + np.arange(30, dtype=np.uint16))
        paths.append(path)
    return paths


@pytest.mark.skipif(sys.platform == "win32", reason="DataLoader workers are forked on POSIX only")
def test_reader_worker_runs_opencv_sequentially_after_the_parent_used_its_pool():
    proc = subprocess.run([sys.executable, "-c", _FORKED_READER], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "worker OpenCV threads [1, 1, 1, 1]" in proc.stdout


def test_loader_keeps_path_order_and_records_a_bad_file(tmp_path):
    paths = _write_pngs(tmp_path, 5, 1000)
    (tmp_path / "img_2.png").write_bytes(b"not a png")
    dataset = InferenceSet(paths, load_protocol("high"), (32, 32))
    batches = list(make_loader(dataset, batch_size=2, workers=1))
    records = [r for b in batches for r in b["records"]]
    assert [r["path"] for r in records] == [str(p) for p in paths]
    assert [r["ok"] for r in records] == [True, True, False, True, True]
    assert "img_2.png" in records[2]["error_message"]
    assert sum(b["images"].shape[0] for b in batches if b["images"] is not None) == 4


@pytest.mark.parametrize("reader", ["thread", "process", "auto"])
@pytest.mark.parametrize(("n", "batch", "workers"), [(7, 2, 1), (7, 3, 2), (2, 4, 1), (4, 4, 1), (5, 2, 0)])
def test_stream_batches_keep_the_batches_of_the_loader_whatever_the_reader(tmp_path, n, batch, workers, reader):
    paths = _write_pngs(tmp_path, n, 900)
    (tmp_path / "img_1.png").write_bytes(b"not a png")  # in the first batch (read here by the process reader)
    dataset = InferenceSet(paths, load_protocol("high"), (32, 32))
    expected = list(make_loader(dataset, batch_size=batch, workers=0))
    got = list(stream_batches(dataset, batch_size=batch, workers=workers, reader=reader))
    assert [[r["index"] for r in b["records"]] for b in got] == [[r["index"] for r in b["records"]] for b in expected]
    assert [r["path"] for b in got for r in b["records"]] == [str(p) for p in paths]
    assert [r["ok"] for b in got for r in b["records"]] == [i != 1 for i in range(n)]
    for a, b in zip(got, expected, strict=True):
        assert (a["images"] is None) == (b["images"] is None)
        if a["images"] is not None:
            assert a["images"].equal(b["images"]) and a["valid"].equal(b["valid"])


def test_closing_stream_batches_early_stops_its_reader_processes(tmp_path):
    import multiprocessing
    import time

    paths = _write_pngs(tmp_path, 12, 500)
    before = set(multiprocessing.active_children())
    dataset = InferenceSet(paths, load_protocol("high"), (32, 32))
    batches = stream_batches(dataset, batch_size=2, workers=2, reader="process")
    next(batches)  # read here
    next(batches)  # from a worker: the readers are running
    assert set(multiprocessing.active_children()) - before
    batches.close()  # as predict's contextlib.closing does when a write fails
    deadline = time.monotonic() + 30
    while set(multiprocessing.active_children()) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(multiprocessing.active_children()) - before


@pytest.mark.parametrize(("n", "workers", "released"), [(6, 1, True), (2, 1, False), (6, 0, False)])
def test_free_memory_is_released_before_the_readers_fork(tmp_path, monkeypatch, n, workers, released):
    import multiprocessing

    import landmark_afl.inference.stream as stream

    before = set(multiprocessing.active_children())
    started = []  # reader processes this stream had started when the memory was released: none, it comes first
    monkeypatch.setattr(
        stream, "release_free_memory", lambda: started.append(set(multiprocessing.active_children()) - before)
    )
    paths = _write_pngs(tmp_path, n, 100)
    dataset = InferenceSet(paths, load_protocol("high"), (32, 32))
    batches = list(stream_batches(dataset, batch_size=2, workers=workers, reader="process"))
    assert sum(len(b["records"]) for b in batches) == n
    forked = multiprocessing.get_start_method() == "fork"  # forkserver or spawn share no pages: nothing to release
    assert started == ([set()] if released and forked else [])  # a one-batch job or no workers: no fork either


class _SlowSet(InferenceSet):
    """Reads that take ``delay`` seconds each (in the thread named ``slow_in`` only, if given), noting (index, thread
    name, CPU priority) of each one."""

    def __init__(self, *args, delay: float = 0.0, slow_in: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delay, self.slow_in = delay, slow_in
        self.reads: list[tuple[int, str, int | None]] = []

    def __getitem__(self, index: int) -> dict:
        import os
        import threading
        import time

        if self.slow_in in (None, threading.current_thread().name):
            time.sleep(self.delay)
        linux = sys.platform.startswith("linux")
        priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if linux else None
        self.reads.append((index, threading.current_thread().name, priority))
        return super().__getitem__(index)


class _BrokenSet(InferenceSet):
    def __getitem__(self, index: int) -> dict:
        if index == 3:
            raise RuntimeError("the reader itself failed")
        return super().__getitem__(index)


def _reader_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "landmark-afl-reader"]


def _new_children(before: set) -> set:
    import multiprocessing

    return set(multiprocessing.active_children()) - before


def test_the_thread_reader_runs_at_the_lowest_priority_and_leaves_no_thread_or_opencv_setting_behind(tmp_path):
    import os

    threads_before = cv2.getNumThreads()
    mine = os.getpriority(os.PRIO_PROCESS, 0) if sys.platform.startswith("linux") else None
    dataset = _SlowSet(_write_pngs(tmp_path, 6, 700), load_protocol("high"), (32, 32))
    batches = list(stream_batches(dataset, batch_size=2, workers=1, reader="thread"))
    assert [r["index"] for b in batches for r in b["records"]] == list(range(6))
    by_thread = [(i, name) for i, name, _ in sorted(dataset.reads)]
    assert by_thread[:2] == [(0, "landmark-afl-reader"), (1, "landmark-afl-reader")]  # the first batch: the thread's
    if sys.platform.startswith("linux"):  # nice is per thread there: the thread's first batch at this thread's, then 19
        for index, name, priority in dataset.reads:
            reader = name == "landmark-afl-reader"
            assert priority == (19 if reader and index >= 2 else mine), (index, name, priority)
        assert os.getpriority(os.PRIO_PROCESS, 0) == mine
    assert not _reader_threads()
    assert cv2.getNumThreads() == threads_before


def _recording_threads(monkeypatch) -> list:
    import landmark_afl.inference.stream as stream

    made = []
    original = stream._ReaderThread.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(stream._ReaderThread, "__init__", init)
    return made


def _close_within(batches, seconds: float) -> bool:
    """Close the generator from another thread; whether it returned within ``seconds`` (a hang fails, not hangs)."""
    import threading

    closer = threading.Thread(target=batches.close, daemon=True)
    closer.start()
    closer.join(seconds)
    return not closer.is_alive()


def test_closing_the_stream_early_stops_the_reader_thread_waiting_for_room(tmp_path, monkeypatch):
    import time

    made = _recording_threads(monkeypatch)
    dataset = InferenceSet(_write_pngs(tmp_path, 20, 300), load_protocol("high"), (32, 32))
    batches = stream_batches(dataset, batch_size=2, workers=1, reader="thread")
    next(batches)
    deadline = time.monotonic() + 60
    while not made[0].waiting_for_room() and time.monotonic() < deadline:  # it reads ahead until it may not
        time.sleep(0.05)
    assert made[0].waiting_for_room() and _reader_threads()
    assert _close_within(batches, 10)
    assert not _reader_threads()


def test_a_consumer_waiting_for_a_batch_reads_the_items_the_thread_has_not_started(tmp_path, monkeypatch):
    made = _recording_threads(monkeypatch)
    paths = _write_pngs(tmp_path, 12, 400)
    dataset = _SlowSet(paths, load_protocol("high"), (32, 32), delay=0.05, slow_in="landmark-afl-reader")
    got = list(stream_batches(dataset, batch_size=3, workers=1, reader="thread"))  # an instant consumer
    expected = _expected_batches(paths, 3)
    assert [[r["index"] for r in b["records"]] for b in got] == [[r["index"] for r in b["records"]] for b in expected]
    for a, b in zip(got, expected, strict=True):
        assert a["images"].equal(b["images"]) and a["valid"].equal(b["valid"])
    assert sorted(i for i, _, _ in dataset.reads) == list(range(12))  # every item read once
    by = {i: name for i, name, _ in dataset.reads}
    assert [by[i] for i in range(3)] == ["landmark-afl-reader"] * 3  # the first batch by the thread alone
    consumer = sum(name != "landmark-afl-reader" for name in by.values())
    assert consumer == made[0].consumer_reads and 0 < consumer < 9  # the thread read some of the rest, it the others
    assert len(made[0].read_seconds) == 4
    assert not _reader_threads()


class _BusySet(InferenceSet):
    """Reads that spin the CPU for ``busy`` seconds each."""

    def __init__(self, *args, busy: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.busy = busy

    def __getitem__(self, index: int) -> dict:
        import time

        end = time.thread_time() + self.busy
        while time.thread_time() < end:
            pass
        return super().__getitem__(index)


def test_the_reader_thread_counts_its_own_cpu_time_not_its_waits(tmp_path, monkeypatch):
    import time

    made = _recording_threads(monkeypatch)
    paths = _write_pngs(tmp_path, 12, 64)
    sleepy = _SlowSet(paths, load_protocol("high"), (32, 32), delay=0.05, slow_in="landmark-afl-reader")
    busy = _BusySet(paths, load_protocol("high"), (32, 32), busy=0.05)
    for dataset in (sleepy, busy):
        for _ in stream_batches(dataset, batch_size=3, workers=1, reader="thread"):
            time.sleep(0.3)  # a consumer slower than the reads: the thread reads every batch
        made[-1]._thread.join()
    asleep, spinning = made
    assert asleep.cpu_seconds < 0.3  # 12 reads of 0.05 s asleep, each a few ms of work
    by_thread = 12 - spinning.consumer_reads  # 12 unless a busy machine held the thread back
    assert 0.045 * by_thread <= spinning.cpu_seconds < 0.1 * by_thread + 0.3  # 0.05 s of CPU per read of the thread
    assert by_thread >= 3  # the first batch is the thread's alone


def test_an_exception_in_the_reader_thread_is_raised_in_the_consumer(tmp_path):
    dataset = _BrokenSet(_write_pngs(tmp_path, 6, 300), load_protocol("high"), (32, 32))
    got = []
    with pytest.raises(RuntimeError, match="the reader itself failed"):
        for batch in stream_batches(dataset, batch_size=2, workers=1, reader="thread"):
            got.append([r["index"] for r in batch["records"]])
    assert got == [[0, 1]]  # the batch read before the failing one still came
    assert not _reader_threads()


def test_a_reader_thread_that_cannot_lower_its_priority_still_reads(tmp_path, monkeypatch):
    import os

    def refuse(*args):
        raise PermissionError("setpriority refused by the sandbox")

    monkeypatch.setattr(os, "setpriority", refuse)
    dataset = InferenceSet(_write_pngs(tmp_path, 6, 300), load_protocol("high"), (32, 32))
    batches = list(stream_batches(dataset, batch_size=2, workers=1, reader="thread"))
    assert [r["index"] for b in batches for r in b["records"]] == list(range(6))


def test_auto_keeps_the_thread_while_reads_are_lighter_than_the_consumer(tmp_path):
    import multiprocessing
    import time

    before = set(multiprocessing.active_children())
    dataset = InferenceSet(_write_pngs(tmp_path, 8, 400), load_protocol("high"), (32, 32))
    dataset[0]  # the one-off costs of a first read (imports, tables) are the same for every reader
    indices = []
    for batch in stream_batches(dataset, batch_size=2, workers=2, reader="auto"):
        indices += [r["index"] for r in batch["records"]]
        assert not _new_children(before)  # no reader process, ever
        time.sleep(0.5)  # a network far slower than reading 2 tiny PNGs (~3 ms)
    assert indices == list(range(8))


def _expected_batches(paths, batch: int) -> list:
    return list(make_loader(InferenceSet(paths, load_protocol("high"), (32, 32)), batch_size=batch, workers=0))


@pytest.mark.skipif(sys.platform == "win32", reason="DataLoader workers are forked on POSIX only")
def test_auto_hands_over_to_processes_when_reads_are_heavier_than_the_consumer(tmp_path):
    import multiprocessing

    before = set(multiprocessing.active_children())
    paths = _write_pngs(tmp_path, 12, 400)
    dataset = _SlowSet(paths, load_protocol("high"), (32, 32), delay=0.05)
    expected = _expected_batches(paths, 2)
    got, processes = [], []
    for batch in stream_batches(dataset, batch_size=2, workers=2, reader="auto"):  # an instant consumer
        got.append(batch)
        processes.append(bool(_new_children(before)))
    assert processes[0] is False and processes[-1] is True  # the thread read the first batch, processes the last
    assert not _reader_threads()
    assert [[r["index"] for r in b["records"]] for b in got] == [[r["index"] for r in b["records"]] for b in expected]
    for a, b in zip(got, expected, strict=True):
        assert a["images"].equal(b["images"])


@pytest.mark.skipif(sys.platform == "win32", reason="DataLoader workers are forked on POSIX only")
@pytest.mark.parametrize("taken", [2, 5])  # in the batches the thread had ready, and from the processes
def test_closing_early_after_the_hand_over_stops_every_reader(tmp_path, taken):
    import multiprocessing
    import time

    before = set(multiprocessing.active_children())
    threads_before = cv2.getNumThreads()
    dataset = _SlowSet(_write_pngs(tmp_path, 16, 400), load_protocol("high"), (32, 32), delay=0.05)
    batches = stream_batches(dataset, batch_size=2, workers=2, reader="auto")
    for _ in range(taken):
        next(batches)
    assert _close_within(batches, 30)
    assert not _reader_threads()
    deadline = time.monotonic() + 30
    while _new_children(before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _new_children(before)
    assert cv2.getNumThreads() == threads_before


def test_an_unknown_reader_is_refused():
    from landmark_afl.inference.predictor import PredictOptions

    with pytest.raises(ValueError, match="reader must be one of auto, thread, process"):
        PredictOptions(reader="threads")
