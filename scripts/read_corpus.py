# Run: OMP_NUM_THREADS=1 python scripts/read_corpus.py --out read_corpus.json
"""``read_image`` over a corpus of real and broken files: how many decode, how many fail with a clear
:class:`~landmark_afl.io.ImageReadError`, and anything else (another exception, a crash, a time-out, a non-finite
image), with the peak memory of each read.

Corpus: every file under ``../shared/data/dicom`` (recursively; LANDMARK_AFL_SHARED_DATA moves it) and every file of
pydicom's bundled test files (the installed package's ``data/test_files`` folder; ``pydicom.data.get_testdata_files``
is not called, it tries to download and hangs offline), or the folders given with ``--root``. Each file is read in
its own subprocess, under an address-space cap (``--mem-cap-gb``, default 4) and a time-out, so a crash or a memory
blow-up is counted against that file and the run goes on; the child reports its own peak RSS, interpreter and
imported libraries included: the kernel's VmHWM from /proc/self/status (on Linux a child's
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` starts at its parent's peak, so it is only the fallback).

"clear ImageReadError" means the error's message names the file. Exit status 1 when the last column is not 0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LANDMARK_AFL_SHARED_DATA", REPO.parent / "shared" / "data"))


def pydicom_test_files() -> Path | None:
    """The installed pydicom's bundled ``data/test_files`` folder (found without importing pydicom.data)."""
    import importlib.util

    spec = importlib.util.find_spec("pydicom")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "test_files"
    return folder if folder.is_dir() else None


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM, else ru_maxrss)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_one(path: str, target_size: tuple[int, int] | None) -> dict[str, Any]:
    """Read ``path`` in this process and classify the outcome (the child side)."""
    import numpy as np

    from landmark_afl.io import ImageReadError, read_image

    start = time.perf_counter()
    result: dict[str, Any]
    try:
        image, meta = read_image(path, target_size=target_size)
    except ImageReadError as err:
        clear = Path(path).name in str(err)
        result = {"outcome": "error" if clear else "other", "type": type(err).__name__, "message": str(err)}
    except BaseException as err:  # noqa: BLE001 - everything else is what this script exists to count
        result = {"outcome": "other", "type": type(err).__name__, "message": str(err)[:500]}
    else:
        finite = bool(np.isfinite(image).all())
        result = {
            "outcome": "decoded" if finite and image.ndim == 2 and image.dtype == np.float32 else "other",
            "shape": list(image.shape),
            "dtype": str(image.dtype),
            "finite": finite,
            "decoder": meta.get("decoder"),
            "spacing_mm": meta.get("spacing_mm"),
        }
    result["seconds"] = round(time.perf_counter() - start, 4)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def run_child(path: Path, target_size: tuple[int, int] | None, mem_cap_gb: float, timeout: float) -> dict[str, Any]:
    """Read ``path`` in a subprocess under the memory cap and the time-out (the parent side)."""
    cap = int(mem_cap_gb * 2**30)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    cmd = [sys.executable, __file__, "--child", str(path)]
    if target_size is not None:
        cmd += ["--target-size", str(target_size[0]), str(target_size[1])]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=limit, env=env, cwd=REPO, check=False
        )
    except subprocess.TimeoutExpired:
        return {"outcome": "other", "type": "timeout", "message": f"no answer within {timeout:g} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"outcome": "other", "type": f"exit {proc.returncode}", "message": " | ".join(tail)}
    return json.loads(lines[-1])


def corpus(roots: list[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        files.extend(sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root])
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, action="append", help="folder or file to read (repeatable)")
    parser.add_argument("--target-size", type=int, nargs=2, metavar=("H", "W"), help="read_image target_size")
    parser.add_argument("--mem-cap-gb", type=float, default=4.0, help="address-space cap per read (RLIMIT_AS)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per file")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    target = tuple(args.target_size) if args.target_size else None
    if args.child:
        print(json.dumps(read_one(args.child, target)))
        return 0

    roots = args.root or [p for p in (DATA / "dicom", pydicom_test_files()) if p is not None and p.exists()]
    files = corpus(roots)
    results: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    for i, path in enumerate(files, 1):
        results[str(path)] = res = run_child(path, target, args.mem_cap_gb, args.timeout)
        print(f"[{i}/{len(files)}] {res['outcome']:8s} {path}", file=sys.stderr)
    counts = {k: sum(r["outcome"] == k for r in results.values()) for k in ("decoded", "error", "other")}
    rss = [(r.get("peak_rss_mb") or 0.0, p) for p, r in results.items()]
    peak_mb, peak_file = max(rss) if rss else (0.0, None)
    report = {
        "roots": [str(r) for r in roots],
        "target_size": target,
        "files": len(files),
        "decoded": counts["decoded"],
        "clear_ImageReadError": counts["error"],
        "other": counts["other"],
        "other_files": {p: r for p, r in results.items() if r["outcome"] == "other"},
        "max_peak_rss_mb": peak_mb,
        "max_peak_rss_file": peak_file,
        "mem_cap_gb": args.mem_cap_gb,
        "seconds": round(time.perf_counter() - start, 1),
        "results": results,
    }
    print(f"\n{'files':>6} {'decoded':>8} {'ImageReadError':>15} {'other':>6}  max peak RSS")
    print(f"{len(files):6d} {counts['decoded']:8d} {counts['error']:15d} {counts['other']:6d}  {peak_mb:.0f} MB")
    print(f"(max peak RSS: {peak_file})")
    for path, res in report["other_files"].items():
        print(f"OTHER {path}: {res.get('type')}: {res.get('message', '')[:200]}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str))
        print(f"wrote {args.out}")
    return 1 if counts["other"] else 0


if __name__ == "__main__":
    sys.exit(main())
