# Run: python scripts/bench_train.py --steps 20 --out bench_train.json
"""Training-step cost with and without AFL (same model, batch and data, interleaved in one process), where the
extra time goes, and training images/s + peak memory at 256 and 512 px for the default encoder.

Each size runs in a fresh subprocess so that its peak RSS (ru_maxrss) is its own. With and without AFL alternate
step by step (ABAB...) so that the machine's noise hits both alike; the ratio of the medians is the overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch


def _batch(size: int, k: int, batch: int, codec):
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(batch, k, 2, generator=g) * (size - 1)
    return {"image": torch.rand(batch, 1, size, size, generator=g), "heatmaps": codec.encode(pts)}


def measure(size: int, steps: int, batch: int, k: int, encoder: str) -> dict:
    from landmark_afl.afl import topology_features
    from landmark_afl.afl.loss import difficulty_scores
    from landmark_afl.engine.config import update_config
    from landmark_afl.recipes.landmarks import LandmarkConfig, build_task

    results = {}
    tasks, opts = {}, {}
    for afl in (False, True):
        torch.manual_seed(0)
        cfg = update_config(LandmarkConfig(), {"input_size": (size, size), "afl.enabled": afl, "encoder": encoder})
        tasks[afl] = build_task(cfg, k).train()
        opts[afl] = torch.optim.AdamW(tasks[afl].optimizer_parameters(), lr=1e-4)
    data = _batch(size, k, batch, tasks[True].codec)
    times = {False: [], True: []}
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(steps + 2):
        for afl in (False, True):
            t0 = time.perf_counter()
            out = tasks[afl](data)
            opts[afl].zero_grad()
            out["loss"].backward()
            opts[afl].step()
            if i >= 2:  # two warm-up steps
                times[afl].append(time.perf_counter() - t0)
    base, with_afl = statistics.median(times[False]), statistics.median(times[True])
    # where the AFL time goes, timed alone
    task = tasks[True]
    maps = task.loss.activate(task.model(data["image"])).detach()
    parts = {}
    for name, fn in {
        "topology_features_x2": lambda: (topology_features(maps, 0.5), topology_features(data["heatmaps"], 0.5)),
        "difficulty_scores": lambda: difficulty_scores(task.afl.critic, topology_features(maps, 0.5)),
        "critic_update": lambda: task.afl.update_critic(
            topology_features(data["heatmaps"], 0.5), topology_features(maps, 0.5)
        ),
    }.items():
        fn()
        t = []
        for _ in range(10):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        parts[name + "_ms"] = 1e3 * statistics.median(t)
    results.update(
        size=size,
        batch=batch,
        landmarks=k,
        encoder=encoder,
        threads=torch.get_num_threads(),
        step_s_baseline=base,
        step_s_afl=with_afl,
        afl_over_baseline=with_afl / base,
        images_per_s_baseline=batch / base,
        images_per_s_afl=batch / with_afl,
        critic_parameters=sum(p.numel() for p in task.afl.critic.parameters()),
        model_parameters=sum(p.numel() for p in task.model.parameters()),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        rss_before_training_mb=rss0 / 1024,
        **parts,
    )
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--landmarks", type=int, default=36)
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--out", default="bench_train.json")
    p.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one_size:
        print(json.dumps(measure(args.one_size, args.steps, args.batch, args.landmarks, args.encoder)))
        return 0
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        cmd = [sys.executable, __file__, "--one-size", str(size), "--steps", str(args.steps), "--batch",
               str(args.batch), "--landmarks", str(args.landmarks), "--encoder", args.encoder]  # fmt: skip
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{size}px  baseline {row['step_s_baseline']:.3f} s/step  AFL {row['step_s_afl']:.3f} s/step  "
            f"ratio {row['afl_over_baseline']:.3f}  {row['images_per_s_afl']:.1f} img/s  peak RSS "
            f"{row['peak_rss_mb']:.0f} MB  | topology x2 {row['topology_features_x2_ms']:.1f} ms, scores "
            f"{row['difficulty_scores_ms']:.1f} ms, critic update {row['critic_update_ms']:.1f} ms"
        )
    with open(args.out, "w") as f:
        json.dump({"torch": torch.__version__, "results": rows}, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
