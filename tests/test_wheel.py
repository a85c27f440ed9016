"""The wheel works on its own: built from this checkout, installed outside it, it lists protocols and trains."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _setuptools_at_least(major: int) -> bool:
    """Whether this environment's setuptools can build the project itself (else pip builds in isolation)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("setuptools").split(".")[0]) >= major
    except (PackageNotFoundError, ValueError):
        return False


def _run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_a_wheel_installed_outside_the_checkout_ships_protocols_and_licence_and_trains(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("LANDMARK_AFL_PROTOCOLS", "PYTHONPATH")}
    env["OMP_NUM_THREADS"] = "1"
    # the environment's own setuptools when it is recent enough (no index needed), else pip's isolated build
    isolation = ["--no-build-isolation"] if _setuptools_at_least(77) else []
    built = _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", *isolation, "-q",
                  "-w", str(tmp_path / "dist")], tmp_path, env)  # fmt: skip
    if built.returncode != 0 and "No module named pip" in built.stderr:
        pytest.skip("pip is not installed in this environment")
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("landmark_afl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for protocol in ("high", "higher", "low", "lower"):
        assert f"landmark_afl/protocol_files/{protocol}.yaml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    site = tmp_path / "site"
    installed = _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                     tmp_path, env)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    env["PYTHONPATH"] = str(site)  # the wheel's copy first, the dependencies from this environment
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([sys.executable, "-c", "import landmark_afl; print(landmark_afl.__file__)"], work, env)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    listed = _run([sys.executable, "-m", "landmark_afl", "protocols", "list"], work, env)
    assert listed.returncode == 0 and "high" in listed.stdout, listed.stdout + listed.stderr
    from landmark_afl.data.phantom import generate_phantom

    data = generate_phantom(tmp_path / "ph", n=8, seed=1, size=96)
    trained = _run([sys.executable, "-m", "landmark_afl", "train", "--data", str(data), "--epochs", "1",
                    "--out", str(work / "run"), "input_size=[64,64]", "batch_size=4"], work, env)  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    assert (work / "run" / "checkpoints" / "best.pt").is_file()
