"""The training console: rich on a terminal, whole plain lines when piped, and a plain-text copy in ``train.log``.

``RunConsole`` is a rich ``Console``. On a terminal it wraps and colours as usual. When the output is piped or
redirected, every message stays on one line (``[HH:MM:SS] text`` for ``log``): no wrapping inside a figure, no
padding, so ``grep`` and log collectors see whole lines. ``open_log(path, marker)`` appends a plain-text copy of
everything shown to ``path``: a marker line (date, what started, the command line), the lines shown before the log
was opened, then every later line, without colour or markup (the piped console's lines, with the date in each
timestamp). Each message is one ``os.write`` on a file opened with ``O_APPEND``, so a killed process leaves whole
lines or, at worst, one torn last line; the next ``open_log`` starts its marker on a line of its own.

``progress(console, description, total)`` reports long work: a transient rich progress bar on a terminal, and when
piped a plain line every few seconds (done / total, elapsed, ETA); work that ends sooner prints nothing.

Example:
    >>> import io, tempfile
    >>> from pathlib import Path
    >>> console = RunConsole(file=io.StringIO())  # not a terminal: whole lines
    >>> console.log("start")
    >>> log = Path(tempfile.mkdtemp()) / "train.log"
    >>> console.open_log(log, "train started")
    >>> console.print("[bold]epoch 1[/bold] done: MRE 3.00 mm")
    >>> console.close_log()
    >>> log.read_text().splitlines()[-1]
    'epoch 1 done: MRE 3.00 mm'
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from rich.console import Console, NewLine
from rich.control import Control
from rich.text import Text

__all__ = ["LOG_FILE", "Counted", "RunConsole", "fmt_seconds", "progress", "progress_bar"]

LOG_FILE = "train.log"
_MAX_PENDING = 1000  # lines kept before open_log (a console that never opens a log must not grow without bound)
_PLAIN_WIDTH = 10_000  # the log's lines are never wrapped; tables are rendered this wide, then right-stripped


class RunConsole(Console):
    """A rich Console that keeps whole lines when piped and can copy every line it shows to a log file.

    Args:
        command: the command line, written in the log's marker lines.
        **kwargs: rich ``Console`` arguments (``log_path`` defaults to False: the width goes to the message).
    """

    def __init__(self, *, command: str | None = None, **kwargs) -> None:
        kwargs.setdefault("log_path", False)
        super().__init__(**kwargs)
        if not self.is_terminal:
            self.soft_wrap = True
        self.command = command
        self.log_file: Path | None = None
        self._fd: int | None = None
        self._created = False
        self._pending: list[str] | None = []  # None once a log was opened, closed or discarded
        self._since: datetime | None = None  # when the first pending line was shown (the marker's time)
        self._plain = Console(
            file=io.StringIO(), width=_PLAIN_WIDTH, color_system=None, force_terminal=False, force_jupyter=False,
            soft_wrap=True, markup=kwargs.get("markup", True), emoji=kwargs.get("emoji", True), highlight=False,
            log_path=False,
        )  # fmt: skip

    @classmethod
    def like(cls, console: Console, **kwargs) -> RunConsole:
        """A RunConsole that writes where ``console`` writes, as wide, as quiet and in the same colours."""
        return cls(
            file=console.file, width=console.width, force_terminal=console.is_terminal, quiet=console.quiet,
            color_system=console.color_system, no_color=console.no_color, **kwargs,
        )  # fmt: skip

    # -- showing ---------------------------------------------------------------------------------------------
    def print(self, *objects, sep: str = " ", end: str = "\n", **kwargs) -> None:
        super().print(*objects, sep=sep, end=end, **kwargs)
        self._copy(objects, sep, kwargs, None)

    def log(self, *objects, sep: str = " ", end: str = "\n", **kwargs) -> None:
        now = datetime.now()
        kwargs.pop("_stack_offset", None)
        if self.is_terminal:
            super().log(*objects, sep=sep, end=end, _stack_offset=2, **kwargs)
        else:  # one line: the time, then the message (rich's log table would wrap and pad it)
            kwargs.pop("log_locals", None)
            super().print(Text(f"[{now:%H:%M:%S}]"), *objects, sep=sep, end=end, soft_wrap=True, **kwargs)
        self._copy(objects, sep, kwargs, now)

    # -- the log file ----------------------------------------------------------------------------------------
    def open_log(self, path: str | Path, marker: str) -> None:
        """Append a marker line, the lines shown so far and every later line to ``path`` (created when missing)."""
        if self._fd is not None:
            raise RuntimeError(f"this console already logs to {self.log_file}")
        path = Path(path)
        self._created = not path.exists()
        torn = not self._created and not _ends_with_newline(path)  # a kill in the middle of the last line
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        command = f": {self.command}" if self.command else ""
        since = self._since or datetime.now()
        head = f"{chr(10) if torn else ''}=== [{since:%Y-%m-%d %H:%M:%S}] {marker}{command} ===\n"
        _write(fd, head + "".join(self._pending or ()))
        self._fd, self.log_file, self._pending = fd, path, None

    def close_log(self) -> None:
        """Flush the log to disk and stop copying (also stops keeping lines for a later ``open_log``)."""
        self._pending = None
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def discard_log(self) -> None:
        """Close the log and delete it if ``open_log`` created it (a run that stopped before its first epoch)."""
        self.close_log()
        if self._created and self.log_file is not None:
            self.log_file.unlink(missing_ok=True)
        self._created = False

    def _copy(self, objects: tuple, sep: str, kwargs: dict, stamp: datetime | None) -> None:
        if self._fd is None and self._pending is None:
            return
        if not objects or all(isinstance(o, (Control, NewLine)) for o in objects):  # a live display's own output
            return
        options = {k: kwargs[k] for k in ("markup", "emoji") if kwargs.get(k) is not None}
        with self._plain.capture() as capture:
            self._plain.print(*objects, sep=sep, **options)
        text = "\n".join(line.rstrip() for line in capture.get().rstrip("\n").split("\n"))
        if stamp is not None:
            text = f"[{stamp:%Y-%m-%d %H:%M:%S}] {text}"
        if self._fd is not None:
            _write(self._fd, text + "\n")
        elif len(self._pending) < _MAX_PENDING:
            self._since = self._since or stamp or datetime.now()
            self._pending.append(text + "\n")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _write(fd: int, text: str) -> None:
    """One os.write (O_APPEND: whole lines, or one torn last line after a kill); finish a rare short write."""
    data = text.encode("utf-8", "backslashreplace")
    written = os.write(fd, data)
    while written < len(data):
        written += os.write(fd, data[written:])


@contextmanager
def progress(console: Console, description: str, total: int | None, every_s: float = 5.0) -> Iterator[Callable]:
    """Report long work on ``console``; yields ``update(done, total=None)`` (items done so far; a total learnt late).

    On a terminal: a transient rich progress bar. Piped: ``description: done/total, elapsed, ETA`` every
    ``every_s`` seconds through ``console.log``; nothing for work that ends sooner.
    """
    if console.is_terminal:
        bar = progress_bar(console)
        with bar:
            task = bar.add_task(description, total=total)

            def advance(done: int, new_total: int | None = None) -> None:
                if new_total:
                    bar.update(task, total=new_total)  # remembered by the bar for the next updates
                bar.update(task, completed=done)

            yield advance
        return
    start = last = time.perf_counter()
    expected = total

    def update(done: int, new_total: int | None = None) -> None:
        nonlocal last, expected
        expected = new_total or expected
        now = time.perf_counter()
        if now - last < every_s:
            return
        last = now
        elapsed = now - start
        if expected:
            eta = elapsed * max(expected - done, 0) / max(done, 1)
            console.log(f"{description}: {done}/{expected}, {fmt_seconds(elapsed)} elapsed, ETA {fmt_seconds(eta)}")
        else:
            console.log(f"{description}: {done} done, {fmt_seconds(elapsed)} elapsed")

    yield update


def fmt_seconds(seconds: float) -> str:
    """``h:mm:ss``."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_bar(console):
    """A rich progress bar (description, bar, done / total, time left): training's per-step bar, validation's and
    the phantom's (``progress``); hidden when not on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )  # fmt: skip


class Counted:
    """``loader`` reporting how many batches it has handed out to ``update`` (everything else is the loader's)."""

    def __init__(self, loader, update) -> None:
        self._loader, self._update = loader, update

    def __iter__(self):
        for i, batch in enumerate(self._loader):
            yield batch
            self._update(i + 1)

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)
