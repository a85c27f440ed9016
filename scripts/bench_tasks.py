# Run: OMP_NUM_THREADS=2 python scripts/bench_tasks.py --steps 6 --out bench_tasks.json
"""Training images/s of each task's recipe at its default input size, with and without AFL, in one process.

For every task the recipe's own ``build`` makes the data, model and task (the defaults of ``--show-config``, with
``batch_size`` lowered where the default is a GPU batch: given per task below and printed), twice: AFL on and off
with the same seed. Steps alternate AFL / plain (ABAB...) so that the machine's noise hits both alike; the figures
are medians after one warm-up step, and the ratio is AFL over plain. Data: the embedded phantom (landmarks), the
real COCO / MPII samples of ../shared/data, a CIFAR-100-format folder
of random images written here, synthetic MPII head boxes (both: speed only), and scikit-learn's digits.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco_mpii_samples"


def _cifar_folder(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", 512), ("test", 128)):
        data = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": list(rng.integers(0, 100, n)),
            b"coarse_labels": list(rng.integers(0, 20, n)),
            b"filenames": [f"{i}.png".encode() for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(data))
    meta = {b"fine_label_names": [f"c{i}".encode() for i in range(100)], b"coarse_label_names": [b"x"] * 20}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return root


def _head_boxes(annotations: Path, out: Path) -> Path:
    """Synthetic head boxes (40 x 50 px around each head top): the MPII recipe needs some to build; speed only."""
    tops = np.array([e["joints"][9] for e in json.loads(annotations.read_text())])
    out.write_text(json.dumps({"headboxes_src": np.stack([tops - [20, 10], tops + [20, 40]], 1).tolist()}))
    return out


def task_settings(tmp: Path) -> dict[str, dict]:
    """Per task: the overrides of this benchmark (data, and a CPU-sized batch where the default is a GPU one)."""
    coco, mpii = SHARED / "coco", SHARED / "mpii"
    heads = _head_boxes(mpii / "test_mpii.json", tmp / "heads.json")
    return {
        "landmarks": {"batch_size": 4},
        "coco": {"train_annotations": str(coco / "test_coco.json"), "train_images": str(coco),
                 "val_annotations": str(coco / "test_coco.json"), "val_images": str(coco), "batch_size": 4},
        "mpii": {"train_annotations": str(mpii / "test_mpii.json"), "val_annotations": str(mpii / "test_mpii.json"),
                 "images": str(mpii), "head_boxes": str(heads), "batch_size": 4},
        "cifar": {"data": str(_cifar_folder(tmp)), "batch_size": 16},
        "digits": {},
    }  # fmt: skip


def _step(task, optimizer, batch) -> float:
    t0 = time.perf_counter()
    out = task(batch)
    optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    optimizer.step()
    return time.perf_counter() - t0


def measure(name: str, overrides: dict, steps: int) -> dict:
    from landmark_afl.engine.optim import build_optimizer
    from landmark_afl.recipes import get_recipe
    from landmark_afl.recipes.train import resolve_config

    recipe = get_recipe(name)
    runs = {}
    for afl in (False, True):
        cfg = resolve_config(recipe, {**overrides, "afl.enabled": afl})
        torch.manual_seed(0)
        training = recipe.build(cfg)
        task = training.task.train()
        batches = []
        for batch in training.train_loader:
            batches.append(batch)
            if len(batches) == 2:
                break
        runs[afl] = (task, build_optimizer(cfg.optim, task.optimizer_parameters()), batches, cfg)
    times = {False: [], True: []}
    for i in range(steps + 1):
        for afl in (True, False) if i % 2 else (False, True):
            task, opt, batches, _ = runs[afl]
            t = _step(task, opt, batches[i % len(batches)])
            if i:
                times[afl].append(t)
    cfg = runs[False][3]
    batch = task.batch_size(runs[False][2][0])
    plain, with_afl = statistics.median(times[False]), statistics.median(times[True])
    size = tuple(runs[False][2][0]["image"].shape[-2:])  # the network input (H, W)
    return {
        "task": name, "batch": batch, "input_size": list(size) if size else None, "step_s_plain": plain,
        "step_s_afl": with_afl, "images_per_s_plain": batch / plain, "images_per_s_afl": batch / with_afl,
        "afl_ratio": with_afl / plain,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="landmarks,coco,mpii,cifar,digits")
    p.add_argument("--steps", type=int, default=6, help="timed steps per arm (after one warm-up)")
    p.add_argument("--out", default="bench_tasks.json")
    args = p.parse_args()
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = task_settings(Path(tmp))
        for name in args.tasks.split(","):
            r = measure(name, settings[name], args.steps)
            results.append(r)
            rates = f"{r['images_per_s_plain']:7.1f} img/s plain, {r['images_per_s_afl']:7.1f} img/s AFL"
            print(f"{name:10s} input {r['input_size']} batch {r['batch']:3d}: {rates}, AFL x{r['afl_ratio']:.3f}")
    Path(args.out).write_text(json.dumps({"threads": threads, "steps": args.steps, "results": results}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
