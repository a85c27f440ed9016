"""Nested run configurations: frozen dataclasses with defaults in code, a YAML file, then ``key=value`` overrides.

A recipe's config is a frozen dataclass whose fields are plain values (int, float, str, bool, ``str | None``,
tuples of numbers) or nested frozen dataclasses (``optim``, ``afl``, ``augment``...). Keys are dotted paths:
``optim.lr=3e-4``, ``afl.critic_center=True``; a YAML file may nest them or write them dotted. Precedence: defaults
< ``--config file.yaml`` < ``key=value`` on the command line. Values are parsed with ``ast.literal_eval`` (never
``eval``), checked against the type of the default, and unknown keys are rejected with a "did you mean".

Every field is documented in its dataclass's Google-style ``Attributes:`` section; ``config_docs`` reads them for
``landmark-afl train --task NAME --show-config``. This module knows no recipe, task or data set.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import re
import typing
import warnings
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names it and the valid choices."""


def config_to_dict(cfg) -> dict:
    """Nested plain dict (lists for tuples) for YAML and checkpoints."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            value = config_to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def flat_keys(cfg) -> dict[str, object]:
    """``{"optim.lr": 0.001, ...}``: every leaf key of ``cfg`` (an instance or a class) with its value."""
    cfg = cfg() if isinstance(cfg, type) else cfg
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{k}": v for k, v in flat_keys(value).items()})
        else:
            out[f.name] = value
    return out


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["optim.lr=1e-3", "afl.enabled=False"]`` -> {"optim.lr": "1e-3", ...} (values parsed later, by type)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"expected key=value, got {item!r} (e.g. optim.lr=3e-4 or input_size=[320,256])")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def missing_saved_keys(stored: dict, saved_before: dict, aliases: dict[str, str] | None = None) -> dict:
    """The ``saved_before`` values (dotted key -> value) of the keys that ``stored``, a saved config, lacks: a key
    added after a run was saved gets the value that run used, not today's default."""
    present = set(flatten_values(stored))
    present |= {(aliases or {}).get(k, k) for k in present}
    return {k: v for k, v in saved_before.items() if k not in present}


def flatten_values(values: dict, prefix: str = "") -> dict:
    """``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": 0.1}`` (dotted keys pass through)."""
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_values(value, f"{name}."))
        else:
            out[name] = value
    return out


def _coerce(name: str, value, default, annotation):
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass  # a bare word: keep the string
    if value == "None":
        value = None
    allow_none = "None" in str(annotation)
    if value is None:
        if allow_none:
            return None
        raise ConfigError(f"{name} cannot be None (default {default!r})")
    kind = type(default) if default is not None else str
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list like {list(default) or [60, 120]}, got {value!r}")
        fixed = "..." not in str(annotation)
        if fixed and len(value) != len(default):
            raise ConfigError(f"{name} must be a list of {len(default)} values like {list(default)}, got {value!r}")
        kinds = [type(d) for d in default] if fixed else [type(default[0]) if default else int] * len(value)
        try:
            return tuple(kind_(v) for kind_, v in zip(kinds, value, strict=True))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{name} must be a list of numbers like {list(default)}, got {value!r}") from err
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be True or False, got {value!r}")
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{name} must be {kind.__name__} (default {default!r}), got {value!r}")
    return value


def _set(cfg, path: list[str], value, full: str, source: str):
    known = {f.name for f in dataclasses.fields(cfg)}
    head = path[0]
    if head not in known:
        raise KeyError(head)
    current = getattr(cfg, head)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise KeyError(full)
        return dataclasses.replace(cfg, **{head: _set(current, path[1:], value, full, source)})
    if dataclasses.is_dataclass(current):
        if not isinstance(value, dict):
            raise ConfigError(f"{full} is a section ({source}); set its keys, e.g. {full}.{next(iter(known))}=...")
        out = current
        for key, v in flatten_values(value).items():
            out = _set(out, key.split("."), v, f"{full}.{key}", source)
        return dataclasses.replace(cfg, **{head: out})
    hints = typing.get_type_hints(type(cfg))
    return dataclasses.replace(cfg, **{head: _coerce(full, value, current, hints[head])})


def update_config(cfg, values: dict, source: str = "command line", aliases: dict[str, str] | None = None):
    """A copy of ``cfg`` with ``values`` (dotted keys and/or nested dicts) applied.

    Args:
        cfg: a frozen config dataclass instance.
        values: ``{"optim.lr": "3e-4"}`` or ``{"optim": {"lr": 3e-4}}``; strings are parsed by type.
        source: where the values come from, for messages.
        aliases: old key -> new dotted key (kept for one release; a FutureWarning names each old key used).

    Raises:
        ConfigError: an unknown key (with the close ones), a wrong type or a section given a plain value.
    """
    aliases = aliases or {}
    valid = flat_keys(cfg)
    renamed = []
    for key, value in flatten_values(values).items():
        if key not in valid and key in aliases:
            renamed.append(f"{key} -> {aliases[key]}")
            key = aliases[key]
        try:
            cfg = _set(cfg, key.split("."), value, key, source)
        except KeyError:
            close = difflib.get_close_matches(key, [*valid, *aliases], n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"unknown config key {key!r} ({source}).{hint} `landmark-afl train --task NAME --show-config` lists "
                "every key"
            ) from None
    if renamed:
        warnings.warn(
            f"old config keys in {source}: {', '.join(renamed)}; they work in this release only, use the new names",
            FutureWarning,
            stacklevel=2,
        )
    return cfg


def load_config_file(path: str | Path, base, aliases: dict[str, str] | None = None):
    """Apply a YAML file of ``key: value`` pairs (nested or dotted) on top of ``base``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value, got {type(values).__name__}")
    return update_config(base, values, source=str(path), aliases=aliases)


def field_docs(cls) -> dict[str, str]:
    """The one-line docs of a dataclass's fields, from its docstring's ``Attributes:`` section.

    A line ``a, b: doc`` documents both ``a`` and ``b``; continuation lines are joined.
    """
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^Attributes:\n((?:[ \t]+.*\n?|\n)*)", doc, re.MULTILINE)
    if not match:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    for line in match.group(1).splitlines():
        entry = re.match(r"^ {4}([\w, ]+):\s*(.*)$", line)
        if entry:
            names = [n.strip() for n in entry.group(1).split(",")]
            for n in names:
                out[n] = entry.group(2).strip()
        elif line.startswith(" " * 8) and names:
            for n in names:
                out[n] = f"{out[n]} {line.strip()}"
    return out


def config_docs(cfg) -> list[tuple[str, object, str]]:
    """``(dotted key, default, doc)`` for every leaf key of ``cfg`` (an instance or a class), in field order."""
    cfg = cfg() if isinstance(cfg, type) else cfg
    docs = field_docs(type(cfg))
    rows = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            rows += [(f"{f.name}.{k}", v, d) for k, v, d in config_docs(value)]
        else:
            rows.append((f.name, value, docs.get(f.name, "")))
    return rows


def format_config_docs(cfg) -> str:
    """The ``--show-config`` text: ``key = default`` and its doc on the next line, one block per key."""
    lines = []
    for key, default, doc in config_docs(cfg):
        lines.append(f"{key} = {list(default) if isinstance(default, tuple) else default!r}")
        lines.append(f"    {doc}" if doc else "    (undocumented)")
    return "\n".join(lines)
