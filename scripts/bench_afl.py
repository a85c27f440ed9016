# Run: OMP_NUM_THREADS=1 python scripts/bench_afl.py --steps 12 --out bench_afl.json
"""Where the AFL training step's extra time goes, and the AFL / plain step-time ratio, interleaved in one process.

The landmark task of the recipe (smp FPN, default encoder resnet18, ``LandmarkConfig`` defaults, so the recipe's
AFL settings) is built once per arm with the same seed, on one synthetic batch made the way ``LandmarkTrainingSet``
makes it (``codec.encode`` per image of landmarks in input pixels, a few absent, a few near or over the border):

    plain     AFL off: the plain mean of the base loss
    afl_old   AFL as before issue 10: the activation of the raw outputs, then the dense full-resolution extractor
              (a verbatim copy of the old code below) on the activated maps and on the target maps
    afl_pred  the shipped ``topology_features`` (row-pruned, activating only the rows it keeps) on the raw outputs
              and on the target maps (``targets_from_landmarks=False``)
    afl_new   the shipped path: ``LandmarkTask.prediction_features`` (as afl_pred) and ``target_features`` from
              the landmark coordinates (``target_topology_features``)

Steps alternate between the arms in a rotating order (ABCD, BCDA, ...) so that the machine's noise hits them alike;
the figures are the medians (and minima) of the timed steps after two warm-up steps, and ``ratio`` is the median
AFL step over the median plain step. Inside the AFL steps the parts are timed in place (a clock around each call):
the extractor on the predictions and on the targets, the activation of the raw outputs (afl_old; the others fuse it
into the extractor), the difficulty scores and the critic update; ``other_ms`` is the AFL step minus the plain step
minus the parts (mostly noise). The extractors are also timed alone on three kinds of prediction maps (the model's,
peaks like a trained model's, and noise reaching the threshold in most rows, where the pruned extractor falls back to
the dense pass), and on the targets. Freed memory is kept for the next step, as `landmark-afl train` keeps it.

``bench_afl(size, batch, steps, threads)`` returns the whole result as a dict (for ``scripts/bench_all.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

ARMS = ("plain", "afl_old", "afl_pred", "afl_new")
PARTS = ("activation", "extractor_pred", "extractor_target", "scores", "critic_update")
_OLD_CPU_BLOCK_BYTES = 2**21


@torch.no_grad()
def old_topology_features(heatmaps: torch.Tensor, threshold: float) -> torch.Tensor:
    """The extractor before issue 10 (commit 8ce905d), verbatim: dense float32 masked marginals in 2 MB blocks."""
    b, k, h, w = heatmaps.shape
    maps = heatmaps.reshape(b * k, h, w)
    below = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    block = max(1, _OLD_CPU_BLOCK_BYTES // (4 * h * w)) if maps.device.type == "cpu" else max(b * k, 1)
    cols, rows = [], []
    for part in maps.split(block):
        kept = F.threshold(part.float(), below, 0.0)
        cols.append(kept.sum(1))
        rows.append(kept.sum(2))
    col_mass, row_mass = torch.cat(cols).double().view(b, k, w), torch.cat(rows).double().view(b, k, h)
    f64 = {"dtype": torch.float64, "device": heatmaps.device}
    mass = col_mass.sum(-1)
    present = mass > 0
    safe_mass = torch.where(present, mass, torch.ones_like(mass))
    cx = (col_mass * torch.arange(w, **f64)).sum(-1) / safe_mass
    cy = (row_mass * torch.arange(h, **f64)).sum(-1) / safe_mass
    centroids = torch.stack([cx, cy], -1) * present[..., None]
    pair = (present[:, :, None] & present[:, None, :]).double()
    diff = centroids[:, :, None, :] - centroids[:, None, :, :]
    planar = (1 - diff.square().sum(-1).sqrt() / math.sqrt(w**2 + h**2)) * pair
    count = present.sum(-1, keepdim=True).clamp_min(1).double()
    center = centroids.sum(1) / count
    offsets = (centroids - center[:, None, :]) * present[..., None]
    dots = (offsets[:, :, None, :] * offsets[:, None, :, :]).sum(-1)
    norms = offsets.square().sum(-1).sqrt()
    denom = (norms[:, :, None] * norms[:, None, :]).clamp_min(1e-6)
    angular = (0.5 + 0.5 * dots / denom) * pair
    return torch.stack([planar, angular], 1).float()


def make_batch(codec, batch: int, k: int, seed: int = 0) -> dict:
    """A batch as ``LandmarkTrainingSet`` makes it: per image ``codec.encode(landmarks)``; 2 absent, 2 at the border."""
    rng = np.random.default_rng(seed)
    h, w = codec.input_size
    items = []
    for _ in range(batch):
        pts = rng.uniform([8, 8], [w - 9, h - 9], size=(k, 2))
        pts[rng.choice(k, 2, replace=False)] = np.nan
        pts[0] = [-1.5, h / 2]  # just over the left border
        pts[1] = [w - 0.5, h - 2.0]  # on the bottom-right corner
        items.append(pts)
    image = torch.from_numpy(rng.random((batch, 1, h, w), dtype=np.float32))
    return {
        "image": image,
        "heatmaps": torch.stack([codec.encode(p) for p in items]),
        "landmarks": torch.stack([torch.from_numpy(p.astype(np.float32)) for p in items]),
    }


class _Clock:
    """Per-step timings of named calls: ``wrap(fn, key)`` returns fn with a clock around it."""

    def __init__(self) -> None:
        self.step: dict[str, float] = defaultdict(float)

    def wrap(self, fn, key: str):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.step[key] += time.perf_counter() - t0
            return out

        return timed


@contextlib.contextmanager
def _patched(module, name, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _build(arm: str, size: int, k: int, encoder: str, loss: str | None, clock: _Clock):
    from landmark_afl.engine.config import update_config
    from landmark_afl.engine.optim import build_optimizer
    from landmark_afl.recipes.landmarks import LandmarkConfig, build_task

    torch.manual_seed(0)
    overrides = {"input_size": (size, size), "afl.enabled": arm != "plain", "encoder": encoder}
    if loss:
        overrides["loss"] = loss
    cfg = update_config(LandmarkConfig(), overrides)
    task = build_task(cfg, k).train()
    if task.afl is not None:
        threshold = task.afl.cfg.threshold
        if arm == "afl_old":  # the activation of the raw outputs, then the old extractor, on maps and targets
            activate = clock.wrap(task.loss.activate, "activation")
            old_pred = clock.wrap(old_topology_features, "extractor_pred")
            task.prediction_features = lambda raw: old_pred(activate(raw), threshold)
            old_target = clock.wrap(old_topology_features, "extractor_target")
            task.target_features = lambda batch: old_target(batch["heatmaps"], threshold)
        else:  # the shipped extractor (activating the rows it needs) on the raw outputs
            task.prediction_features = clock.wrap(task.prediction_features, "extractor_pred")
            task.targets_from_landmarks = arm == "afl_new"
            task.target_features = clock.wrap(task.target_features, "extractor_target")
        task.afl.update_critic = clock.wrap(task.afl.update_critic, "critic_update")
    return task, build_optimizer(cfg.optim, task.optimizer_parameters()), cfg


def _time(fn, n: int = 10) -> dict:
    fn()
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return {"median_ms": 1e3 * statistics.median(t), "min_ms": 1e3 * min(t)}


def bench_afl(
    size: int = 256,
    batch: int = 4,
    steps: int = 12,
    threads: int | None = None,
    landmarks: int = 36,
    encoder: str = "resnet18",
    arms: tuple[str, ...] = ARMS,
    warmup: int = 2,
    loss: str | None = None,
) -> dict:
    """Interleaved plain and AFL training steps of the landmark task; returns the figures as a dict.

    Args:
        size: input size (size x size).
        batch: images per step.
        steps: timed steps per arm (after ``warmup`` untimed ones).
        threads: torch intra-op threads for the run (None: as set, e.g. by OMP_NUM_THREADS); restored after.
        landmarks: K.
        encoder: smp encoder of the FPN.
        arms: which of ``ARMS`` to run ("plain" is always run: the ratios are over it).
        warmup: untimed steps per arm first.
        loss: the base loss (None: the recipe's, wmse; "bce", "focal" or "dice" have a sigmoid activation).

    Returns:
        ``ratio`` (median afl_new step / median plain step, or the last AFL arm run when afl_new is not),
        ``ratios`` per AFL arm (``median`` and ``min`` ratios, and the median of the per-round ratios), ``arms``
        (per arm: median / min step in s, and for AFL arms the median ms of each part and ``other_ms``),
        ``extractor_alone`` (ms per call of each extractor on three kinds of maps) and the settings.
    """
    import landmark_afl.afl.loss as afl_loss
    from landmark_afl.afl import target_topology_features, topology_features
    from landmark_afl.afl.topology import _below
    from landmark_afl.engine.memory import retain_freed_memory

    malloc = retain_freed_memory()  # as `landmark-afl train` does (LANDMARK_AFL_MALLOC=default: glibc's own)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    arms = ("plain",) + tuple(a for a in arms if a != "plain")
    unknown = set(arms) - set(ARMS)
    if unknown:
        raise ValueError(f"unknown arms {sorted(unknown)}; choose from {ARMS}")
    clock = _Clock()
    try:
        built = {arm: _build(arm, size, landmarks, encoder, loss, clock) for arm in arms}
        codec = built["plain"][0].codec
        data = make_batch(codec, batch, landmarks)
        times: dict[str, list[float]] = {arm: [] for arm in arms}
        parts: dict[str, dict[str, list[float]]] = {arm: defaultdict(list) for arm in arms}
        with _patched(afl_loss, "difficulty_scores", clock.wrap(afl_loss.difficulty_scores, "scores")):
            for i in range(warmup + steps):
                order = arms[i % len(arms) :] + arms[: i % len(arms)]
                for arm in order:
                    task, opt, _ = built[arm]
                    clock.step.clear()
                    t0 = time.perf_counter()
                    out = task(data)
                    opt.zero_grad(set_to_none=True)
                    out["loss"].backward()
                    opt.step()
                    elapsed = time.perf_counter() - t0
                    if i >= warmup:
                        times[arm].append(elapsed)
                        if arm != "plain":
                            for name in PARTS:
                                parts[arm][name].append(clock.step.get(name, 0.0))
        plain = statistics.median(times["plain"])
        result_arms, ratios = {}, {}
        for arm in arms:
            med = statistics.median(times[arm])
            row = {"step_s_median": med, "step_s_min": min(times[arm]), "steps": len(times[arm])}
            if arm != "plain":
                part_ms = {f"{name}_ms": 1e3 * statistics.median(parts[arm][name]) for name in PARTS}
                row.update(part_ms)
                row["afl_extra_ms"] = 1e3 * (med - plain)
                row["other_ms"] = row["afl_extra_ms"] - sum(part_ms.values())
                ratios[arm] = {
                    "median": med / plain,
                    "min": min(times[arm]) / min(times["plain"]),
                    "paired_median": statistics.median(a / p for a, p in zip(times[arm], times["plain"], strict=True)),
                }
            result_arms[arm] = row

        # the extractors alone, on the model's own predictions and on two synthetic kinds of maps
        task = built[arms[-1]][0]
        with torch.no_grad():
            raw = task.model(data["image"])
            model_maps = task.loss.activate(raw)
        threshold = 0.5 if task.afl is None else task.afl.cfg.threshold
        g = torch.Generator().manual_seed(1)
        jitter = torch.randn(data["landmarks"].shape, generator=g)
        peaks = 0.9 * codec.encode(data["landmarks"] + jitter) + 0.05 * torch.rand(model_maps.shape, generator=g)
        noise = torch.rand(model_maps.shape, generator=g) ** 8  # 8 % of the pixels reach 0.5, in nearly every row
        alone = {}
        for name, maps in (("model", model_maps), ("peaks", peaks), ("noise", noise)):
            rows = maps.flatten(0, 2).amax(1)
            alone[name] = {
                "rows_reaching_threshold": float((rows > _below(threshold)).float().mean()),
                "old_dense": _time(lambda m=maps: old_topology_features(m, threshold)),
                "new": _time(lambda m=maps: topology_features(m, threshold)),
            }
        if task.loss.activation != "identity":  # the activation and the old extractor vs the fused extractor
            alone["model_raw_outputs"] = {
                "old_activate_then_dense": _time(lambda: old_topology_features(task.loss.activate(raw), threshold)),
                "new_fused_activation": _time(lambda: topology_features(raw, threshold, task.loss.activation)),
            }
        alone["targets"] = {
            "old_dense": _time(lambda: old_topology_features(data["heatmaps"], threshold)),
            "new_full_resolution": _time(lambda: topology_features(data["heatmaps"], threshold)),
            "new_from_landmarks": _time(
                lambda: target_topology_features(data["landmarks"], codec, threshold, heatmaps=data["heatmaps"])
            ),
        }
        last_afl = "afl_new" if "afl_new" in ratios else (list(ratios)[-1] if ratios else None)
        return {
            "size": size,
            "batch": batch,
            "landmarks": landmarks,
            "encoder": encoder,
            "loss": task.loss.name,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "malloc": malloc,
            "steps": steps,
            "ratio": ratios[last_afl]["median"] if last_afl else None,
            "ratios": ratios,
            "arms": result_arms,
            "extractor_alone": alone,
        }
    finally:
        torch.set_num_threads(old_threads)


def _print(r: dict) -> None:
    print(f"{r['size']} px, batch {r['batch']}, K {r['landmarks']}, {r['encoder']}, loss {r['loss']}, "
          f"{r['threads']} threads, {r['steps']} interleaved steps per arm")  # fmt: skip
    plain = r["arms"]["plain"]
    print(f"  plain      {plain['step_s_median']:.3f} s/step (min {plain['step_s_min']:.3f})")
    for arm, row in r["arms"].items():
        if arm == "plain":
            continue
        q = r["ratios"][arm]
        print(f"  {arm:10s} {row['step_s_median']:.3f} s/step (min {row['step_s_min']:.3f})  ratio {q['median']:.3f} "
              f"(min/min {q['min']:.3f}, paired {q['paired_median']:.3f})  extra {row['afl_extra_ms']:.1f} ms = "
              + ", ".join(f"{p} {row[p + '_ms']:.1f}" for p in PARTS) + f", other {row['other_ms']:.1f}")  # fmt: skip
    for name, row in r["extractor_alone"].items():
        figures = ", ".join(f"{k} {v['median_ms']:.2f} ms" for k, v in row.items() if isinstance(v, dict))
        reach = (
            f" ({100 * row['rows_reaching_threshold']:.1f} % rows reach the threshold)"
            if "rows_reaching_threshold" in row
            else ""
        )
        print(f"  extractor alone, {name}{reach}: {figures}")  # fmt: skip
    print(f"  ratio (AFL / plain, median): {r['ratio']:.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--landmarks", type=int, default=36)
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--loss", default=None, help="base loss (default: the recipe's); bce/focal/dice: sigmoid")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        r = bench_afl(size, args.batch, args.steps, args.threads, args.landmarks, args.encoder,
                      tuple(args.arms.split(",")), loss=args.loss)  # fmt: skip
        _print(r)
        results.append(r)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"results": results}, f, indent=2)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
