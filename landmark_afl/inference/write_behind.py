"""Write-behind: the rows, fsyncs, DICOM outputs and overlays of a batch are written while the network runs the next.

``predict`` hands each batch's results to :class:`WriteBehind`, which writes them on one thread of its own, in the
order they were handed over, at most ``depth`` batches behind. The network then does not wait for an ``fsync``,
and the Python that formats rows runs beside it instead of between its passes (it still takes the GIL and CPU time
the loop's thread may want meanwhile): on 2 CPU cores this is 1-2 % of the loop, but for a fast network (a GPU, or
a small input) it is a large share of it, and on a network file system an ``fsync`` alone can take longer than a
forward pass. Nothing is lost to it: a batch is written whole, in order, before the next one; ``close`` writes what
was handed over before it returns, also on the way out of a failing loop; and a failure of the writing thread (a
full disk) is raised in the loop's thread at the next hand-over or at ``close``, after which nothing more is
written. At a power loss, at most the batch being written is not yet on disk, as before; the ones handed over
after it were never written, so a resumed job predicts them again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

_DONE = object()


class WriteBehind:
    """Runs ``write(*args)`` for every :meth:`submit`, in order, on a thread of its own.

    Args:
        write: what to do with one batch's results.
        depth: how many submitted calls may wait while one runs (>= 1); a ``submit`` beyond it waits.

    Example:
        >>> done = []
        >>> with WriteBehind(done.append) as behind:
        ...     for i in range(3):
        ...         behind.submit(i)
        >>> done
        [0, 1, 2]
    """

    def __init__(self, write: Callable[..., None], depth: int = 1) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="landmark-afl-write-behind", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is None:  # after a failure nothing more is written; the rest is drained unwritten
                try:
                    self._write(*item)
                except BaseException as err:  # noqa: BLE001 - raised in the loop's thread (submit / close)
                    self._error = err

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, *args) -> None:
        """Hand one batch's results over (waits while ``depth`` calls are waiting); raises the writing thread's
        failure, if one happened, instead."""
        if self._closed:
            raise RuntimeError("WriteBehind is closed")
        self._raise_error()
        while True:
            try:
                self._queue.put(args, timeout=0.1)
                return
            except queue.Full:
                self._raise_error()  # a failed thread still drains the queue, so this wait ends; say why sooner

    def close(self) -> None:
        """Write everything handed over, stop the thread, and raise its failure if one happened."""
        if not self._closed:
            self._closed = True
            self._queue.put(_DONE)
            self._thread.join()
        self._raise_error()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the loop failed: still write what it handed over, and let the loop's exception be the one raised
            self.close()
        except BaseException as err:  # noqa: BLE001 - the writing thread's failure is secondary to the loop's
            if err is not exc and hasattr(exc, "add_note"):
                exc.add_note(f"the writing of the results failed as well: {type(err).__name__}: {err}")
