# Run: OMP_NUM_THREADS=1 python scripts/bench_afl_variants.py --rounds 15 --out bench_afl_variants.json
"""Training-step cost of each AFL variant against the baseline (no AFL): landmark task, one process, interleaved.

Every arm is a ``LandmarkTask`` built by the landmark recipe (``build_task``) with its own model and optimizer, fed
the same synthetic batch (random images, K Gaussian targets). Each round runs, for every variant, one baseline step
and then one step of the variant (B V1 B V2 ... , the variant order rotating from round to round), so that the
machine's noise hits a variant and its baseline alike. Two warm-up rounds are not timed. Reported per variant:

- ratio: the median over rounds of (variant step / the baseline step just before it), the overhead; on a shared
  machine it is far steadier than the ratio of the two medians, which is printed next to it;
- AFL call (ms): the median time of the AFL call alone (topology of prediction and target, scores, critic update),
  timed afterwards, interleaved over the variants; ``1 + AFL call / baseline step`` is a low-noise estimate of the
  ratio.

Per-landmark AFL must stay within 1.05 (issue 13).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

ARMS = {
    "paper": {},
    "centred (real)": {"afl.critic_center": True},
    "centred (real+fake)": {"afl.critic_center": True, "afl.center_on": "both"},
    "centred (running, rate 0.1)": {"afl.critic_center": True, "afl.center_rate": 0.1},
    "focus_gamma=2": {"afl.focus_gamma": 2.0},
    "normalize_weights": {"afl.normalize_weights": True},
    "per_landmark": {"afl.per_landmark": True},
    "per_landmark+centred+normalized": {
        "afl.per_landmark": True,
        "afl.critic_center": True,
        "afl.normalize_weights": True,
    },
}


def _batch(size: int, k: int, batch: int, codec) -> dict:
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(batch, k, 2, generator=g) * (size - 1)
    return {"image": torch.rand(batch, 1, size, size, generator=g), "heatmaps": codec.encode(pts)}


def _build(size: int, k: int, encoder: str, overrides: dict):
    from landmark_afl.engine.config import update_config
    from landmark_afl.recipes.landmarks import LandmarkConfig, build_task

    torch.manual_seed(0)
    cfg = update_config(LandmarkConfig(), {"input_size": (size, size), "encoder": encoder, **overrides})
    task = build_task(cfg, k).train()
    return task, torch.optim.AdamW(task.optimizer_parameters(), lr=1e-4)


def _step(task, opt, data) -> float:
    t0 = time.perf_counter()
    out = task(data)
    opt.zero_grad()
    out["loss"].backward()
    opt.step()
    return time.perf_counter() - t0


def measure(size: int, k: int, batch: int, encoder: str, rounds: int, arms: dict[str, dict]) -> dict:
    baseline = _build(size, k, encoder, {"afl.enabled": False})
    variants = {name: _build(size, k, encoder, overrides) for name, overrides in arms.items()}
    data = _batch(size, k, batch, baseline[0].codec)
    names = list(variants)
    times = {name: {"variant": [], "baseline": []} for name in names}
    for r in range(rounds + 2):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            tb = _step(*baseline, data)
            tv = _step(*variants[name], data)
            if r >= 2:
                times[name]["baseline"].append(tb)
                times[name]["variant"].append(tv)
    afl_ms = _afl_call_ms(variants, data, repeats=max(10, 2 * rounds))
    rows = {}
    for name in names:
        tv, tb = times[name]["variant"], times[name]["baseline"]
        critic = variants[name][0].afl.critic
        rows[name] = {
            "overrides": arms[name],
            "ratio": statistics.median(v / b for v, b in zip(tv, tb, strict=True)),
            "ratio_of_medians": statistics.median(tv) / statistics.median(tb),
            "step_s": statistics.median(tv),
            "baseline_step_s": statistics.median(tb),
            "afl_call_ms": afl_ms[name],
            "ratio_from_afl_call": 1 + afl_ms[name] / (1e3 * statistics.median(tb)),
            "critic_parameters": sum(p.numel() for p in critic.parameters()),
            "steps": len(tv),
        }
    return rows


def _afl_call_ms(variants: dict, data: dict, repeats: int) -> dict[str, float]:
    """Median ms of each variant's AFL call (training mode: scores + one critic update), interleaved."""
    inputs = {}
    for name, (task, _) in variants.items():
        with torch.no_grad():
            raw = task.model(data["image"])
        per_landmark = task.afl.cfg.per_landmark
        loss = task.loss(raw, data["heatmaps"], reduction="landmark" if per_landmark else "sample")
        inputs[name] = (task.loss.activate(raw), data["heatmaps"], loss)
    times = {name: [] for name in variants}
    for r in range(repeats + 2):
        for name, (task, _) in variants.items():
            t0 = time.perf_counter()
            task.afl(*inputs[name])
            if r >= 2:
                times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--landmarks", type=int, default=36)
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--rounds", type=int, default=15, help="timed rounds (each: one baseline + one variant step each)")
    p.add_argument("--arms", default="all", help="comma-separated arm names, or 'all': " + ", ".join(ARMS))
    p.add_argument("--out", default="bench_afl_variants.json")
    args = p.parse_args()
    arms = ARMS if args.arms == "all" else {name: ARMS[name] for name in args.arms.split(",")}
    rows = measure(args.size, args.landmarks, args.batch, args.encoder, args.rounds, arms)
    threads = torch.get_num_threads()
    print(
        f"{args.size} px, batch {args.batch}, K = {args.landmarks}, {args.encoder}, {threads} thread(s), "
        f"{args.rounds} timed rounds, torch {torch.__version__}"
    )
    print(
        "| variant | ratio (paired median) | ratio of medians | step (s) | its baseline (s) | AFL call (ms) | "
        "1 + AFL call / baseline | critic params |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['ratio']:.3f} | {row['ratio_of_medians']:.3f} | {row['step_s']:.3f} | "
            f"{row['baseline_step_s']:.3f} | {row['afl_call_ms']:.1f} | {row['ratio_from_afl_call']:.3f} | "
            f"{row['critic_parameters']} |"
        )
    result = {
        "torch": torch.__version__,
        "threads": threads,
        "size": args.size,
        "batch": args.batch,
        "landmarks": args.landmarks,
        "encoder": args.encoder,
        "rounds": args.rounds,
        "arms": rows,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
