"""Training configuration: a frozen dataclass with defaults in code, a YAML file, then ``key=value`` overrides.

Precedence: defaults < ``--config file.yaml`` < ``key=value`` on the command line (and the dedicated flags such as
``--epochs``). Values are parsed with ``ast.literal_eval`` (never ``eval``), checked against the type of the default,
and unknown keys are rejected with a "did you mean".
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import typing
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from landmark_afl.afl.loss import AFLConfig
from landmark_afl.data.augment import AugmentConfig
from landmark_afl.engine.trainer import OptimConfig

_AFL = AFLConfig()
_AUG = AugmentConfig()
_OPTIM = OptimConfig(epochs=10)


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names it and the valid choices."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a landmark training run depends on (saved as config.yaml and in every checkpoint).

    The defaults train the README's phantom run in about six minutes on 2 CPU cores (~34 s per epoch).
    """

    # data
    protocol: str = "high"
    data: str | None = None  # None: the embedded phantom, generated once into the cache folder
    train_split: str = "train"
    val_split: str = "val"
    input_size: tuple[int, int] = (256, 256)  # (H, W); multiples of 32
    # model and loss
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    loss: str = "wmse"  # foreground-weighted MSE: see losses/heatmap.py
    sigma: float = 3.0  # target Gaussian, heatmap pixels
    detect_threshold: float = 0.5  # peak response that counts as detected (target peak = 1)
    # AFL
    afl: bool = True
    afl_threshold: float = _AFL.threshold  # the AFL settings are documented in landmark_afl/afl/loss.py
    critic_lr: float = _AFL.critic_lr
    critic_beta1: float = _AFL.critic_beta1
    critic_beta2: float = _AFL.critic_beta2
    gp_lambda: float = _AFL.gp_lambda
    critic_steps: int = _AFL.critic_steps
    critic_drift: float = _AFL.critic_drift
    critic_center: bool = _AFL.critic_center
    # optimisation
    epochs: int = _OPTIM.epochs
    batch_size: int = 4
    lr: float = _OPTIM.lr
    weight_decay: float = _OPTIM.weight_decay
    schedule: str = _OPTIM.schedule  # "cosine" (with linear warm-up) or "step"
    warmup_epochs: float = _OPTIM.warmup_epochs
    step_epochs: int = _OPTIM.step_epochs  # "step": multiply the lr by step_gamma every step_epochs
    step_gamma: float = _OPTIM.step_gamma
    grad_clip: float = _OPTIM.grad_clip  # max gradient norm; 0 = off
    seed: int = _OPTIM.seed
    amp: str = _OPTIM.amp  # "auto" (bf16 autocast on CUDA), "off", "bf16", "fp16"
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    num_workers: int = 0
    # augmentation (documented in landmark_afl/data/augment.py)
    aug_rotate: float = _AUG.rotate
    aug_scale: float = _AUG.scale
    aug_translate: float = _AUG.translate
    aug_brightness: float = _AUG.brightness
    aug_contrast: float = _AUG.contrast
    aug_noise: float = _AUG.noise
    aug_flip: float = _AUG.flip
    aug_p_affine: float = _AUG.p_affine
    # logging
    log_every: int = _OPTIM.log_every


def sub_config(cls, cfg, **renames):
    """An instance of dataclass ``cls`` filled from the same-named fields of ``cfg`` (``field="cfg_key"`` renames)."""
    return cls(**{f.name: getattr(cfg, renames.get(f.name, f.name)) for f in fields(cls)})


def config_to_dict(cfg) -> dict:
    """Plain dict (lists for tuples) for YAML and checkpoints."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["lr=1e-3", "afl=False"]`` -> {"lr": "1e-3", "afl": "False"} (values parsed later, by type)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"expected key=value, got {item!r} (e.g. lr=3e-4 or input_size=[320,256])")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
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
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise ConfigError(f"{name} must be a list of {len(default)} values like {list(default)}, got {value!r}")
        return tuple(type(d)(v) for d, v in zip(default, value, strict=True))
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be True or False, got {value!r}")
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{name} must be {kind.__name__} (default {default!r}), got {value!r}")
    return value


def update_config(cfg, values: dict, source: str = "command line"):
    """A copy of ``cfg`` with ``values`` applied; unknown keys and wrong types raise ConfigError."""
    known = {f.name: f for f in fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown config key {key!r} ({source}).{hint} Valid keys: {', '.join(known)}")
        changes[key] = _coerce(key, value, getattr(cfg, key), hints[key])
    return dataclasses.replace(cfg, **changes)


def load_config_file(path: str | Path, base=None):
    """Apply a YAML file of ``key: value`` pairs on top of ``base`` (default: the defaults)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value, got {type(values).__name__}")
    return update_config(base or TrainConfig(), values, source=str(path))
