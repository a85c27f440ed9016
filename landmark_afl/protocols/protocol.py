"""Protocol files: locate, parse, validate and apply them.

A protocol file (``protocols/NAME.yaml`` at the repository root, or any path) reads::

    name: high                     # must equal the file name without .yaml
    description: one line shown by `landmark-afl protocols list`
    steps:                         # applied in order; see landmark_afl.protocols.steps.STEPS
      - percentile_window: {lo: 0.5, hi: 99.5}
      - clahe: {clip_limit: 1.6}
      - invert                     # a bare name takes every default

Every step and parameter is checked on load; a mistake raises :class:`ProtocolError` naming the file, the step
and the fix. The folder is ``$LANDMARK_AFL_PROTOCOLS`` when set, else ``protocols/`` next to the package.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from landmark_afl.protocols.steps import STEPS, StepSpec

ENV_VAR = "LANDMARK_AFL_PROTOCOLS"
# The shipped protocols, strongest to weakest contrast; list_protocols() puts them first in this order.
SHIPPED = ("higher", "high", "low", "lower")
_TOP_KEYS = ("name", "description", "steps")


class ProtocolError(ValueError):
    """A protocol file or name is wrong; the message names the file and how to fix it."""


def _did_you_mean(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    if not close and len(word) >= 3:  # an abbreviation such as "clip" for "clip_limit"
        close = [o for o in options if o.startswith(word)][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def protocols_dir() -> Path:
    """The folder of protocol files: ``$LANDMARK_AFL_PROTOCOLS``; else the repository's ``protocols/`` beside the
    package (a source checkout or an editable install); else the copy an installed wheel carries
    (``landmark_afl/protocol_files``, made from ``protocols/`` when the wheel is built)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import landmark_afl

    package = Path(landmark_afl.__file__).resolve().parent
    checkout = package.parent / "protocols"
    if checkout.is_dir() and any(checkout.glob("*.yaml")):
        return checkout
    return package / "protocol_files"


def list_protocols() -> list[str]:
    """Names of the protocols in :func:`protocols_dir`: the shipped four strongest -> weakest, then the rest sorted."""
    folder = protocols_dir()
    if not folder.is_dir():
        return []
    names = {p.stem for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()}
    return [n for n in SHIPPED if n in names] + sorted(names - set(SHIPPED))


@dataclass(frozen=True)
class Step:
    """One resolved step of a protocol: its name and every parameter (defaults filled in)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> StepSpec:
        return STEPS[self.name]


@dataclass(frozen=True)
class Protocol:
    """A validated contrast protocol; calling it maps a raw image to float32 [0, 1].

    Example:
        >>> import numpy as np
        >>> p = Protocol.from_dict({"name": "demo", "steps": [{"percentile_window": {"lo": 1, "hi": 99}}, "invert"]})
        >>> out = p(np.arange(100, dtype=np.float32).reshape(10, 10) * 40.0)
        >>> out.dtype, float(out.min()), float(out.max())
        (dtype('float32'), 0.0, 1.0)
    """

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    source: str = "<dict>"

    def __call__(self, image: np.ndarray, meta: Mapping[str, Any] | None = None) -> np.ndarray:
        """Apply the steps in order to ``image`` [H, W] (any value range); returns a new float32 [H, W] in [0, 1].

        Args:
            image: the float image from :func:`landmark_afl.io.read_image` (not modified).
            meta: its meta dict; ``voi_window`` is read from it by the ``voi_window`` step.
        """
        arr = np.asarray(image)
        if arr.ndim != 2:
            raise ValueError(f"protocol {self.name!r} takes a 2-D grey image [H, W]; got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"protocol {self.name!r}: the image is empty (shape {arr.shape})")
        x = np.array(arr, dtype=np.float32, order="C", copy=True)
        if not np.isfinite(x.sum(dtype=np.float64)):
            raise ValueError(f"protocol {self.name!r}: the image holds NaN or infinite values; fix the reader first")
        meta = meta or {}
        for step in self.steps:
            x = step.spec.func(x, meta, **step.params)
        x = np.asarray(x, dtype=np.float32)
        return np.clip(x, 0.0, 1.0, out=x)

    def to_dict(self) -> dict[str, Any]:
        """The resolved protocol as plain data (every parameter explicit), e.g. for a run's saved config."""
        return {
            "name": self.name,
            "description": self.description,
            "steps": [{s.name: dict(s.params)} for s in self.steps],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Protocol:
        """Validate parsed protocol data; ``source`` (a file path) is named in every error."""
        if not isinstance(data, Mapping):
            raise ProtocolError(f"{source}: a protocol must be a mapping with keys {', '.join(_TOP_KEYS)}")
        for key in data:
            if key not in _TOP_KEYS:
                raise ProtocolError(
                    f"{source}: unknown key {key!r} (valid: {', '.join(_TOP_KEYS)}){_did_you_mean(str(key), _TOP_KEYS)}"
                )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ProtocolError(f"{source}: 'name' must be a non-empty string")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise ProtocolError(f"{source}: 'description' must be a string, got {type(description).__name__}")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise ProtocolError(
                f"{source}: 'steps' must be a non-empty list, e.g. `steps: [{{percentile_window: {{lo: 1, hi: 99}}}}]`"
            )
        steps = tuple(_parse_step(entry, i + 1, source) for i, entry in enumerate(raw_steps))
        _check_order(steps, source)
        return cls(name=name, steps=steps, description=description.strip(), source=source)


def _parse_step(entry: Any, index: int, source: str) -> Step:
    where = f"{source}: step {index}"
    if isinstance(entry, str):
        step_name, raw_params = entry, {}
    elif isinstance(entry, Mapping) and len(entry) == 1:
        step_name, raw_params = next(iter(entry.items()))
        raw_params = {} if raw_params is None else raw_params
    else:
        raise ProtocolError(f"{where}: write a step as `- name` or `- name: {{param: value}}`, got {entry!r}")
    if step_name not in STEPS:
        raise ProtocolError(
            f"{where}: unknown step {step_name!r} (valid: {', '.join(STEPS)})"
            + _did_you_mean(str(step_name), tuple(STEPS))
        )
    spec = STEPS[step_name]
    where = f"{source}: step {index} ({step_name})"
    if not isinstance(raw_params, Mapping):
        raise ProtocolError(
            f"{where}: parameters must be a mapping like `{step_name}: {{param: value}}`, got {raw_params!r}"
        )
    params: dict[str, Any] = {}
    for key, value in raw_params.items():
        if key not in spec.params:
            valid = ", ".join(spec.params) if spec.params else "none"
            raise ProtocolError(
                f"{where}: unknown parameter {key!r} (valid: {valid}){_did_you_mean(str(key), tuple(spec.params))}"
            )
        params[key] = _check_value(spec.params[key], key, value, where)
    for key, param in spec.params.items():
        params.setdefault(key, param.default)
    if spec.check is not None:
        problem = spec.check(params)
        if problem:
            raise ProtocolError(f"{where}: {problem}")
    return Step(step_name, params)


def _check_value(param: Any, key: str, value: Any, where: str) -> Any:
    expected = param.describe_range()
    bad = f"{where}: {key} = {value!r} is not valid; expected {expected}"
    if param.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(bad)
        value = float(value)
    elif param.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(bad)
    elif param.kind is str:
        if not isinstance(value, str) or (param.choices and value not in param.choices):
            raise ProtocolError(bad + _did_you_mean(str(value), param.choices or ()))
    if param.lo is not None and not (param.lo <= value <= param.hi):
        raise ProtocolError(bad)
    return value


def _check_order(steps: tuple[Step, ...], source: str) -> None:
    window_steps = [name for name, spec in STEPS.items() if spec.maps_to_unit]
    mapped = False
    for i, step in enumerate(steps, start=1):
        if step.spec.needs_unit and not mapped:
            raise ProtocolError(
                f"{source}: step {i} ({step.name}) works on [0, 1] values; put a window step before it "
                f"(one of {', '.join(window_steps)})"
            )
        mapped = mapped or step.spec.maps_to_unit
    if not mapped:
        raise ProtocolError(
            f"{source}: no step maps the image to [0, 1]; add one of {', '.join(window_steps)} "
            "(raw 12/16-bit values would otherwise be clipped to 0/1)"
        )


def _read_file(path: Path) -> Protocol:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ProtocolError(f"{path}: cannot read the protocol file ({err.strerror or err})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ProtocolError(f"{path}: not valid YAML{at}: {getattr(err, 'problem', err)}") from err
    protocol = Protocol.from_dict(data, source=str(path))
    if protocol.name != path.stem:
        raise ProtocolError(
            f"{path}: name {protocol.name!r} differs from the file name; set `name: {path.stem}` or rename the file "
            f"to {protocol.name}.yaml"
        )
    return protocol


def load_protocol(name_or_path: str | os.PathLike[str] | Protocol) -> Protocol:
    """A protocol by name (a file in :func:`protocols_dir`) or by path to a ``.yaml`` file.

    Raises:
        ProtocolError: unknown name (the message lists the available ones), unreadable or invalid file.
    """
    if isinstance(name_or_path, Protocol):
        return name_or_path
    text = os.fspath(name_or_path)
    looks_like_path = text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ProtocolError(f"{path}: protocol file not found")
        return _read_file(path)
    folder = protocols_dir()
    for suffix in (".yaml", ".yml"):
        candidate = folder / f"{text}{suffix}"
        if candidate.is_file():
            return _read_file(candidate)
    available = list_protocols()
    if not folder.is_dir():
        raise ProtocolError(
            f"unknown protocol {text!r}: the protocols folder {folder} does not exist; set {ENV_VAR} to a folder of "
            "protocol .yaml files or pass a path to one"
        )
    raise ProtocolError(
        f"unknown protocol {text!r} (available in {folder}: {', '.join(available) or 'none'})"
        f"{_did_you_mean(text, available)}; or pass a path to a .yaml file"
    )
