"""Contrast and speed of each protocol on real cephalograms (the ordering higher > high > low > lower).

    OMP_NUM_THREADS=1 python scripts/protocol_contrast.py --n 20 --json protocol_contrast.json
    OMP_NUM_THREADS=1 python scripts/protocol_contrast.py --images ../shared/data/dicom/wg04_xray/RG3_UNC.dcm

Prints, per protocol, the global standard deviation and the local contrast (mean 15 x 15 local standard deviation
at 512 px; see landmark_afl/protocols/contrast.py) over the images, the time per image (one OpenCV thread,
median and minimum of the repeats), and for each neighbouring pair how many images keep the ordering.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from landmark_afl.io import find_images, read_image
from landmark_afl.protocols import contrast_measures, list_protocols, load_protocol

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/isbi2015/RawImage/TrainingData"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of images (default: ISBI training)")
    parser.add_argument("--n", type=int, default=20, help="number of images, taken evenly over the sorted folder")
    parser.add_argument("--images", nargs="*", type=Path, help="explicit image files instead of --data/--n")
    parser.add_argument("--protocols", default="", help="comma-separated names (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per image and protocol")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)
    if args.images:
        paths = list(args.images)
    else:
        if not args.data.is_dir():
            print(f"{args.data}: not a folder; pass --data DIR or --images FILE ...", file=sys.stderr)
            return 2
        found = find_images(args.data)
        idx = np.linspace(0, len(found) - 1, min(args.n, len(found))).round().astype(int)
        paths = [found[i] for i in sorted(set(idx.tolist()))]
    names = [n.strip() for n in args.protocols.split(",") if n.strip()] or list_protocols()
    protocols = [load_protocol(n) for n in names]

    per_image = []
    for path in paths:
        image, meta = read_image(path)
        row = {"image": str(path), "shape": list(image.shape)}
        for protocol in protocols:
            out = protocol(image, meta)  # warm-up, and the output measured
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                protocol(image, meta)
                times.append((time.perf_counter() - start) * 1000.0)
            row[protocol.name] = {**contrast_measures(out), "ms_median": statistics.median(times), "ms_min": min(times)}
        per_image.append(row)
        print(f"{path.name}: " + "  ".join(f"{n} {row[n]['global_std']:.3f}/{row[n]['local_std']:.3f}" for n in names))

    summary = {}
    print(f"\n{len(paths)} images; global std / local std (mean [min, max]); ms per image (median of medians, min)")
    for name in names:
        g = [r[name]["global_std"] for r in per_image]
        loc = [r[name]["local_std"] for r in per_image]
        ms = [r[name]["ms_median"] for r in per_image]
        ms_min = min(r[name]["ms_min"] for r in per_image)
        summary[name] = {
            "global_std": {"mean": float(np.mean(g)), "min": min(g), "max": max(g)},
            "local_std": {"mean": float(np.mean(loc)), "min": min(loc), "max": max(loc)},
            "ms_median": statistics.median(ms),
            "ms_min": ms_min,
        }
        print(
            f"  {name:<8} global {np.mean(g):.4f} [{min(g):.4f}, {max(g):.4f}]   "
            f"local {np.mean(loc):.4f} [{min(loc):.4f}, {max(loc):.4f}]   "
            f"{statistics.median(ms):6.1f} ms ({ms_min:.1f})"
        )
    ordering = {}
    for a, b in zip(names, names[1:], strict=False):
        for measure in ("global_std", "local_std"):
            kept = sum(r[a][measure] > r[b][measure] for r in per_image)
            margin = min(r[a][measure] - r[b][measure] for r in per_image)
            ordering[f"{a}>{b} {measure}"] = {"kept": kept, "of": len(per_image), "min_margin": margin}
            print(f"  {a} > {b} by {measure}: {kept}/{len(per_image)} images (smallest margin {margin:+.4f})")
    if args.json:
        report = {
            "machine": platform.processor() or platform.machine(),
            "opencv_threads": cv2.getNumThreads(),
            "protocols": summary,
            "ordering": ordering,
            "images": per_image,
        }
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
