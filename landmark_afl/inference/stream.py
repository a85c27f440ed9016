"""Streaming reads for batch inference: a Dataset that never raises, and a DataLoader with worker processes.

Workers read and preprocess (``prepare_image``: read_image -> protocol -> letterbox) while the model runs on the
previous batch; ``stream_batches``, what ``predict`` iterates, reads the first batch itself while the workers start.
Only ``batch_size * (workers * prefetch + 1)`` input-sized images exist at any time, so memory stays flat however
large the folder. A file that cannot be read gives an error record (type and message) instead of an exception, so
one bad file never stops the job. Batches keep the order of the path list (the DataLoader returns them in index
order whatever the number of workers).
"""

from __future__ import annotations

import multiprocessing
import os
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


def stream_batches(dataset: InferenceSet, batch_size: int, workers: int, pin_memory: bool = False) -> Iterator[dict]:
    """The batches of ``dataset`` in path order (``collate_records``), read ahead by ``workers`` processes.

    With workers, the first batch is read in this process while the workers start: the model runs on it while they
    read the second, instead of waiting for a fresh worker's first batch (measured on 2 cores, 256 px, batch 8, 3
    runs each: 57-88 ms to the first batch, against 75-142 ms for the fork and a fresh worker's first batch). A job
    of one batch is read here alone (no worker is started). Before the fork the free memory of this process's heaps
    goes back to the system (``release_free_memory``): the fork then does not make it copy those pages. Close the
    generator (``contextlib.closing``) when leaving early, so that the workers stop at once.
    """
    if workers <= 0:
        yield from make_loader(dataset, batch_size, workers, pin_memory)
        return
    rest = None
    if len(dataset) > batch_size:  # the workers start reading the second batch now
        if multiprocessing.get_start_method() == "fork":  # the DataLoader's, which it fixes anyway when it starts
            release_free_memory()  # so that the fork does not make this process copy the pages it kept
        rest = iter(make_loader(Subset(dataset, range(batch_size, len(dataset))), batch_size, workers, pin_memory))
    if len(dataset):
        first = collate_records([dataset[i] for i in range(min(batch_size, len(dataset)))])
        if pin_memory and first["images"] is not None:
            first["images"] = first["images"].pin_memory()
        yield first
    if rest is not None:
        yield from rest
