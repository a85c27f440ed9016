# Run: OMP_NUM_THREADS=1 python scripts/bench_io.py --repeat 7 --out bench_io.json
"""Read time (median of N) of large real X-ray files, read + the "high" contrast protocol, and the full
``prepare_image`` step (read -> protocol -> letterbox) at a network input size, and where the protocol's time goes
(each step's median on the image the steps before it made). Freed memory is kept for the next call, as ``train`` and
``predict`` keep it (:func:`landmark_afl.engine.memory.retain_freed_memory`), unless LANDMARK_AFL_MALLOC=default.

Files: NEMA WG04 RG3 (CR, 1760 x 1760, 10-bit, MONOCHROME1) uncompressed, JPEG 2000 lossless (decoded in full, and
at the resolution level that covers a 512 x 512 and the default input: ``read_image(path, target_size=...)``),
JPEG lossless (SimpleITK fallback) and RLE; one ISBI 2015 cephalogram (1935 x 2400 JPEG) in full and by DCT
scaling for 448 x 352 (the ISBI recipe) and the default input. Data from ../shared/data
(or LANDMARK_AFL_SHARED_DATA). Prints a table and writes JSON. Other scripts call :func:`bench_read`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from landmark_afl.io import read_image

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LANDMARK_AFL_SHARED_DATA", REPO.parent / "shared" / "data"))
FILES = {
    "RG3_UNC": "dicom/wg04_xray/RG3_UNC.dcm",
    "RG3_J2KR": "dicom/wg04_xray/RG3_J2KR.dcm",
    "RG3_JPLL": "dicom/wg04_xray/RG3_JPLL.dcm",
    "RG3_RLE": "dicom/wg04_xray/RG3_RLE.dcm",
    "isbi_001": "isbi2015/RawImage/TrainingData/001.*",
}
# (row name, file key, target size or None for a full decode); "default" = the landmark recipe's input size
CASES = (
    ("RG3_UNC", "RG3_UNC", None),
    ("RG3_J2KR full", "RG3_J2KR", None),
    ("RG3_J2KR @512", "RG3_J2KR", (512, 512)),
    ("RG3_J2KR @default", "RG3_J2KR", "default"),
    ("RG3_JPLL", "RG3_JPLL", None),
    ("RG3_RLE", "RG3_RLE", None),
    ("isbi_001", "isbi_001", None),
    ("isbi_001 @448x352", "isbi_001", (448, 352)),
    ("isbi_001 @default", "isbi_001", "default"),
)


def _resolve(pattern: str, data: Path) -> Path | None:
    matches = sorted(data.glob(pattern))
    return matches[0] if matches else None


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def _load_protocol():
    try:
        from landmark_afl.protocols import load_protocol

        return load_protocol("high"), None
    except Exception as err:  # noqa: BLE001 - the protocols part may not exist yet; report why
        return None, f"protocol 'high' not available: {type(err).__name__}: {err}"


def step_times(protocol, image, meta, repeat: int) -> dict[str, float]:
    """Median ms of each step of ``protocol`` on ``image``, each on a copy of what the steps before it gave."""
    import numpy as np

    x = np.array(image, dtype=np.float32, copy=True)
    times = {}
    for number, step in enumerate(protocol.steps, start=1):
        params = dict(step.params)
        times[f"{number} {step.name}"] = round(
            _median_ms(lambda s=step, x=x, k=params: s.spec.func(x.copy(), meta, **k), repeat), 2
        )
        x = step.spec.func(x.copy(), meta, **params)
    return times


def default_input_size() -> tuple[int, int]:
    """The landmark recipe's default network input (H, W); (256, 256) when the recipe cannot be imported."""
    try:
        from landmark_afl.recipes.landmarks import LandmarkConfig

        return tuple(int(v) for v in LandmarkConfig().input_size)
    except Exception:  # noqa: BLE001 - the recipe may be mid-edit; the benchmark still runs
        return (256, 256)


def bench_read(repeat: int = 7, data: Path | str | None = None, cases=CASES) -> dict[str, Any]:
    """Time ``read_image`` (and + protocol "high", and the whole ``prepare_image``) on the real files.

    Args:
        repeat: timed runs per row (the median is reported).
        data: the shared data folder (default ``../shared/data`` or ``LANDMARK_AFL_SHARED_DATA``).
        cases: ``(row name, key of FILES, target size | None | "default")`` rows.

    Returns:
        JSON-ready dict: environment fields and ``rows``, each with ``read_ms``, ``read_protocol_high_ms`` (when the
        protocol loads), ``steps_ms`` (each step of it), ``prepare_ms`` (read -> protocol -> letterbox at the target,
        or at the default input size for full decodes), ``shape`` (decoded), ``decode_scale``, ``decoder``; or
        ``skipped`` with the reason.
    """
    from landmark_afl.data.letterbox import letterbox
    from landmark_afl.data.training import prepare_image
    from landmark_afl.engine.memory import retain_freed_memory

    malloc = retain_freed_memory()

    data = Path(data) if data is not None else DATA
    protocol, protocol_note = _load_protocol()
    default = default_input_size()
    rows = []
    for name, key, target in cases:
        path = _resolve(FILES[key], data)
        if path is None:
            rows.append({"name": name, "path": str(data / FILES[key]), "skipped": "file not found"})
            continue
        target = default if target == "default" else target
        image, meta = read_image(path, target_size=target)  # warm-up (imports, page cache)
        row: dict[str, Any] = {
            "name": name,
            "path": str(path),
            "target_size": list(target) if target else None,
            "shape": list(image.shape),
            "decode_scale": meta["decode_scale"],
            "decoder": meta["decoder"],
            "read_ms": round(_median_ms(lambda p=path, t=target: read_image(p, target_size=t), repeat), 1),
        }
        if protocol is not None:
            protocol(image, meta)
            row["read_protocol_high_ms"] = round(
                _median_ms(lambda p=path, t=target: protocol(*read_image(p, target_size=t)), repeat), 1
            )
            row["steps_ms"] = step_times(protocol, image, meta, repeat)
            size = target or default
            if target is None:  # the pipeline as it was: full decode, protocol, letterbox
                row["prepare_ms"] = round(
                    _median_ms(lambda p=path, s=size: letterbox(protocol(*read_image(p)), s), repeat), 1
                )
            else:
                row["prepare_ms"] = round(_median_ms(lambda p=path, s=size: prepare_image(p, protocol, s), repeat), 1)
            row["prepare_size"] = list(size)
        rows.append(row)
    return {
        "repeat": repeat,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "default_input_size": list(default),
        "protocol_note": protocol_note,
        "malloc": malloc,
        "rows": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    """The rows of :func:`bench_read` as a text table."""
    head = f"{'file':<18} {'decoded':<10} {'f':>2} {'decoder':<33} {'read ms':>8} {'+high ms':>9} {'prepare ms':>11}"
    print(head)
    for row in result["rows"]:
        if "skipped" in row:
            print(f"{row['name']:<18} skipped: {row['skipped']} ({row['path']})")
            continue
        shape = "x".join(str(v) for v in row["shape"])
        prepare = row.get("prepare_ms", "n/a")
        if "prepare_size" in row:
            prepare = f"{prepare} @{row['prepare_size'][0]}"
        print(
            f"{row['name']:<18} {shape:<10} {row['decode_scale']:>2} {row['decoder']:<33} {row['read_ms']:>8} "
            f"{row.get('read_protocol_high_ms', 'n/a'):>9} {prepare:>11}"
        )
    for row in result["rows"]:
        if row.get("steps_ms"):
            print(f"{row['name']:<18} protocol steps ms: " + ", ".join(f"{k} {v}" for k, v in row["steps_ms"].items()))
    if result["protocol_note"]:
        print(f"note: {result['protocol_note']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed reads per file (median reported)")
    parser.add_argument("--out", type=Path, default=Path("bench_io.json"), help="JSON output path")
    args = parser.parse_args(argv)
    result = bench_read(args.repeat)
    print_table(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
