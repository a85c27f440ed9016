"""The ``landmark-afl`` console script: one sub-command module per job.

Each module in ``COMMAND_MODULES`` exposes ``add_parser(subparsers)`` (registers its sub-command(s) and sets
``func`` on the parser defaults) and keeps its heavy imports inside the functions, so ``landmark-afl --help`` is fast.
Exit codes: 0 success, 2 usage error (a wrong value, path, permission or a full disk: one paragraph, no traceback),
3 partial failure (some inputs failed), 1 an internal error (the traceback, and how to report it), 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import shlex
import sys

COMMAND_MODULES = (
    "landmark_afl.cli.train",
    "landmark_afl.cli.evaluate",
    "landmark_afl.cli.compare",
    "landmark_afl.cli.predict",
    "landmark_afl.cli.protocols",
    "landmark_afl.cli.data",
)
# the commands that run a model batch after batch: they keep freed memory for the next batch (engine.memory)
MODEL_COMMANDS = frozenset({"train", "evaluate", "compare", "predict"})


class UsageError(ValueError):
    """A command-line argument is wrong; the message says how to fix it (exit code 2)."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of a description or epilog (a list, a table of outputs or exit codes) and wraps each
    line wider than the terminal, continuing under the line's text: ``"  name    text"`` stays a two-column row.

    Example:
        >>> f = HelpFormatter("prog", width=32)
        >>> print(f._fill_text("  errors.csv   path, error_type and message of every file", 32, ""))
          errors.csv   path, error_type
                       and message of
                       every file
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import re
        import textwrap

        out = []
        for line in text.splitlines():
            if len(indent) + len(line) <= width or not line.strip():
                out.append(indent + line)
                continue
            lead = len(line) - len(line.lstrip())
            column = re.match(r"\s*\S.*?\s{2,}(?=\S)", line)  # a second column after two or more spaces
            hang = column.end() if column else lead
            out += textwrap.wrap(
                line[lead:], width, initial_indent=indent + " " * lead, subsequent_indent=indent + " " * hang,
                break_long_words=False, break_on_hyphens=False,
            )  # fmt: skip
        return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landmark-afl",
        description="Anatomical landmark detection on X-rays with Adversarial Focal Loss.",
    )
    from landmark_afl import __version__

    parser.add_argument("--version", action="version", version=f"landmark-afl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides go anywhere (`train --data D lr=1e-3 --epochs 5 seed=1`): argparse ends a positional list at
    # the next option, and parse_intermixed_args refuses sub-commands, so the later ones come back as extras and are
    # appended in order (a later value of a key wins, as when they all come last)
    if extra:
        if not hasattr(args, "overrides") or any(x.startswith("-") or "=" not in x for x in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*(args.overrides or []), *extra]
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args.command_line = shlex.join(["landmark-afl", *(sys.argv[1:] if argv is None else argv)])  # for run logs
    if args.command == "predict":  # before torch starts its thread pool: idle threads sleep, readers get the cycles
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.command in MODEL_COMMANDS:  # the next batch reuses the memory of the last (fp32 forward 1.3x faster)
        from landmark_afl.engine.memory import retain_freed_memory

        retain_freed_memory()
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"landmark-afl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # the file system refused: permissions, a full disk, a file where a folder must be
        print(f"landmark-afl {args.command}: error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - anything else is a bug: show it, and say what to do with it
        import traceback

        traceback.print_exc()
        print(
            f"landmark-afl {args.command}: internal error (the traceback above). This is a bug in landmark-afl "
            f"{_version()}: please report it with the command line you ran, the traceback and `pip list` output.",
            file=sys.stderr,
        )
        return 1


_OS_FIXES = {
    errno.EACCES: "check the permissions, or choose a folder you can write to",
    errno.EPERM: "check the permissions, or choose a folder you can write to",
    errno.EROFS: "the file system is read-only: write the outputs to another folder",
    errno.ENOSPC: "the disk is full: free some space or write elsewhere, then run the same command again (finished "
    "work is kept and the job resumes)",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere, then run the same command again",
    errno.EEXIST: "a file is in the way where a folder is needed: remove it or choose another path",
    errno.ENOTDIR: "a file is in the way where a folder is needed: remove it or choose another path",
    errno.EISDIR: "that is a folder; give a file",
    errno.ENOENT: "check the path",
}


def describe_os_error(err: OSError) -> str:
    """One paragraph for a file-system error: the file, what the system said, and the fix."""
    where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None) or "a file operation"
    reason = err.strerror or str(err)
    fix = _OS_FIXES.get(err.errno, "check the path and the permissions")
    return f"{where}: {reason}; {fix}"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("landmark-afl")
    except PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    sys.exit(main())
