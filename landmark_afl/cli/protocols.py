"""``landmark-afl protocols list | show NAME | preview IMAGE --out grid.png``: the contrast protocols."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from landmark_afl.cli import UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "protocols",
        help="list, show and preview the contrast protocols",
        description="Contrast protocols: protocols/*.yaml (or $LANDMARK_AFL_PROTOCOLS); add one by adding a file.",
    )
    sub = parser.add_subparsers(dest="protocols_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _no_action(parser))

    p_list = sub.add_parser("list", help="one line per protocol: name and description")
    p_list.set_defaults(func=cmd_list)

    p_show = sub.add_parser("show", help="the resolved steps of a protocol with every parameter")
    p_show.add_argument("name", help="protocol name (see `protocols list`) or path to a .yaml file")
    p_show.set_defaults(func=cmd_show)

    p_prev = sub.add_parser("preview", help="the protocols side by side on one image, with contrast measures")
    p_prev.add_argument("image", help="any image read_image reads (DICOM, PNG, JPEG, BMP, TIFF, MHA, NRRD, NIfTI)")
    p_prev.add_argument("--out", required=True, help="PNG file to write")
    p_prev.add_argument("--protocols", default="", help="comma-separated names or paths (default: all, in order)")
    p_prev.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p_prev.set_defaults(func=cmd_preview)


def _no_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _load(name: str):
    from landmark_afl.protocols import ProtocolError, load_protocol

    try:
        return load_protocol(name)
    except ProtocolError as err:
        raise UsageError(str(err)) from err


def cmd_list(args: argparse.Namespace) -> int:
    from landmark_afl.protocols import list_protocols, protocols_dir

    names = list_protocols()
    if not names:
        raise UsageError(f"no protocol files in {protocols_dir()} (set LANDMARK_AFL_PROTOCOLS to a folder of .yaml)")
    width = max(len(n) for n in names)
    for name in names:
        protocol = _load(name)
        print(f"{name:<{width}}  {protocol.description}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    protocol = _load(args.name)
    print(f"name: {protocol.name}")
    print(f"file: {protocol.source}")
    print(f"description: {protocol.description}")
    print("steps:")
    for i, step in enumerate(protocol.steps, start=1):
        params = ", ".join(f"{k}: {v!r}" for k, v in step.params.items())
        print(f"  {i}. {step.name}" + (f" {{{params}}}" if params else ""))
        print(f"     {step.spec.doc}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from landmark_afl.io import ImageReadError, read_image
    from landmark_afl.protocols import list_protocols
    from landmark_afl.protocols.preview import apply_protocols, save_preview

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: the preview is a PNG; give a file name ending in .png")
    if out.exists() and not args.force:
        raise UsageError(f"{out} already exists; pass --force to overwrite it or choose another --out")
    if not out.parent.exists():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist; create it first")
    names = [n.strip() for n in args.protocols.split(",") if n.strip()] or list_protocols()
    if not names:
        raise UsageError("no protocols to preview: pass --protocols or add .yaml files to the protocols folder")
    protocols = [_load(n) for n in names]
    image_path = Path(args.image)
    if not image_path.exists():
        raise UsageError(f"{image_path}: no such file")
    try:
        image, meta = read_image(image_path)
    except ImageReadError as err:
        print(f"landmark-afl protocols preview: error: {err}", file=sys.stderr)
        return 1
    rows = apply_protocols(image, meta, protocols)
    h, w = image.shape
    window = meta.get("voi_window")
    title = (
        f"{image_path.name}   {w} x {h}   {meta.get('format')}"
        + (f"   {meta.get('photometric')}" if meta.get("format") == "dicom" and meta.get("photometric") else "")
        + (f"   VOI window c={window[0]:g} w={window[1]:g}" if window else "   no VOI window")
    )
    save_preview(rows, out, title=title)
    print(f"{'protocol':<10} {'global std':>10} {'local std':>10} {'ms':>7}")
    for r in rows:
        print(f"{r['name']:<10} {r['global_std']:>10.4f} {r['local_std']:>10.4f} {r['ms']:>7.1f}")
    print(f"wrote {out}")
    return 0
