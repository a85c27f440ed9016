# Run: python scripts/bench_precision.py --steps 8 --out bench_precision.json
"""fp32 against bf16 autocast on this machine's device: training step and inference, interleaved in one process.

Setting (state it with the figures): the landmark recipe's FPN (resnet18 by default) with AFL on, 19 maps at
``--size`` (H, W, default 320 x 256, the ISBI 2015 CPU setting), batch 4 for training and 8 for inference, random
images and targets. fp32 and bf16 alternate step by step (ABAB...) so that the machine's noise hits both alike; each
figure is the median after two warm-up steps, and the ratio of the medians is the speed-up. The precision a run
would get with ``optim.amp=auto`` is reported beside it: on a CPU without native bf16 (AVX-512 BF16 or AMX) the
bf16 column is emulated and ``auto`` stays fp32. Freed memory is kept for the next step as the CLI keeps it
(``landmark_afl.engine.memory``; ``LANDMARK_AFL_MALLOC=default`` measures glibc's own policy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def _step_times(task, opt, data, autocast_kw: dict) -> float:
    t0 = time.perf_counter()
    with torch.autocast(**autocast_kw):
        out = task(data)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    opt.step()
    return time.perf_counter() - t0


def bench_precision(
    size: tuple[int, int] = (320, 256),
    steps: int = 8,
    train_batch: int = 4,
    infer_batch: int = 8,
    k: int = 19,
    device: str = "cpu",
) -> dict:
    """Training images/s and inference images/s in fp32 and bf16 autocast, and their ratios (one process)."""
    from landmark_afl.engine.config import update_config
    from landmark_afl.engine.device import cpu_bf16_support
    from landmark_afl.engine.memory import retain_freed_memory
    from landmark_afl.engine.optim import autocast_dtype, precision_label
    from landmark_afl.recipes.landmarks import LandmarkConfig, build_task

    malloc = retain_freed_memory()  # as `landmark-afl train / evaluate` do (LANDMARK_AFL_MALLOC=default: glibc's)
    dev = torch.device(device)
    torch.manual_seed(0)
    cfg = update_config(LandmarkConfig(), {"input_size": tuple(size), "afl.enabled": True})
    task = build_task(cfg, k).to(dev).train()
    opt = torch.optim.AdamW(task.optimizer_parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    h, w = size
    pts = torch.rand(train_batch, k, 2, generator=g) * torch.tensor([w - 1, h - 1])
    data = {"image": torch.rand(train_batch, 1, h, w, generator=g).to(dev), "heatmaps": task.codec.encode(pts).to(dev)}
    arms = {
        "fp32": {"device_type": dev.type, "enabled": False},
        "bf16": {"device_type": dev.type, "dtype": torch.bfloat16},
    }
    train = {name: [] for name in arms}
    for i in range(steps + 2):
        for name, kw in arms.items():
            elapsed = _step_times(task, opt, data, kw)
            if i >= 2:
                train[name].append(elapsed)
    task.eval()
    images = torch.rand(infer_batch, 1, h, w, generator=g).to(dev)
    infer = {name: [] for name in arms}
    with torch.inference_mode():
        for i in range(steps + 1):
            for name, kw in arms.items():
                t0 = time.perf_counter()
                with torch.autocast(**kw):
                    task.heatmaps(images)
                if i >= 1:
                    infer[name].append(time.perf_counter() - t0)
    med = {f"{part}_{name}_s": statistics.median(times[name]) for part, times in (("train", train), ("infer", infer))
           for name in arms}  # fmt: skip
    return {
        "setting": f"FPN resnet18 + AFL, {k} maps, {h} x {w}, train batch {train_batch}, inference batch {infer_batch}",
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "malloc": malloc,
        "cpu_bf16": cpu_bf16_support() if dev.type == "cpu" else None,
        "amp_auto": precision_label("auto", dev),
        "amp_auto_is_bf16": autocast_dtype("auto", dev) == torch.bfloat16,
        "train_images_per_s_fp32": train_batch / med["train_fp32_s"],
        "train_images_per_s_bf16": train_batch / med["train_bf16_s"],
        "train_speedup_bf16": med["train_fp32_s"] / med["train_bf16_s"],
        "infer_images_per_s_fp32": infer_batch / med["infer_fp32_s"],
        "infer_images_per_s_bf16": infer_batch / med["infer_bf16_s"],
        "infer_speedup_bf16": med["infer_fp32_s"] / med["infer_bf16_s"],
        **med,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, nargs=2, default=(320, 256), metavar=("H", "W"))
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="bench_precision.json")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = bench_precision(tuple(args.size), args.steps, device=args.device)
    print(f"{result['setting']}, {result['device']}, {result['threads']} threads; amp=auto -> {result['amp_auto']}")
    print("| | fp32 | bf16 autocast | ratio |\n|---|---|---|---|")
    for part, unit in (("train", "training img/s"), ("infer", "inference img/s")):
        print(f"| {unit} | {result[f'{part}_images_per_s_fp32']:.2f} | {result[f'{part}_images_per_s_bf16']:.2f} | "
              f"{result[f'{part}_speedup_bf16']:.2f}x |")  # fmt: skip
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
