# Run: python scripts/bench_ddp.py --epochs 2 --size 128 --out bench_ddp.json
"""Data-parallel scaling of training on this machine: 1 process x N threads against torchrun N processes x 1 thread.

Both train the same phantom run (``landmark-afl train``; same seed, input size, per-process batch) for a few epochs;
the figure is the training images/s of the last epoch from metrics.csv (the first epoch pays the warm-up), which
under torchrun counts the images of every process. On a GPU machine run it with ``--gpus N`` to compare 1 GPU with
N GPUs (nccl).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _last_rate(run: Path) -> float:
    with (run / "metrics.csv").open() as f:
        return float(list(csv.DictReader(f))[-1]["images_per_s"])


def _train(cmd: list[str], threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--procs", type=int, default=2, help="processes of the data-parallel run (CPU: threads of the other)"
    )
    p.add_argument("--gpus", type=int, default=0, help="compare 1 GPU with this many (nccl) instead of CPU processes")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--size", type=int, default=128, help="input size (square)")
    p.add_argument("--batch", type=int, default=4, help="batch size per process")
    p.add_argument("--n", type=int, default=64, help="phantom images")
    p.add_argument("--out", default="bench_ddp.json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ph"
        subprocess.run([sys.executable, "-m", "landmark_afl", "data", "phantom", str(data), "--n", str(args.n),
                        "--size", str(2 * args.size)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        train = ["train", "--data", str(data), "--epochs", str(args.epochs), f"input_size=[{args.size},{args.size}]",
                 f"batch_size={args.batch}", "optim.log_every=1000"]  # fmt: skip
        n = args.gpus or args.procs
        device = ["device=cuda"] if args.gpus else ["device=cpu"]
        single, multi = Path(tmp) / "single", Path(tmp) / "multi"
        _train([sys.executable, "-m", "landmark_afl", *train, *device, "--out", str(single)], 1 if args.gpus else n)
        _train([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n), "-m",
                "landmark_afl", *train, *device, "--out", str(multi)], 1)  # fmt: skip
        one, many = _last_rate(single), _last_rate(multi)
    what = f"{n} GPUs vs 1" if args.gpus else f"{n} processes x 1 thread vs 1 process x {n} threads"
    result = {"setting": what, "size": args.size, "batch_per_process": args.batch, "epochs": args.epochs,
              "images_per_s_single": one, "images_per_s_ddp": many, "speedup": many / one,
              "efficiency": many / one / (n if args.gpus else 1)}  # fmt: skip
    print(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
