# Run: OMP_NUM_THREADS=2 python scripts/bench_all.py --out bench_all.json
"""Every performance figure of the README in one run and one JSON: the machine, then each benchmark's own script.

1. precision (scripts/bench_precision.py): training and inference images/s in fp32 and bf16 autocast, interleaved in
   one process (FPN resnet18 + AFL, 19 maps, 320 x 256), and what ``amp=auto`` picks on this CPU;
2. AFL (scripts/bench_afl.py): the AFL / plain training-step ratio at 256 px, interleaved (plus the old extractor);
3. predict (scripts/bench_predict.py): end-to-end ``predict`` against the engine's pure forward rate, per engine
   (``--rounds`` of each, interleaved; the median round), against passes seconds before and after the loop and
   against every batch run again alone inside it (``paired``, the figure a shared machine moves least);
4. reading (scripts/bench_io.py): read + protocol ms for RG3_UNC, RG3_J2KR (full and at 512) and an ISBI image.

Each part runs in its own subprocess, so its peak RSS is its own and one part's allocations do not slow the next;
the figures that are ratios are measured within one part (one process), never across parts. Needs ../shared/data
for part 4 (skipped with the reason otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent

PARTS = {
    "precision": "from bench_precision import bench_precision as f; r = f(steps={steps})",
    "afl": "from bench_afl import bench_afl as f; r = f(size=256, batch=4, steps={afl_steps}, landmarks=19)",
    "predict": (
        "from bench_predict import bench_predict as f; "
        "r = f(size=256, images={images}, batch_size=8, workers=1, engines=('torch', 'onnx'), rss_counts=(), "
        "verbose=False, rounds={rounds}, paired=True)"
    ),
    "read": "from bench_io import bench_read as f; r = f(repeat={repeat})",
}


def machine() -> dict:
    """The CPU, its bf16 support, cores and the library versions."""
    import torch

    from landmark_afl.engine.device import cpu_bf16_support

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cpu_bf16": cpu_bf16_support(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.is_available(),
    }


def run_part(name: str, settings: dict) -> dict:
    """One benchmark in a fresh Python process; its result dict plus its wall time and peak RSS."""
    code = (
        "import json, resource, sys\n"
        f"sys.path.insert(0, {str(SCRIPTS)!r})\n"
        f"{PARTS[name].format(**settings)}\n"
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print('@@JSON@@' + json.dumps(r, default=str))\n"
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}",
                "wall_s": wall}  # fmt: skip
    line = next(x for x in proc.stdout.splitlines()[::-1] if x.startswith("@@JSON@@"))
    return {**json.loads(line[len("@@JSON@@") :]), "wall_s": wall}


def summary(result: dict) -> list[str]:
    """The README's performance table from the JSON."""
    rows = ["| figure | value |", "|---|---|"]
    p, a, pr, rd = (result["parts"].get(k, {}) for k in ("precision", "afl", "predict", "read"))
    if "train_images_per_s_fp32" in p:
        rows.append(f"| training img/s, 320 x 256, batch 4, fp32 / bf16 | {p['train_images_per_s_fp32']:.2f} / "
                    f"{p['train_images_per_s_bf16']:.2f} ({p['train_speedup_bf16']:.2f}x) |")  # fmt: skip
        rows.append(f"| inference img/s, batch 8, fp32 / bf16 | {p['infer_images_per_s_fp32']:.2f} / "
                    f"{p['infer_images_per_s_bf16']:.2f} ({p['infer_speedup_bf16']:.2f}x) |")  # fmt: skip
        rows.append(f"| `amp=auto` on this CPU | {p['amp_auto']} |")
    if "ratios" in a:
        for arm, r in a["ratios"].items():
            rows.append(f"| AFL / plain training step, 256 px, {arm} | {r['median']:.3f}x |")
    for name, e in pr.get("engines", {}).items():
        spread = ""
        if len(e.get("rounds", [])) > 1:
            spread = f", median of {len(e['rounds'])} rounds, {e['ratio_min']:.3f}-{e['ratio_max']:.3f}"
        rows.append(f"| predict / forward, {name} ({e['precision']}), batch 8, 256 px | {e['ratio_median']:.3f} "
                    f"({e['images_per_s']:.1f} / {e['forward_images_per_s']:.1f} img/s{spread}) |")  # fmt: skip
        if "ratio_paired_median" in e:
            low, high = e["ratio_paired_min"], e["ratio_paired_max"]
            rows.append(f"| predict / forward, {name}, every batch paired with a pass alone | "
                        f"{e['ratio_paired_median']:.3f} ({low:.3f}-{high:.3f}) |")  # fmt: skip
    for row in rd.get("rows", []):
        if "skipped" in row:
            rows.append(f"| read {row['name']} | skipped: {row['skipped']} |")
            continue
        ms = row.get("read_protocol_high_ms", row.get("read_ms"))
        rows.append(f"| read + protocol high, {row['name']} ({row['shape'][1]} x {row['shape'][0]} decoded) | "
                    f"{ms:.1f} ms |")  # fmt: skip
    peaks = [v.get("peak_rss_mb") for v in result["parts"].values() if isinstance(v, dict) and "peak_rss_mb" in v]
    if peaks:
        rows.append(f"| peak RSS of the largest part | {max(peaks):.0f} MB |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of " + ", ".join(PARTS))
    p.add_argument("--steps", type=int, default=8, help="timed steps per precision (precision part)")
    p.add_argument("--afl-steps", type=int, default=12, help="timed steps per arm (AFL part)")
    p.add_argument("--images", type=int, default=96, help="images of the end-to-end predict run")
    p.add_argument("--rounds", type=int, default=3, help="predict rounds per engine, interleaved (the median counts)")
    p.add_argument("--repeat", type=int, default=7, help="repeats per file (read part)")
    p.add_argument("--out", default="bench_all.json")
    args = p.parse_args()
    settings = {"steps": args.steps, "afl_steps": args.afl_steps, "images": args.images, "repeat": args.repeat,
                "rounds": args.rounds}  # fmt: skip
    result = {"command": " ".join(sys.argv), "machine": machine(), "parts": {}}
    print(json.dumps(result["machine"]))
    for name in [x for x in args.parts.split(",") if x]:
        print(f"running {name} ...", flush=True)
        result["parts"][name] = run_part(name, settings)
        if "error" in result["parts"][name]:
            print(f"  {name} failed: {result['parts'][name]['error']}")
    result["driver_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = summary(result)
    result["table"] = table
    print("\n".join(table))
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
