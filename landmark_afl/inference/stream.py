"""Streaming reads for batch inference: a Dataset that never raises, and readers that read ahead of the network.

A reader reads and preprocesses (``prepare_image``: read_image -> protocol -> letterbox) while the model runs on the
previous batch: one low-priority thread of this process, or DataLoader worker processes where reads are heavier
than the network (``stream_batches``, what ``predict`` iterates, chooses). Only a few batches of input-sized images
exist at any time (up to three ahead for the thread, ``workers * prefetch`` for processes; at a hand-over from the
thread to processes, both), so memory stays flat however large the folder. A file that cannot be read gives an
error record (type and message) instead of an exception, so one bad file never stops the job. Batches keep the
order of the path list whatever the reader.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from landmark_afl.engine.memory import release_free_memory


class InferenceSet(Dataset):
    """Images of a path list, preprocessed for the network; an item is a record dict.

    A good item has ``ok=True``, ``image`` (float32 tensor [1, H, W]), ``scale`` (sx, sy), ``spacing`` (row, col
    mm, NaN when unknown), ``spacing_source``, ``shape`` (rows, cols of the original image) and the allowed DICOM
    header fields (see :mod:`landmark_afl.inference.phi`). A bad item has ``ok=False``, ``error_type`` and
    ``error_message``. Both have ``index`` and ``path``.

    Args:
        paths: the images, in output order.
        protocol: the contrast protocol (callable on (pixels, meta)).
        input_size: (H, W) of the network input.
        fallback_spacing: (row, col) mm used when an image carries no spacing, or None.
        keep_phi: also read patient name / ID / birth date from DICOM headers.
        jpeg_scaling: read JPEG files at the input's scale (the run's ``jpeg_scaling``; ``prepare_image``).

    Example:
        >>> ds = InferenceSet(["/no/such.png"], lambda x, m: x, (64, 64))
        >>> item = ds[0]
        >>> item["ok"], item["error_type"]
        (False, 'ImageNotFoundError')
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        protocol: Callable,
        input_size: tuple[int, int],
        fallback_spacing: tuple[float, float] | None = None,
        keep_phi: bool = False,
        jpeg_scaling: bool = True,
    ) -> None:
        self.jpeg_scaling = bool(jpeg_scaling)
        self.paths = [str(p) for p in paths]
        self.protocol = protocol
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.fallback_spacing = fallback_spacing
        self.keep_phi = keep_phi

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        from landmark_afl.data.training import prepare_image
        from landmark_afl.inference.phi import read_header_fields

        path = self.paths[index]
        record = {"index": index, "path": path}
        try:
            prep = prepare_image(path, self.protocol, self.input_size, self.fallback_spacing, self.jpeg_scaling)
            if not np.all(np.isfinite(prep.image)):
                raise ValueError(f"{path}: preprocessing gave non-finite pixels; check the file and the protocol")
            fields = read_header_fields(path, self.keep_phi)
        except Exception as err:  # noqa: BLE001 - a batch job records any failure of one file and goes on
            message = " ".join(str(err).split())  # one line: errors.csv rows never span lines
            if path not in message:
                message = f"{path}: {message}"
            record.update(ok=False, error_type=type(err).__name__, error_message=message)
            return record
        source = prep.spacing_source if np.all(np.isfinite(prep.spacing)) else "none"
        record.update(
            ok=True,
            image=torch.from_numpy(np.ascontiguousarray(prep.image, dtype=np.float32))[None],
            scale=np.asarray(prep.scale, np.float64),
            spacing=np.asarray(prep.spacing, np.float64),
            spacing_source=source,
            shape=tuple(int(s) for s in prep.shape),
            valid=tuple(int(v) for v in prep.valid),
            header=fields,
        )
        return record


def collate_records(items: list[dict]) -> dict:
    """Batch of records: ``images`` [n_ok, 1, H, W] (the good items, in order), their ``valid`` [n_ok, 2] (unpadded
    rows, cols) and ``records`` (all, pixels removed).

    ``images`` is None when no item of the batch could be read.
    """
    images = [item.pop("image") for item in items if item["ok"]]
    valid = [item["valid"] for item in items if item["ok"]]
    return {
        "images": torch.stack(images) if images else None,
        "valid": torch.tensor(valid, dtype=torch.int64) if valid else None,
        "records": items,
    }


def _worker_init(_: int) -> None:
    # One torch thread per worker: the workers together, not each of them, should fill the cores.
    torch.set_num_threads(1)
    # OpenCV sequential in the worker: its pool (one thread per core by default) woke for every blur and remap of
    # small images, spent ~1.2 ms of CPU per 256 px image on hand-offs (3.05 instead of 4.3 ms of CPU per image
    # read) and took those cycles from the network's threads. Only 0 is safe in a forked child: OpenCV's pthreads
    # pool then runs every loop in the calling thread and never touches the pool, while 1 stops the pool's threads,
    # which do not exist in the child, and deadlocks once the parent has used OpenCV's pool.
    cv2.setNumThreads(0)
    # Readers at the lowest CPU priority: they run in the cycles the network leaves idle (with the network's idle
    # threads sleeping, OMP_WAIT_POLICY=PASSIVE, which ``landmark-afl predict`` sets) instead of preempting its
    # threads. Measured on 2 cores, batch 8, 256 px: predict at 0.93 of the pure forward rate, against 0.84 with
    # readers at normal priority and spinning threads, and 0.89 reading in the main process.
    if hasattr(os, "nice"):
        os.nice(19)


def make_loader(dataset: InferenceSet, batch_size: int, workers: int, pin_memory: bool = False) -> DataLoader:
    """DataLoader over ``dataset`` in path order; ``workers`` processes read ahead (0 = read in this process)."""
    kwargs = {}
    if workers > 0:
        kwargs = {"prefetch_factor": 2, "worker_init_fn": _worker_init, "persistent_workers": False}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_records,
        pin_memory=pin_memory,
        **kwargs,
    )


READERS = ("auto", "thread", "process")


def check_reader(reader: str) -> None:
    """Raise ValueError unless ``reader`` is one of :data:`READERS`."""
    if reader not in READERS:
        raise ValueError(f"reader must be one of {', '.join(READERS)}, got {reader!r}")


def _lowest_priority_thread() -> None:
    """The calling thread (not the process) at the lowest CPU priority, on Linux, where nice is per thread.

    Elsewhere it stays as it is: ``PRIO_PROCESS`` takes a process id there, which a thread id is not. Refused (a
    sandbox), the thread keeps its priority: this only makes it yield to the network.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class _ReaderThread:
    """Reads the items of ``dataset`` in order in one thread, at most ``ahead`` batches past the one the consumer
    waits for; iterate it for the batches, in order (an exception in the thread is raised here).

    A consumer that waits for a batch reads the items of it that the thread has not started yet itself, in its own
    thread (the first batch excepted): while it waits, its core would idle, and the thread, which yields the CPU to
    the network (``_lowest_priority_thread``), is behind just then. Whoever reads the last item of a batch collates it.
    Measured on 2 cores (AMD EPYC, batch 8): with onnxruntime over ISBI cephalograms the consumer read 4-8 of 96
    images and the network's share of the loop went from 0.930-0.942 to 0.940-0.951; over 256 px PNGs, and with
    torch, the thread kept ahead and the consumer read none (it waited 0.03-0.06 s per 192 images, the first batch).

    The first batch is read by the thread alone at its normal priority (the consumer waits for it: nothing else of the
    job runs, and its read time is what ``stream_batches`` compares), the rest by the thread at the lowest priority.
    ``hand_over()`` stops the reading at the end of the batch being read and returns the index the next reader starts
    from; the batches before it still come. ``close()`` stops the thread after the image it is reading and waits.
    """

    def __init__(self, dataset: InferenceSet, batch_size: int, pin_memory: bool = False, ahead: int = 2) -> None:
        self._dataset, self._batch_size, self._pin, self._ahead = dataset, batch_size, pin_memory, ahead
        self._cond = threading.Condition()
        self._claimed = 0  # the first index no one has started to read
        self._end = len(dataset)  # where the reading stops (``hand_over`` moves it to the end of a batch)
        self._items: dict[int, dict] = {}  # index -> record, until its batch is collated
        self._batches: dict[int, dict] = {}  # batch number -> collated batch, until the consumer takes it
        self._began: dict[int, float] = {}  # batch number -> when its first item was started, until collated
        self._seconds: dict[int, float] = {}  # batch number -> wall time from its first item started to collated
        self._taken = 0  # batches the consumer has taken
        self._error: BaseException | None = None
        self._closed = False
        self.consumer_reads = 0  # items the consumer read itself
        self.consumer_read_seconds = 0.0  # its time reading them
        self.wait_seconds = 0.0  # its time waiting for a batch the thread was reading (the first one included)
        self.cpu_seconds = 0.0  # the CPU time of the thread itself, set when it ends (what reading took of the cores)
        self._thread = threading.Thread(target=self._run, name="landmark-afl-reader", daemon=True)
        self._thread.start()

    @property
    def read_seconds(self) -> list[float]:
        """Wall time per batch collated so far, in batch order (from its first item started to collated)."""
        with self._cond:
            return [self._seconds[b] for b in sorted(self._seconds)]

    def waiting_for_room(self) -> bool:
        """Whether the thread has read as far ahead as it may and waits for the consumer."""
        with self._cond:
            return self._full()

    def _full(self) -> bool:  # under the lock
        return self._claimed < self._end and self._claimed // self._batch_size > self._taken + self._ahead

    def _claim(self) -> int:  # under the lock
        index = self._claimed
        self._claimed += 1
        self._began.setdefault(index // self._batch_size, time.perf_counter())
        return index

    def _store(self, index: int, item: dict) -> None:
        """Keep a read item; the one that completes its batch collates the batch (outside the lock)."""
        number = index // self._batch_size
        indices = range(number * self._batch_size, min((number + 1) * self._batch_size, len(self._dataset)))
        with self._cond:
            self._items[index] = item
            if any(i not in self._items for i in indices):
                return
            items = [self._items.pop(i) for i in indices]
        batch = collate_records(items)
        if self._pin and batch["images"] is not None:
            batch["images"] = batch["images"].pin_memory()
        with self._cond:
            self._seconds[number] = time.perf_counter() - self._began.pop(number)
            self._batches[number] = batch
            self._cond.notify_all()

    def _run(self) -> None:
        lowered = False
        try:
            while True:
                with self._cond:
                    while not self._closed and self._full():
                        self._cond.wait()
                    if self._closed or self._claimed >= self._end:
                        return
                    index = self._claim()
                self._store(index, self._dataset[index])
                if not lowered and index >= self._batch_size - 1:  # the first batch is read (by this thread alone)
                    _lowest_priority_thread()
                    lowered = True
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
            with self._cond:
                self._error = err
                self._cond.notify_all()
        finally:
            self.cpu_seconds = time.thread_time()  # this thread's own CPU time since it started

    def __iter__(self) -> Iterator[dict]:
        number = 0
        while True:
            with self._cond:
                index = None
                while index is None:
                    if number in self._batches:  # the batches read before an error still come
                        break
                    if self._error is not None:
                        raise self._error
                    if number * self._batch_size >= self._end:
                        return
                    if number > 0 and self._claimed < min((number + 1) * self._batch_size, self._end):
                        index = self._claim()  # an item of the batch waited for that the thread has not started
                    elif not self._thread.is_alive():  # it stores every item it starts, or an error; a backstop
                        raise RuntimeError("the reader thread ended before its last batch")
                    else:
                        began = time.perf_counter()
                        self._cond.wait(0.1)
                        self.wait_seconds += time.perf_counter() - began
                if index is None:
                    batch = self._batches.pop(number)
                    self._taken = number + 1
                    self._cond.notify_all()
            if index is not None:
                began = time.perf_counter()
                self.consumer_reads += 1
                self._store(index, self._dataset[index])
                self.consumer_read_seconds += time.perf_counter() - began
                continue
            yield batch
            number += 1

    def hand_over(self) -> int:
        with self._cond:
            size = self._batch_size
            self._end = min(self._end, -(-self._claimed // size) * size)
            self._cond.notify_all()
            return self._end

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()


_opencv_lock = threading.Lock()
_opencv_streams = [0, 0]  # streams reading with OpenCV sequential now, and the setting before the first of them


@contextlib.contextmanager
def _sequential_opencv() -> Iterator[None]:
    """OpenCV sequential while any reader thread runs (see ``_worker_init``: its pool's hand-offs cost more than they
    give at input size); the setting before comes back when the last one ends. The setting is process-wide, so the
    consumer's own OpenCV work (overlays) is sequential meanwhile; and OpenCV reports 0 (sequential) as 1, so a
    setting of 0 comes back as 1, which is sequential too."""
    with _opencv_lock:
        if _opencv_streams[0] == 0:
            _opencv_streams[1] = cv2.getNumThreads()
            cv2.setNumThreads(0)
        _opencv_streams[0] += 1
    try:
        yield
    finally:
        with _opencv_lock:
            _opencv_streams[0] -= 1
            if _opencv_streams[0] == 0:
                cv2.setNumThreads(_opencv_streams[1])


def _read_by_processes(
    dataset: InferenceSet, batch_size: int, workers: int, pin_memory: bool, start: int = 0, ready: Sequence = ()
) -> Iterator[dict]:
    """The batches of ``dataset[start:]``, read ahead by ``workers`` processes; the ``ready`` ones (already read,
    ending at ``start``) come first, while the workers start; with none ready, the first batch is read here."""
    n = len(dataset)
    here = [] if ready else list(range(start, min(start + batch_size, n)))
    head = start + len(here)
    rest = None
    if head < n:  # the workers start reading now
        if multiprocessing.get_start_method() == "fork":  # the DataLoader's, which it fixes anyway when it starts
            release_free_memory()  # so that the fork does not make this process copy the pages it kept
        rest = iter(make_loader(Subset(dataset, range(head, n)), batch_size, workers, pin_memory))
    if here:
        first = collate_records([dataset[i] for i in here])
        if pin_memory and first["images"] is not None:
            first["images"] = first["images"].pin_memory()
        ready = [first]
    yield from ready
    if rest is not None:
        yield from rest


def stream_batches(
    dataset: InferenceSet, batch_size: int, workers: int, pin_memory: bool = False, reader: str = "auto"
) -> Iterator[dict]:
    """The batches of ``dataset`` in path order (``collate_records``), read ahead while the consumer works.

    ``workers`` = 0 reads in this process, and a job of one batch is read here alone. Otherwise ``reader`` says who
    reads ahead:

    - ``"thread"``: one thread of this process, after the first batch at the lowest priority (on Linux). No process
      to start, no memory shared copy-on-write with a process that keeps writing it (a forked reader beside a warm
      onnxruntime made it copy ~51 000 pages per 192 images), no result to pickle: measured on 2 cores, batch 8,
      256 px, 5 interleaved rounds, predict at 0.900 (torch) and 0.907 (onnx) of the pure forward rate against 0.878
      and 0.853 with a reader process; 0.974 and 0.937 against 0.912 and 0.855 with the reads served from memory.
      But one thread, under the GIL while Python and most decoders run: it cannot read faster than one core, and
      heavy reads slow the network's dispatch.
    - ``"process"``: ``workers`` DataLoader processes (``_worker_init``); the first batch is read here while they
      start (57-88 ms to the first batch against 75-142 ms for a fresh worker's, 2 cores, 256 px, batch 8), and
      the free memory of this process's heaps goes back to the system before the fork (``release_free_memory``),
      so that the fork does not make it copy those pages. What scales where reads are heavy and cores are free.
    - ``"auto"`` (the default): processes when ``pin_memory`` (a CUDA network leaves the CPU to the readers);
      otherwise the thread, which keeps reading unless the first batch took it longer to read (wall time) than the
      consumer took over it (the forward pass, decoding and writing): reads heavier than the network, and the rest
      is read by processes.

    Close the generator (``contextlib.closing``) when leaving early, so that its readers stop (the thread after the
    image it is reading, processes at once).
    """
    check_reader(reader)
    if workers <= 0 or len(dataset) <= batch_size:
        yield from make_loader(dataset, batch_size, 0, pin_memory)
        return
    if reader == "process" or (reader == "auto" and pin_memory):
        yield from _read_by_processes(dataset, batch_size, workers, pin_memory)
        return
    with _sequential_opencv():
        thread = _ReaderThread(dataset, batch_size, pin_memory)
        try:
            batches = iter(thread)
            first = next(batches)
            handed = time.perf_counter()
            yield first
            if reader == "auto" and thread.read_seconds[0] > time.perf_counter() - handed:
                start = thread.hand_over()
                ready = list(batches)  # what the thread had read, and the batch it was reading
                thread.close()  # ended: the fork must not copy a thread that holds a lock
                yield from _read_by_processes(dataset, batch_size, workers, pin_memory, start, ready)
                return
            yield from batches
        finally:
            thread.close()
