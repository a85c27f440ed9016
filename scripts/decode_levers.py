# Run: python scripts/decode_levers.py RUN [RUN ...] --split val --out decode_levers.json
"""Sub-pixel decoding methods compared on the same heatmaps: what chose ``decode: soft-argmax`` and its window.

For each run (best checkpoint unless ``--which last``) the network runs once over ``--split`` (never the test split
when choosing) under its trained protocol; the saved heatmaps are then decoded by each method and scored over
every present landmark (the ISBI rule: MRE and SDR 2 mm in mm, px where no spacing is known):

- ``argmax``: the grid pixel only;
- ``parabola``: the log-parabola through the argmax and its two neighbours per axis (``decode: parabola``);
- ``soft-argmax rR pP``: the centroid of ``max(map, 0) ** P`` within R heatmap pixels of the argmax (the parabola
  along an axis where the border cuts that window); ``decode: soft-argmax`` is R = 3 sigma, P = 3 (the row marked
  ``*``);
- ``DARK bS``: Zhang et al. (CVPR 2020): the map blurred by a Gaussian of S target sigmas, its log's Taylor step
  ``-H^-1 g`` at the argmax (clamped to one pixel).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from landmark_afl.codecs.gaussian_heatmap import SOFT_ARGMAX_POWER, SOFT_ARGMAX_RADIUS, _argmax_2d, _soft_argmax


def run_heatmaps(run_dir: str, which: str, split: str) -> dict:
    """The heatmaps [N, K, H, W] of a run over a split, with what maps them back to millimetres."""
    from landmark_afl.data.dataset import load_dataset
    from landmark_afl.data.training import prepare_image
    from landmark_afl.engine.optim import autocast_dtype
    from landmark_afl.recipes.landmarks import load_trained_run

    run = load_trained_run(run_dir, which)
    dataset = load_dataset(run.state["data_dir"])
    protocol = run.trained_protocol()
    dtype = autocast_dtype(run.config.optim.amp, torch.device("cpu"))
    maps, gt, scale, spacing, valid = [], [], [], [], []
    for key in dataset.split(split):
        prep = prepare_image(dataset.image_path(key), protocol, run.codec.input_size, dataset.spacing_mm,
                             run.config.jpeg_scaling)  # fmt: skip
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            maps.append(run.task.heatmaps(torch.from_numpy(prep.image)[None, None]).float())
        gt.append(dataset.coords(key))
        scale.append(prep.scale)
        spacing.append(prep.spacing if prep.spacing_source != "none" else np.ones(2))
        valid.append(prep.valid)
    return {
        "maps": torch.cat(maps),
        "gt": np.stack(gt),
        "scale": np.stack(scale)[:, None, :],
        "spacing": np.stack(spacing)[:, None, :],
        "valid": torch.tensor(valid),
        "sigma": run.codec.sigma,
        "stride": run.codec.stride,
    }


def _dark(maps: torch.Tensor, row: torch.Tensor, col: torch.Tensor, blur: float) -> torch.Tensor:
    b, k, h, w = maps.shape
    radius = max(1, math.ceil(3 * blur))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * blur**2))
    g = g / g.sum()
    x = maps.reshape(b * k, 1, h, w)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), g.view(1, 1, -1, 1)).reshape(b, k, h, w)
    x = x * maps.amax((-1, -2), keepdim=True) / x.amax((-1, -2), keepdim=True).clamp_min(1e-12)
    log = torch.log(x.clamp_min(1e-10))
    r, c = row.clamp(1, h - 2), col.clamp(1, w - 2)
    bi, ki = torch.arange(b)[:, None], torch.arange(k)[None, :]

    def at(dy: int, dx: int) -> torch.Tensor:
        return log[bi, ki, r + dy, c + dx]

    gx, gy = 0.5 * (at(0, 1) - at(0, -1)), 0.5 * (at(1, 0) - at(-1, 0))
    hxx = at(0, 1) - 2 * at(0, 0) + at(0, -1)
    hyy = at(1, 0) - 2 * at(0, 0) + at(-1, 0)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = hxx * hyy - hxy**2
    ok = (det > 1e-12) & (hxx < 0) & (r == row) & (c == col)
    safe = torch.where(ok, det, torch.ones_like(det))
    ox = torch.where(ok, (-(hyy * gx - hxy * gy) / safe).clamp(-1, 1), torch.zeros_like(det))
    oy = torch.where(ok, (-(hxx * gy - hxy * gx) / safe).clamp(-1, 1), torch.zeros_like(det))
    return torch.stack([col.float() + ox, row.float() + oy], -1)


def compare(h: dict) -> dict[str, dict]:
    """MRE and SDR 2 mm over every present landmark for each method (heatmap pixels -> original mm)."""
    maps, sigma = h["maps"].clone(), h["sigma"]
    b, k, rows, cols = maps.shape
    limit = torch.ceil(h["valid"].float() / h["stride"] - 1e-6).long()
    vr, vc = limit[:, :1], limit[:, 1:]
    for i, (r, c) in enumerate(limit.tolist()):  # the letterbox padding holds no landmark: as decode does
        maps[i, :, r:] = 0
        maps[i, :, :, c:] = 0
    _, row, col = _argmax_2d(maps)
    flat = maps.reshape(b, k, rows * cols)
    methods: dict[str, torch.Tensor] = {"argmax": torch.stack([col.float(), row.float()], -1)}
    from landmark_afl.codecs import GaussianHeatmapCodec

    codec = GaussianHeatmapCodec((rows * h["stride"], cols * h["stride"]), sigma, h["stride"])
    uv, _ = codec.decode(maps, h["valid"])
    methods["parabola"] = (uv + 0.5) / h["stride"] - 0.5
    chosen = max(1, round(SOFT_ARGMAX_RADIUS * sigma))
    for radius in sorted({5, 8, chosen, 12, 16}):
        for power in (1, 2, 3):
            star = " *" if (radius, power) == (chosen, SOFT_ARGMAX_POWER) else ""
            soft, fits = _soft_argmax(flat, cols, row, col, vr, vc, radius, power)
            methods[f"soft-argmax r{radius} p{power}{star}"] = torch.where(fits, soft, methods["parabola"])
    for blur in (0.5, 1.0, 2.0):
        methods[f"DARK b{blur:g}"] = _dark(maps, row, col, blur * sigma)
    out = {}
    for name, uv in methods.items():
        xy = (uv.numpy().astype(np.float64) + 0.5) * h["stride"] - 0.5  # input pixels
        pred = (xy + 0.5) / h["scale"] - 0.5  # original pixels
        err = np.sqrt((((pred - h["gt"]) * h["spacing"]) ** 2).sum(-1))
        err = err[np.isfinite(err)]
        out[name] = {"mre": float(err.mean()), "sdr2": float((err <= 2).mean() * 100), "n": int(err.size)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--split", default="val", help="split to compare on (default: val; choose settings there)")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--out", type=Path, help="JSON file of every figure")
    args = p.parse_args()
    results = {}
    for run in args.runs:
        results[run] = compare(run_heatmaps(run, args.which, args.split))
    names = list(next(iter(results.values())))
    print(f"MRE over every present landmark (mm; px without spacing), split {args.split}, {args.which} checkpoint")
    print(f"{'method':26s}" + "".join(f"{Path(r).name[:14]:>16s}" for r in results))
    for name in names:
        print(f"{name:26s}" + "".join(f"{results[r][name]['mre']:16.3f}" for r in results))
    if args.out:
        args.out.write_text(json.dumps({"split": args.split, "which": args.which, "runs": results}, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
