# Run: OMP_NUM_THREADS=2 python scripts/bench_malloc.py --rounds 10 --out bench_malloc.json
"""Freed memory kept (``landmark_afl.engine.memory``) against glibc's policy: forward and training step, one process.

Setting (state it with the figures): the landmark recipe's FPN (resnet18 by default) with AFL on, 19 maps at
``--size`` px, batch 8 for inference and 4 for training, random inputs, in bf16 autocast (on a CPU with native bf16)
and in fp32. The two malloc policies alternate round by round in the same process (ABBA order), ``--repeats`` timed
calls each after one untimed call that lets the heap settle:

- kept: ``M_MMAP_MAX = 0``, ``M_TRIM_THRESHOLD = 256 MiB`` (what ``landmark-afl train / evaluate / compare / predict``
  set);
- glibc: ``M_MMAP_MAX = 65536``, ``M_MMAP_THRESHOLD = 32 MiB``, ``M_TRIM_THRESHOLD = 64 MiB`` and a
  ``malloc_trim(0)``: the largest thresholds glibc's dynamic policy reaches by itself, so the gain against a fresh
  process (which starts at 128 KiB) is at least this large.

Reported per part: the median wall time per call under each policy, their paired ratio (median over rounds of
glibc / kept), the system time and the minor page faults per call. Linux with glibc only. Prints a table and writes
JSON.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import resource
import statistics
import time

import torch

from landmark_afl.engine.memory import M_MMAP_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES


def _libc():
    if platform.libc_ver()[0] != "glibc":
        raise SystemExit("bench_malloc measures glibc's malloc: this is not a glibc system")
    return ctypes.CDLL("libc.so.6")


def _policies(libc) -> dict:
    def kept() -> None:
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)

    def glibc() -> None:
        libc.mallopt(M_MMAP_MAX, 65536)
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
        libc.malloc_trim(0)

    return {"kept": kept, "glibc": glibc}


def _timed(fn) -> tuple[float, float, int]:
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return wall, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt


def _parts(size: int, k: int, amp: str):
    from landmark_afl.engine.config import update_config
    from landmark_afl.engine.optim import autocast_dtype
    from landmark_afl.recipes.landmarks import LandmarkConfig, build_task

    torch.manual_seed(0)
    cfg = update_config(LandmarkConfig(), {"input_size": (size, size), "afl.enabled": True})
    task = build_task(cfg, k)
    opt = torch.optim.AdamW(task.optimizer_parameters(), lr=1e-4)
    dtype = autocast_dtype(amp, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(4, k, 2, generator=g) * (size - 1)
    data = {"image": torch.rand(4, 1, size, size, generator=g), "heatmaps": task.codec.encode(pts)}
    images = torch.rand(8, 1, size, size, generator=g)

    def forward() -> None:
        task.eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            task.heatmaps(images)

    def train_step() -> None:
        task.train()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            out = task(data)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()

    label = "bf16" if dtype is not None else "fp32"
    return {f"forward {label}, batch 8": forward, f"training step {label}, batch 4": train_step}


def bench_malloc(size: int = 256, k: int = 19, rounds: int = 10, repeats: int = 3, amps=("auto", "off")) -> dict:
    from landmark_afl.engine.optim import precision_label

    libc = _libc()
    policies = _policies(libc)
    parts = {}
    for amp in amps:
        parts.update(_parts(size, k, amp))
    report = {
        "setting": {
            "model": f"FPN resnet18 + AFL, {k} maps, {size} x {size}", "rounds": rounds, "repeats": repeats,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "glibc": platform.libc_ver()[1],
            "machine": platform.processor() or platform.machine(),
            "amp_auto": precision_label("auto", torch.device("cpu")),
        },
        "parts": {},
    }  # fmt: skip
    for name, fn in parts.items():
        fn()  # warm-up
        times = {p: [] for p in policies}
        for r in range(rounds):
            order = ("glibc", "kept") if r % 4 in (0, 3) else ("kept", "glibc")  # ABBA: drift hits both alike
            for policy in order:
                policies[policy]()
                fn()  # the heap settles under the new policy
                times[policy].append([_timed(fn) for _ in range(repeats)])
        row = {}
        for policy, runs in times.items():
            calls = [c for run in runs for c in run]
            row[policy] = {
                "wall_s_median": statistics.median(c[0] for c in calls),
                "sys_s_mean": statistics.mean(c[1] for c in calls),
                "minor_faults_median": statistics.median(c[2] for c in calls),
            }
        per_round = [
            statistics.median(c[0] for c in g) / statistics.median(c[0] for c in k_)
            for g, k_ in zip(times["glibc"], times["kept"], strict=True)
        ]
        row["glibc_over_kept_paired_median"] = statistics.median(per_round)
        row["glibc_over_kept_rounds"] = per_round
        report["parts"][name] = row
        g, kp = row["glibc"], row["kept"]
        print(f"{name:32s} glibc {1e3 * g['wall_s_median']:7.1f} ms ({g['minor_faults_median']:7.0f} faults, sys "
              f"{1e3 * g['sys_s_mean']:5.1f} ms)   kept {1e3 * kp['wall_s_median']:7.1f} ms "
              f"({kp['minor_faults_median']:5.0f} faults, sys {1e3 * kp['sys_s_mean']:5.1f} ms)   "
              f"glibc / kept {row['glibc_over_kept_paired_median']:.3f}", flush=True)  # fmt: skip
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--landmarks", type=int, default=19)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per policy and round")
    p.add_argument("--amp", default="auto,off", help="precisions to measure (auto: bf16 where native)")
    p.add_argument("--out", default="bench_malloc.json")
    args = p.parse_args()
    if args.rounds < 1 or args.repeats < 1:
        raise SystemExit("--rounds and --repeats must be 1 or more")
    report = bench_malloc(args.size, args.landmarks, args.rounds, args.repeats,
                          tuple(a for a in args.amp.split(",") if a))  # fmt: skip
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
