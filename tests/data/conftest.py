"""Fixtures of the data tests: a small phantom (6 images, 256 px) generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from landmark_afl.data.phantom import generate_phantom

SMALL = {"n": 6, "seed": 3, "size": 256}


@pytest.fixture(scope="session")
def small_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_phantom(tmp_path_factory.mktemp("phantom") / "ds", **SMALL)
