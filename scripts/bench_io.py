# Run: OMP_NUM_THREADS=1 python scripts/bench_io.py --repeat 7 --out bench_io.json
"""Read time (median of N) of large real X-ray files, and read + the "high" contrast protocol when available.

Files: NEMA WG04 RG3 (CR, 1760 x 1760, 10-bit, MONOCHROME1) uncompressed, JPEG 2000 lossless, JPEG lossless
(SimpleITK fallback) and RLE; one ISBI 2015 cephalogram (1935 x 2400 JPEG). Data from ../shared/data (or
LANDMARK_AFL_SHARED_DATA). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

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


def _resolve(pattern: str) -> Path | None:
    matches = sorted(DATA.glob(pattern))
    return matches[0] if matches else None


def _median_ms(fn, repeat: int) -> float:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed reads per file (median reported)")
    parser.add_argument("--out", type=Path, default=Path("bench_io.json"), help="JSON output path")
    args = parser.parse_args(argv)

    protocol, protocol_note = _load_protocol()
    rows = []
    for name, pattern in FILES.items():
        path = _resolve(pattern)
        if path is None:
            rows.append({"name": name, "path": str(DATA / pattern), "skipped": "file not found"})
            continue
        image, meta = read_image(path)  # warm-up (imports, page cache)
        row = {
            "name": name,
            "path": str(path),
            "shape": list(image.shape),
            "decoder": meta["decoder"],
            "read_ms": round(_median_ms(lambda p=path: read_image(p), args.repeat), 1),
        }
        if protocol is not None:
            protocol(image, meta)
            row["read_protocol_high_ms"] = round(_median_ms(lambda p=path: protocol(*read_image(p)), args.repeat), 1)
        rows.append(row)

    print(f"{'file':<10} {'shape':<13} {'decoder':<10} {'read ms':>8} {'read+high ms':>13}")
    for row in rows:
        if "skipped" in row:
            print(f"{row['name']:<10} skipped: {row['skipped']} ({row['path']})")
            continue
        shape = "x".join(str(v) for v in row["shape"])
        with_protocol = row.get("read_protocol_high_ms", "n/a")
        print(f"{row['name']:<10} {shape:<13} {row['decoder']:<10} {row['read_ms']:>8} {with_protocol:>13}")
    if protocol_note:
        print(f"note: {protocol_note}")
    result = {
        "repeat": args.repeat,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "protocol_note": protocol_note,
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
