# Run: python scripts/subset_train_split.py isbi isbi30 --train 30
"""A data set folder whose train split is cut to its first N images (sorted names); val and test stay as they were.

The small-data regime of the README's AFL study: a group with 30 annotated images rather than 135. The new folder
links to the source's ``images/`` and ``landmarks.csv`` (no pixels are copied) and gets its own ``dataset.yaml``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from landmark_afl.data.dataset import CSV_NAME, IMAGES_DIR, YAML_NAME, load_dataset


def subset_train_split(source: Path, out: Path, train: int) -> dict[str, int]:
    """Write ``out`` (must not exist) and return the number of images per split."""
    source = source.resolve()
    ds = load_dataset(source)  # refuses a broken source folder with its problems listed
    names = sorted(ds.split("train"))
    if not 0 < train <= len(names):
        raise SystemExit(f"--train {train}: {source} has {len(names)} train images; give 1..{len(names)}")
    if out.exists():
        raise SystemExit(f"{out} exists; give a new folder")
    spec = yaml.safe_load((source / YAML_NAME).read_text())
    # every split written out: a dataset.yaml without splits has the fallback ones, which the cut must keep
    spec["splits"] = {name: list(ds.split(name)) for name in ds.split_names}
    spec["splits"]["train"] = names[:train]
    spec["description"] = f"{spec.get('description', '')}; train split cut to its first {train} images".lstrip("; ")
    out.mkdir(parents=True)
    os.symlink(source / IMAGES_DIR, out / IMAGES_DIR, target_is_directory=True)
    os.symlink(source / CSV_NAME, out / CSV_NAME)
    (out / YAML_NAME).write_text(yaml.safe_dump(spec, sort_keys=False))
    return {k: len(v) for k, v in spec["splits"].items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="a data set folder in the toolkit's layout")
    p.add_argument("out", type=Path, help="the new folder (must not exist)")
    p.add_argument("--train", type=int, required=True, help="how many train images to keep")
    args = p.parse_args()
    counts = subset_train_split(args.source, args.out, args.train)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
