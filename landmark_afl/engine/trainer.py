"""Generic trainer: backward, step, schedule, logging, checkpoints and exact resume. Tasks hold the specifics.

Run folder: ``config.yaml`` (written by the caller), ``metrics.csv`` (one row per epoch), ``difficulty.csv`` (one
row per training sample per epoch, when the task returns scores), ``checkpoints/last.pt`` and ``best.pt``,
TensorBoard event files. Each epoch reseeds the global RNGs with ``(seed, epoch)`` and the data set's augmentation
with the epoch, so ``resume`` from the end of epoch e trains exactly like an uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from landmark_afl.engine.atomic import write_atomic
from landmark_afl.engine.checkpoint import load_checkpoint, save_checkpoint


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped without overwriting the last good checkpoint."""


@dataclass(frozen=True)
class OptimConfig:
    """What the trainer needs of the run's configuration."""

    epochs: int
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.5
    step_epochs: int = 10
    step_gamma: float = 0.1
    grad_clip: float = 5.0
    seed: int = 0
    amp: str = "auto"
    log_every: int = 20


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _lr_lambda(cfg: OptimConfig, steps_per_epoch: int):
    warmup = max(0, round(cfg.warmup_epochs * steps_per_epoch))
    total = max(1, cfg.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.schedule == "step":
            return cfg.step_gamma ** ((step // steps_per_epoch) // max(1, cfg.step_epochs))
        raise ValueError(f"schedule must be 'cosine' or 'step', got {cfg.schedule!r}")

    return factor


def _autocast_dtype(amp: str, device: torch.device):
    if amp == "off" or device.type != "cuda":
        return None
    if amp in ("auto", "bf16"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16":
        return torch.float16
    raise ValueError(f"amp must be 'auto', 'off', 'bf16' or 'fp16', got {amp!r}")


def _write_csv_atomic(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(path, buf.getvalue())


def _read_csv_rows(path: Path, max_epoch: int) -> list[list[str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [r for r in rows if r and int(r[0]) <= max_epoch]


class Trainer:
    """Trains a ``TrainTask`` for ``cfg.epochs`` epochs, validating after each.

    Args:
        task: the task (model, loss and any critic).
        train_loader, val_loader: data loaders; the training set may expose ``set_epoch``.
        cfg: optimisation settings.
        run_dir: the run folder.
        device: where to train.
        run_meta: extra entries saved in every checkpoint (resolved config, landmark names, codec...).
    """

    METRIC_FIELDS = ("epoch", "step", "lr", "train_loss", "train_base_loss", "images_per_s", "epoch_s")

    def __init__(self, task, train_loader, val_loader, cfg: OptimConfig, run_dir, device, run_meta: dict):
        self.task = task.to(device)
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        self.run_meta = run_meta
        self.optimizer = torch.optim.AdamW(task.optimizer_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_lambda(cfg, len(train_loader)))
        self.amp_dtype = _autocast_dtype(cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.epoch = 0
        self.step = 0
        self.best_key: tuple | None = None
        self.best_metrics: dict | None = None
        self.metric_rows: list[list] = []
        self.difficulty_rows: list[list] = []

    # -- checkpoints -----------------------------------------------------------------------------------------
    def state(self, metrics: dict) -> dict:
        return {
            "task": self.task.state_dict(),
            "task_extra": self.task.extra_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_key": list(self.best_key) if self.best_key else None,
            "best_metrics": self.best_metrics,
            "metrics": metrics,
            **self.run_meta,
        }

    def resume(self, path: Path) -> None:
        """Load the last checkpoint of this run and continue after its epoch."""
        state = load_checkpoint(path, map_location=self.device)
        self.task.load_state_dict(state["task"])
        self.task.load_extra_state(state["task_extra"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best_key = tuple(state["best_key"]) if state["best_key"] else None
        self.best_metrics = state["best_metrics"]
        self.metric_rows = _read_csv_rows(self.run_dir / "metrics.csv", self.epoch)
        self.difficulty_rows = _read_csv_rows(self.run_dir / "difficulty.csv", self.epoch)

    # -- training --------------------------------------------------------------------------------------------
    def fit(self, console=None) -> dict:
        from rich.console import Console
        from torch.utils.tensorboard import SummaryWriter

        console = console or Console()
        writer = SummaryWriter(str(self.run_dir), purge_step=self.step or None)
        metrics: dict = dict(self.best_metrics or {})
        try:
            while self.epoch < self.cfg.epochs:
                metrics = self._train_epoch(console, writer)
                metrics.update(self.task.validate(self.val_loader))
                self._end_epoch(metrics, writer, console)
        finally:
            writer.close()
        return metrics

    def _train_epoch(self, console, writer) -> dict:
        epoch = self.epoch + 1
        seed_everything(self.cfg.seed * 1000 + epoch)
        dataset = self.train_loader.dataset
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        if hasattr(self.train_loader.sampler, "set_epoch"):
            self.train_loader.sampler.set_epoch(epoch)
        self.task.train()
        n_steps = len(self.train_loader)
        t0 = time.perf_counter()
        seen, loss_sum, base_sum, window = 0, 0.0, 0.0, []
        progress = _progress_bar(console)
        bar = progress.add_task(f"epoch {epoch}/{self.cfg.epochs}", total=n_steps)
        with progress:
            for i, batch in enumerate(self.train_loader):
                out, batch_size = self._train_step(epoch, i, batch)
                loss_value = out["loss"].item()
                base = float(out.get("base_loss", loss_value))
                seen += batch_size
                loss_sum += loss_value * batch_size
                base_sum += base * batch_size
                window.append(loss_value)
                self._record_difficulty(epoch, batch, out)
                if self.step % self.cfg.log_every == 0 or i + 1 == n_steps:
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    remaining = ((self.cfg.epochs - epoch + 1) * n_steps - i - 1) * batch_size / max(rate, 1e-9)
                    self._log_step(console, writer, f"epoch {epoch}/{self.cfg.epochs} step {i + 1}/{n_steps}", out,
                                   np.mean(window[-20:]), base, rate, remaining)  # fmt: skip
                progress.update(bar, advance=1, description=f"epoch {epoch}/{self.cfg.epochs} loss {loss_value:.4g}")
        elapsed = time.perf_counter() - t0
        return {
            "epoch": epoch,
            "step": self.step,
            "lr": self.scheduler.get_last_lr()[0],
            "train_loss": loss_sum / max(seen, 1),
            "train_base_loss": base_sum / max(seen, 1),
            "images_per_s": seen / max(elapsed, 1e-9),
            "epoch_s": elapsed,
        }

    def _train_step(self, epoch: int, i: int, batch: dict) -> tuple[dict, int]:
        """One optimisation step; returns the task's outputs and the batch size."""
        batch = self.task.batch_to(batch, self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            out = self.task(batch)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"non-finite loss ({loss.item()}) at epoch {epoch}, step {i + 1}: training stopped; the last "
                f"good checkpoint is {self.run_dir / 'checkpoints' / 'last.pt'}. Lower lr (now "
                f"{self.scheduler.get_last_lr()[0]:.2e}), set grad_clip, or check the data with "
                "`landmark-afl data check`."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.task.optimizer_parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return out, batch["image"].shape[0]

    def _log_step(self, console, writer, where: str, out: dict, smoothed: float, base: float, rate, remaining):
        lr = self.scheduler.get_last_lr()[0]
        extra = f" score {float(out['score_mean']):.3f}" if "score_mean" in out else ""
        console.log(
            f"{where} loss {smoothed:.4g} base {base:.4g}{extra} lr {lr:.2e} {rate:.1f} img/s "
            f"ETA {_fmt_seconds(remaining)}"
        )
        writer.add_scalar("train/loss", out["loss"].item(), self.step)
        writer.add_scalar("train/base_loss", base, self.step)
        writer.add_scalar("train/lr", lr, self.step)
        for key in ("critic_loss", "wasserstein", "gp", "score_mean", "real_score", "fake_score"):
            if key in out:
                writer.add_scalar(f"critic/{key}", float(out[key]), self.step)

    def _record_difficulty(self, epoch: int, batch: dict, out: dict) -> None:
        if "per_sample_loss" not in out or "image_id" not in batch:
            return
        losses = out["per_sample_loss"].float().cpu().tolist()
        scores = out["scores"].float().cpu().tolist() if "scores" in out else [""] * len(losses)
        for image_id, score, base in zip(batch["image_id"], scores, losses, strict=True):
            self.difficulty_rows.append([epoch, image_id, score, base])

    def _end_epoch(self, metrics: dict, writer, console) -> None:
        self.epoch = metrics["epoch"]
        for key, value in metrics.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)) and value is not None:
                writer.add_scalar(f"epoch/{key}", value, self.epoch)
        key = self.task.selection_key(metrics)
        improved = self.best_key is None or key < self.best_key
        if improved:
            self.best_key, self.best_metrics = key, dict(metrics)
        ckpt_dir = self.run_dir / "checkpoints"
        state = self.state(metrics)
        save_checkpoint(ckpt_dir / "last.pt", state)
        if improved:
            save_checkpoint(ckpt_dir / "best.pt", state)
        val_fields = sorted(k for k in metrics if k.startswith("val_"))
        header = list(self.METRIC_FIELDS) + val_fields
        self.metric_rows.append([metrics.get(k, "") for k in header])
        _write_csv_atomic(self.run_dir / "metrics.csv", header, self.metric_rows)
        if self.difficulty_rows:
            _write_csv_atomic(
                self.run_dir / "difficulty.csv", ["epoch", "image", "score", "base_loss"], self.difficulty_rows
            )
        summary = ", ".join(
            f"{k[4:]} {v:.4g}" if isinstance(v, float) else f"{k[4:]} {v}"
            for k, v in metrics.items()
            if k in ("val_loss", "val_false_negatives", "val_present", "val_mre_mm", "val_mre_px")
        )
        best = " (best)" if improved else ""
        console.log(f"epoch {self.epoch} done in {metrics['epoch_s']:.0f}s: {summary}{best}")


def _progress_bar(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )  # fmt: skip


def _fmt_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
