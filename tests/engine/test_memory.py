from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from landmark_afl.cli import MODEL_COMMANDS

# A fresh interpreter allocates, fills and frees a 192 MiB array three times and prints the minor page faults of
# each: glibc's own policy maps it anew every time (every page faults again), kept memory is reused (no faults).
# With "release", the kept memory is then handed back and a fourth array faults its pages in again.
_FAULTS = """
import resource, sys
import numpy as np
from landmark_afl.engine.memory import release_free_memory, retain_freed_memory
state = retain_freed_memory() if sys.argv[1] == "kept" else "glibc"
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(192 << 20, np.uint8)  # above the mmap threshold, below the trim threshold
    del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
counts = [faults() for _ in range(3)]
if sys.argv[2:] == ["release"]:
    assert release_free_memory()
    counts.append(faults())
print(state, *counts)
"""


def _faults(policy: str, env: dict | None = None, release: bool = False) -> tuple[str, list[int]]:
    if env is None:  # the policy as a user gets it, whatever this test run sets (tests/conftest.py)
        env = {k: v for k, v in os.environ.items() if k not in ("LANDMARK_AFL_MALLOC", "LD_PRELOAD")}
    argv = [sys.executable, "-c", _FAULTS, policy, *(["release"] if release else [])]
    words = subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout.split()
    n = 4 if release else 3
    return " ".join(words[:-n]), [int(w) for w in words[-n:]]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")
def test_released_memory_goes_back_to_the_system():
    state, faults = _faults("kept", release=True)
    assert state == "retained"
    assert faults[1] <= 8 and faults[2] <= 8, faults  # kept: reused
    assert faults[3] >= 50, faults  # the pages were handed back: touched again, they fault in anew


def test_release_leaves_a_preloaded_allocator_alone(monkeypatch):
    from landmark_afl.engine.memory import release_free_memory

    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/libjemalloc.so.2")
    assert release_free_memory() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")
def test_kept_memory_is_reused_without_page_faults_where_glibc_maps_it_again():
    state, kept = _faults("kept")
    assert state == "retained"
    assert kept[1] <= 8 and kept[2] <= 8, kept  # the second and third array reuse the first one's pages
    _, glibc = _faults("glibc")
    assert min(glibc) >= 50, glibc  # at least 96 (2 MiB huge pages; numpy asks for them), 49 152 with 4 KiB pages


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")
def test_the_environment_turns_it_off():
    state, faults = _faults("kept", {**os.environ, "LANDMARK_AFL_MALLOC": "default"})
    assert state == "default (LANDMARK_AFL_MALLOC=default)"
    assert min(faults) >= 50, faults


def test_the_commands_that_run_models_keep_it_and_the_others_do_not(monkeypatch, tmp_path):
    import landmark_afl.engine.memory as memory
    from landmark_afl.cli import main

    calls = []
    monkeypatch.setattr(memory, "retain_freed_memory", lambda: calls.append(1) or "retained")
    missing = str(tmp_path / "no_such_run")
    assert main(["evaluate", missing, "--out", str(tmp_path / "ev")]) == 2  # fails after the setting, as it should
    assert calls == [1]
    assert main(["protocols", "list"]) == 0
    assert calls == [1]
    assert MODEL_COMMANDS == {"train", "evaluate", "compare", "predict"}
