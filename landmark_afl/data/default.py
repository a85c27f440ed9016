"""The default data set: the phantom, generated once into a cache folder and reused."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from landmark_afl.data.phantom import DEFAULT_N, DEFAULT_SEED, DEFAULT_SIZE, generate_phantom

CACHE_ENV = "LANDMARK_AFL_CACHE"
PHANTOM_VERSION = "v1"


def cache_dir() -> Path:
    """``$LANDMARK_AFL_CACHE`` when set, else ``~/.cache/landmark-afl``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "landmark-afl"


def default_data_dir(n: int = DEFAULT_N, seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE) -> Path:
    """The phantom data set folder ``phantom-v1-n{n}-s{seed}-{size}`` in :func:`cache_dir`, generated on first use.

    Generation writes to a temporary folder next to the target and renames it into place, so an interrupted run
    never leaves a half-written data set behind, and two processes racing each other both end with a complete one.
    """
    parent = cache_dir()
    target = parent / f"phantom-{PHANTOM_VERSION}-n{n}-s{seed}-{size}"
    if (target / "dataset.yaml").is_file():
        return target
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        generate_phantom(tmp, n=n, seed=seed, size=size, force=True)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "dataset.yaml").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
