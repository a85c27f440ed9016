"""Phantom generation speed: images per second at a given size (prints a table line and JSON).

    OMP_NUM_THREADS=1 python scripts/bench_phantom.py --n 200 --size 512 [--json out.json]

Generates the data set into a temporary folder (rendering + DICOM writing, RLE for half of the images), then
times ``load_dataset`` and a read-back of every image with ``landmark_afl.io.read_image``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from landmark_afl.data.dataset import load_dataset
from landmark_afl.data.phantom import DEFAULT_N, DEFAULT_SEED, DEFAULT_SIZE, generate_phantom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()

    from landmark_afl.io import read_image

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "phantom"
        t0 = time.perf_counter()
        generate_phantom(out, n=args.n, seed=args.seed, size=args.size)
        generate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = load_dataset(out)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for key in ds.images:
            read_image(ds.image_path(key))
        read_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in (out / "images").iterdir()) / 1e6
    result = {
        "n": args.n,
        "size": args.size,
        "seed": args.seed,
        "generate_s": round(generate_s, 3),
        "images_per_s": round(args.n / generate_s, 2),
        "load_dataset_s": round(load_s, 4),
        "read_back_ms_per_image": round(1000 * read_s / args.n, 2),
        "disk_mb": round(size_mb, 2),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    print(
        f"phantom n={args.n} size={args.size}: {generate_s:.1f} s ({result['images_per_s']} images/s), "
        f"load_dataset {load_s * 1000:.1f} ms, read-back {result['read_back_ms_per_image']} ms/image, {size_mb:.1f} MB"
    )
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
