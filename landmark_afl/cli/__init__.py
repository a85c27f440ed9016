"""The ``landmark-afl`` console script: one sub-command module per job.

Each module in ``COMMAND_MODULES`` exposes ``add_parser(subparsers)`` (registers its sub-command(s) and sets
``func`` on the parser defaults) and keeps its heavy imports inside the functions, so ``landmark-afl --help`` is fast.
Exit codes: 0 success, 2 usage error, 3 partial failure (some inputs failed), 1 any other error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "landmark_afl.cli.train",
    "landmark_afl.cli.evaluate",
    "landmark_afl.cli.compare",
    "landmark_afl.cli.predict",
    "landmark_afl.cli.protocols",
    "landmark_afl.cli.data",
)


class UsageError(ValueError):
    """A command-line argument is wrong; the message says how to fix it (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landmark-afl",
        description="Anatomical landmark detection on X-rays with Adversarial Focal Loss.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides after an option (argparse stops a positional list at the first option)
        if not hasattr(args, "overrides") or any(x.startswith("-") or "=" not in x for x in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*(args.overrides or []), *extra]
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"landmark-afl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
