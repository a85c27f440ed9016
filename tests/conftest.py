"""Shared fixtures: the real data of ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LANDMARK_AFL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
# The CLI tests call `main(["train", ...])` in this process: glibc's own malloc policy for the whole test run, so
# that one test does not make every later one keep its peak heap (tests/engine/test_memory.py tests the setting).
os.environ.setdefault("LANDMARK_AFL_MALLOC", "default")


def shared_path(*parts: str) -> Path:
    """Path inside ../shared/data; skips the calling test when it is absent (a user's fresh clone has none)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (set LANDMARK_AFL_SHARED_DATA to the shared/data folder)")
    return path


@pytest.fixture
def shared_data() -> Path:
    return shared_path()
