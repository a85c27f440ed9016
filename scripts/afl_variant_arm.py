# Run: python scripts/afl_variant_arm.py --data phantom --protocols all --seeds 0 --epochs 10 --out cmp_centred \
#          input_size=[128,128] sigma=2.0 critic_center=True
"""Train and evaluate one extra AFL arm (an AFL variant given as key=value overrides) with the same seeds and
settings as a `landmark-afl compare` folder, so it can join that comparison with `landmark-afl report`:

    landmark-afl report cmp/evaluations/*-baseline-s* cmp/evaluations/*-afl-s* cmp_centred/evaluations/* \
        --labels ... --out report/

Resumable: a run or evaluation that is already complete is skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from landmark_afl.cli import main as cli
from landmark_afl.engine.checkpoint import load_checkpoint
from landmark_afl.protocols import list_protocols


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="phantom", help="data set folder, or 'phantom'")
    p.add_argument("--protocols", default="all")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    args = p.parse_args()
    protocols = list_protocols() if args.protocols == "all" else args.protocols.split(",")
    out = Path(args.out)
    for protocol in protocols:
        for seed in [int(s) for s in args.seeds.split(",")]:
            name = f"{protocol}-aflvariant-s{seed}"
            run, evaluation = out / "runs" / name, out / "evaluations" / name
            last = run / "checkpoints" / "last.pt"
            if not (last.is_file() and load_checkpoint(last)["epoch"] >= args.epochs):
                cmd = ["train", "--protocol", protocol, "--epochs", str(args.epochs), f"seed={seed}", *args.overrides]
                cmd += ["--data", args.data] if args.data != "phantom" else []
                cmd += ["--resume", str(run)] if last.is_file() else ["--out", str(run), "--force"]
                if cli(cmd) != 0:
                    return 1
            if not (evaluation / "report.json").is_file():
                if cli(["evaluate", str(run), "--split", args.split, "--out", str(evaluation), "--force"]) != 0:
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
