"""The optimiser and learning-rate schedule of a run, from its ``optim`` config section."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from landmark_afl.engine.device import cpu_bf16_support

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step", "multistep")
AMP_MODES = ("auto", "off", "bf16", "fp16")


@dataclass(frozen=True)
class OptimConfig:
    """Optimisation settings (the ``optim.`` keys).

    Attributes:
        epochs: number of training epochs.
        optimizer: "adamw" or "sgd" (with momentum; Nesterov optional).
        lr: peak learning rate.
        weight_decay: decoupled weight decay (AdamW) or L2 weight decay (SGD).
        momentum: SGD momentum (ignored by AdamW).
        nesterov: SGD with Nesterov momentum.
        schedule: "cosine" (to 0 after a linear warm-up), "step" (x step_gamma every step_epochs) or "multistep"
            (x step_gamma at each epoch in milestones).
        warmup_epochs: linear warm-up length in epochs (fractions allowed; 0 = none).
        step_epochs: the period of the "step" schedule, in epochs.
        step_gamma: the factor of the "step" and "multistep" schedules.
        milestones: the epochs at which "multistep" multiplies the lr by step_gamma, e.g. [60, 120, 160].
        grad_clip: max gradient norm; 0 = off.
        amp: mixed precision of the network (the losses and the AFL critic stay fp32): "auto" (bf16 autocast on
            a CUDA GPU that supports it, else fp16; on the CPU bf16 when it has AVX-512 BF16 or AMX, else fp32),
            "off" (fp32), "bf16" (also on a CPU without native bf16: emulated, slow) or "fp16" (CUDA only).
        log_every: steps between two log lines.
        scale_lr: under torchrun, "linear" multiplies lr by the number of processes (Goyal et al., 2017: the
            effective batch grows with them); "none" keeps lr as given.
        sync_bn: under torchrun on GPUs, convert BatchNorm layers to SyncBatchNorm (statistics over all processes).
        dist_timeout_min: under torchrun, how long a process waits for the others in a collective before the job
            stops with an error instead of hanging.
    """

    epochs: int = 10
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "cosine"
    warmup_epochs: float = 0.5
    step_epochs: int = 10
    step_gamma: float = 0.1
    milestones: tuple[int, ...] = ()
    grad_clip: float = 5.0
    amp: str = "auto"
    log_every: int = 20
    scale_lr: str = "none"
    sync_bn: bool = False
    dist_timeout_min: float = 30.0

    def __post_init__(self) -> None:
        for name, value, valid in (
            ("optim.optimizer", self.optimizer, OPTIMIZERS),
            ("optim.schedule", self.schedule, SCHEDULES),
            ("optim.amp", self.amp, AMP_MODES),
            ("optim.scale_lr", self.scale_lr, ("none", "linear")),
        ):
            if value not in valid:
                raise ValueError(f"{name} must be one of {', '.join(valid)}, got {value!r}")
        if self.epochs < 1:
            raise ValueError(f"optim.epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")


def effective_lr(cfg: OptimConfig, world: int) -> float:
    """The peak lr with ``world`` processes: ``lr * world`` under ``scale_lr=linear``, else ``lr``."""
    return cfg.lr * world if cfg.scale_lr == "linear" else cfg.lr


def build_optimizer(cfg: OptimConfig, params: Iterable[torch.nn.Parameter], world: int = 1) -> torch.optim.Optimizer:
    lr = effective_lr(cfg, world)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


def lr_lambda(cfg: OptimConfig, steps_per_epoch: int):
    """The factor of the peak lr at each step (for ``LambdaLR``): warm-up, then the schedule."""
    warmup = max(0, round(cfg.warmup_epochs * steps_per_epoch))
    total = max(1, cfg.epochs * steps_per_epoch)
    milestones = sorted(cfg.milestones)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1 + math.cos(math.pi * progress))
        epoch = step // steps_per_epoch
        if cfg.schedule == "step":
            return cfg.step_gamma ** (epoch // max(1, cfg.step_epochs))
        return cfg.step_gamma ** sum(epoch >= m for m in milestones)

    return factor


def autocast_dtype(amp: str, device: torch.device):
    """The autocast dtype for ``amp`` on ``device``, or None for fp32.

    On CUDA ``auto`` is bf16 where the GPU supports it, else fp16. On the CPU ``auto`` is bf16 when the CPU has
    native bf16 instructions (:func:`landmark_afl.engine.device.cpu_bf16_support`: AVX-512 BF16 or AMX) and fp32
    otherwise; ``bf16`` forces bf16 autocast (emulated, and slower than fp32, on a CPU without them); ``fp16`` is
    CUDA-only. ``off`` is fp32 everywhere.

    Raises:
        ValueError: ``amp="fp16"`` on the CPU.
    """
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp in ("auto", "bf16"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16
    if device.type != "cpu":
        return None
    if amp == "fp16":
        raise ValueError("amp=fp16 is for CUDA only; on the CPU use amp=auto (bf16 where the CPU has it), bf16 or off")
    if amp == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if cpu_bf16_support() else None


def precision_label(amp: str, device: torch.device) -> str:
    """What ``amp`` means on ``device`` in words, e.g. "bf16 autocast (CPU avx512_bf16)" or "fp32"."""
    dtype = autocast_dtype(amp, device)
    if dtype is None:
        if amp == "auto" and device.type == "cpu":
            return "fp32 (this CPU has no native bf16)"
        return "fp32"
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    if device.type == "cpu":
        support = cpu_bf16_support()
        return f"{name} autocast (CPU {support})" if support else f"{name} autocast (CPU, emulated: no native bf16)"
    return f"{name} autocast (CUDA)"
