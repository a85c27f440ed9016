"""The command line's help: every argument documented, --help readable at 80 columns, the README's commands real."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from landmark_afl.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) of the top-level parser and every sub-command, depth first."""
    yield path, parser
    sub = _subparsers(parser)
    if sub is not None:
        for name, child in sub.choices.items():
            yield from _walk(child, (*path, name))


def test_every_argument_and_every_sub_command_has_help():
    missing = []
    for path, parser in _walk(build_parser()):
        where = " ".join(("landmark-afl", *path))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                documented = {choice.dest: choice.help for choice in action._choices_actions}
                missing += [f"{where} {name}" for name in action.choices if not (documented.get(name) or "").strip()]
            elif not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"arguments without help: {missing}"


def test_no_help_line_is_wider_than_100_columns_at_80(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    wide = []
    for path, parser in _walk(build_parser()):
        for line in parser.format_help().splitlines():
            if len(line) > 100:
                wide.append(f"landmark-afl {' '.join(path)}: {len(line)} columns: {line}")
    assert not wide, "\n".join(wide)


def test_version_and_top_level_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and re.match(r"landmark-afl \S+", capsys.readouterr().out)


def _readme_commands() -> list[str]:
    """The command cells of the README's command table (``| `landmark-afl ...` | ... |``), ``\\|`` unescaped."""
    cells = re.findall(r"^\| `(landmark-afl [^`]+)` \|", README.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(cells) >= 8, f"the README's command table was not found in {README}"
    return [cell.replace("\\|", "|") for cell in cells]


def _resolve(parser, path: tuple[str, ...], text: str, top: bool = False):
    """(sub-command path, its parser, the text of its arguments) for each sub-command a README cell names.

    ``list | show NAME`` names two actions of one command; ``isbi2015|hand-atlas SRC DST`` two formats."""
    sub = _subparsers(parser)
    if sub is None:
        return [(path, parser, text)]
    out = []
    for alternative in [text] if top else text.split(" | "):
        words = alternative.split()
        if not words or words[0].startswith(("-", "[")):
            continue
        for name in words[0].split("|"):
            assert name in sub.choices, f"the README names `{' '.join(('landmark-afl', *path, name))}`: no such command"
            out += _resolve(sub.choices[name], (*path, name), " ".join(words[1:]))
    return out


COMMANDS = [entry for cell in _readme_commands() for entry in _resolve(build_parser(), (), cell.split(" ", 1)[1], True)]


@pytest.mark.parametrize(("path", "parser", "text"), COMMANDS, ids=[" ".join(p) for p, _, _ in COMMANDS])
def test_readme_command_runs_its_help_and_names_real_options(path, parser, text, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: landmark-afl {' '.join(path)}")
    known = {option for action in parser._actions for option in action.option_strings}
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    assert named <= known, f"README `landmark-afl {' '.join(path)}` names unknown options {sorted(named - known)}"
    required = [a.option_strings[0] for a in parser._actions if a.required and a.option_strings]
    omitted = [option for option in required if option not in named]
    assert not omitted, f"README `landmark-afl {' '.join(path)}` omits the required {omitted}"


def test_readme_commands_cover_every_sub_command():
    listed = {path[0] for path, _, _ in COMMANDS}
    assert listed == set(_subparsers(build_parser()).choices), "a sub-command is missing from the README's table"


def _readme_code_commands() -> list[str]:
    """The ``landmark-afl ...`` command lines of the README's code blocks (continuations joined, comments cut)."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split(" #")[0].split("&&"):
                if part.strip().startswith("landmark-afl "):
                    commands.append(part.strip())
    return commands


@pytest.mark.parametrize("command", _readme_code_commands())
def test_readme_code_block_commands_parse(command, capsys):
    import shlex

    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(shlex.split(command)[1:])
    except SystemExit:
        pytest.fail(f"README: `{command}` does not parse: {capsys.readouterr().err.strip()}")
    assert not extra or (hasattr(args, "overrides") and all("=" in x and not x.startswith("-") for x in extra)), (
        f"README: `{command}`: unrecognized {extra}"
    )
