"""The default data set: the phantom, generated once into a cache folder and reused."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from landmark_afl.data.phantom import DEFAULT_N, DEFAULT_SEED, DEFAULT_SIZE, generate_phantom

CACHE_ENV = "LANDMARK_AFL_CACHE"
PHANTOM_VERSION = "v1"


def cache_dir() -> Path:
    """``$LANDMARK_AFL_CACHE`` when set, else ``~/.cache/landmark-afl``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "landmark-afl"


def default_data_dir(
    n: int = DEFAULT_N,
    seed: int = DEFAULT_SEED,
    size: int = DEFAULT_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """The phantom data set folder ``phantom-v1-n{n}-s{seed}-{size}`` in :func:`cache_dir`, generated on first use.

    Generation writes to a temporary folder next to the target and renames it into place, so an interrupted run
    never leaves a half-written data set behind, and two processes racing each other both end with a complete one.
    It takes about a tenth of a second per image at 512 px; without ``progress`` (called as ``progress(done, n)``)
    it says so on stderr first, then shows a progress bar (a terminal) or a line every few seconds (piped).
    """
    parent = cache_dir()
    target = parent / f"phantom-{PHANTOM_VERSION}-n{n}-s{seed}-{size}"
    if (target / "dataset.yaml").is_file():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        with _reporting(progress, target, n, size) as report:
            generate_phantom(tmp, n=n, seed=seed, size=size, force=True, progress=report)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "dataset.yaml").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextmanager
def _reporting(progress: Callable[[int, int], None] | None, target: Path, n: int, size: int) -> Iterator:
    """``progress`` itself, or one that shows the generation on stderr (the first line at once)."""
    if progress is not None:
        yield progress
        return
    from landmark_afl.engine.console import RunConsole
    from landmark_afl.engine.console import progress as show_progress

    console = RunConsole(stderr=True, highlight=False)
    console.log(
        f"generating the default data set (the phantom: {n} synthetic hand radiographs of {size} px, once; then "
        f"reused) into {target}",
        markup=False,
    )
    with show_progress(console, "phantom images", n) as update:
        yield lambda done, total: update(done)
    console.log(f"phantom data set ready: {target}", markup=False)
