"""Generic trainer: backward, step, schedule, logging, checkpoints and exact resume. Tasks hold the specifics.

The trainer knows no task, data set or loss: it writes what the task hands it. Run folder: ``metrics.csv`` (one row
per epoch: the trainer's own columns, ``train_<name>`` for the epoch mean of each scalar the task logs, and the
task's ``val_*`` metrics), ``<task.records_file>`` (one row per training sample per epoch, from the task's
``records``), ``checkpoints/last.pt`` and ``best.pt`` (the task's ``selection_key`` decides), TensorBoard event
files, and ``train.log``: the console's lines as plain text (``engine.console.RunConsole``), appended on resume after
a marker line, deleted with the other files when a fresh run stops before its first epoch ends. Validation shows
its progress (a bar on a terminal, a line every few seconds when piped). Each epoch reseeds the global RNGs with
``(seed, epoch)`` and the data set's augmentation with the epoch, so ``resume`` from the end of epoch e trains
exactly like an uninterrupted run.

Under torchrun (a ``DistContext`` with several processes) the trainer is data-parallel: every process starts from
rank 0's weights, trains on its ``DistributedSampler`` share (seeded with the run's seed, reshuffled per epoch), and
the gradients of the task's parameters are averaged over the processes in one coalesced all-reduce after each
backward (DDP's reduction; the AFL critic averages its own in the same way), so every replica stays identical.
The epoch's training means and records are gathered from every process; rank 0 alone validates (the same
selection of best.pt as one process), writes every run file, and broadcasts the validation metrics.
"""

from __future__ import annotations

import csv
import io
import os
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from landmark_afl.engine.atomic import write_atomic
from landmark_afl.engine.checkpoint import load_checkpoint, save_checkpoint
from landmark_afl.engine.console import LOG_FILE, Counted, RunConsole, fmt_seconds, progress, progress_bar
from landmark_afl.engine.distributed import DistContext
from landmark_afl.engine.optim import OptimConfig, autocast_dtype, build_optimizer, lr_lambda

__all__ = ["NonFiniteLossError", "OptimConfig", "Trainer", "seed_everything"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped without overwriting the last good checkpoint."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _write_csv_atomic(path: Path, rows: list[dict], first: tuple[str, ...]) -> None:
    """Rows of dicts; the header is ``first`` then every other key in order of first appearance."""
    header = list(first)
    for row in rows:
        header += [k for k in row if k not in header]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue())


def _read_csv_rows(path: Path, max_epoch: int) -> list[dict]:
    """The rows of epochs 1..max_epoch (a torn or foreign line is dropped)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        r for r in rows if (r.get("epoch") or "").isdigit() and int(r["epoch"]) <= max_epoch and None not in r.values()
    ]


def _append_csv(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` (one epoch's records) under the file's header, writing the header first for a new file.

    Appending keeps the cost of an epoch proportional to its own rows (rewriting the file every epoch grows
    quadratically over a run); a torn last line after a kill is dropped on resume (``_read_csv_rows``).
    """
    new = not path.is_file() or path.stat().st_size == 0
    if new:
        header = ["epoch"] + [k for k in rows[0] if k != "epoch"]
    else:
        with path.open(newline="") as f:
            header = next(csv.reader(f))
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="", extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def _scalar(value) -> float:
    return float(value.detach().float().item()) if torch.is_tensor(value) else float(value)


class Trainer:
    """Trains a ``TrainTask`` for ``cfg.epochs`` epochs, validating after each.

    Args:
        task: the task (model, loss and any critic).
        train_loader, val_loader: data loaders; the training set may expose ``set_epoch``.
        cfg: optimisation settings.
        run_dir: the run folder.
        device: where to train.
        run_meta: extra entries saved in every checkpoint (resolved config, recipe name, landmark names...).
        seed: the run's seed; epoch e starts from ``seed * 1000 + e``.
        dist: this process's place in a torchrun job (default: one process).
    """

    METRIC_FIELDS = ("epoch", "step", "lr", "train_loss")

    def __init__(
        self, task, train_loader, val_loader, cfg: OptimConfig, run_dir, device, run_meta: dict, seed=0, dist=None
    ):
        self.dist = dist or DistContext()
        self.device = torch.device(device)
        if cfg.sync_bn and self.dist.distributed:
            if self.dist.backend != "nccl":
                raise ValueError("optim.sync_bn=True needs GPUs (nccl); under gloo on the CPU set optim.sync_bn=False")
            task = torch.nn.SyncBatchNorm.convert_sync_batchnorm(task)
        self.task = task.to(self.device)
        self.dist.broadcast_module(self.task)
        self.seed = int(seed)
        self.train_loader = _distributed_loader(train_loader, self.dist, self.seed)
        self.val_loader = val_loader
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_meta = run_meta
        self.optimizer = build_optimizer(cfg, task.optimizer_parameters(), self.dist.world)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg, len(train_loader)))
        self.amp_dtype = autocast_dtype(cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.epoch = 0
        self.step = 0
        self.best_key: tuple | None = None
        self.best_metrics: dict | None = None
        self.metric_rows: list[dict] = []
        self.record_rows: list[dict] = []

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
            "world_size": self.dist.world,
            "best_key": list(self.best_key) if self.best_key else None,
            "best_metrics": self.best_metrics,
            "metrics": metrics,
            **self.run_meta,
        }

    def resume(self, path: Path, console=None, state: dict | None = None) -> None:
        """Load the last checkpoint of this run (``state``: already loaded from ``path``) and continue after its epoch.

        A run resumed with another number of processes continues with a notice: its data order (and the
        effective batch) differ from an uninterrupted run from then on.
        """
        state = state if state is not None else load_checkpoint(path, map_location=self.device)
        trained_world = int(state.get("world_size", 1))
        if trained_world != self.dist.world and console is not None and self.dist.is_main:
            console.print(
                f"[yellow]notice:[/yellow] {path} was trained with {trained_world} process(es), this run has "
                f"{self.dist.world}: the data order and effective batch change from here, so the result will not "
                "equal an uninterrupted run"
            )
        self.task.load_state_dict(state["task"])
        self.task.load_extra_state(state["task_extra"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best_key = tuple(state["best_key"]) if state["best_key"] else None
        self.best_metrics = state["best_metrics"]
        self.metric_rows = _read_csv_rows(self.run_dir / "metrics.csv", self.epoch)
        records = self.run_dir / self.task.records_file if self.task.records_file else None
        if records is not None and records.is_file() and self.dist.is_main:  # drop the rows of unfinished epochs
            _write_csv_atomic(records, _read_csv_rows(records, self.epoch), ("epoch",))

    # -- training --------------------------------------------------------------------------------------------
    def fit(self, console=None) -> dict:
        """Train to ``cfg.epochs``; returns the last epoch's metrics.

        ``console``: where the lines go (a ``RunConsole`` that already logs is used as it is; any other console is
        followed by one that copies its lines to ``train.log``, closed when training ends).
        """
        from rich.console import Console
        from torch.utils.tensorboard import SummaryWriter

        owned = False
        if not self.dist.is_main:
            console = Console(quiet=True)
        elif not isinstance(console, RunConsole):
            console, owned = (RunConsole() if console is None else RunConsole.like(console)), True
        writer = SummaryWriter(str(self.run_dir), purge_step=self.step or None) if self.dist.is_main else _NullWriter()
        fresh, opened = self.epoch == 0, False
        if self.dist.is_main and console.log_file is None:
            marker = "train started" if fresh else f"resumed after epoch {self.epoch} (step {self.step})"
            console.open_log(self.run_dir / LOG_FILE, marker)
            opened = True
        metrics: dict = dict(self.best_metrics or {})
        try:
            while self.epoch < self.cfg.epochs:
                metrics = self._train_epoch(console, writer)
                if self.dist.is_main:
                    metrics.update(self._validate(console, metrics["epoch"]))
                metrics = self.dist.broadcast_object(metrics)
                self._end_epoch(metrics, writer, console)
        except BaseException:
            if opened and fresh and self.epoch == 0:  # the run folder goes: so does its log
                console.discard_log()
            raise
        finally:
            writer.close()
            if owned:
                console.close_log()
        return metrics

    def _validate(self, console, epoch: int) -> dict:
        """The task's validation, with its progress shown (it may take minutes on a large validation split)."""
        try:
            total = len(self.val_loader)
        except TypeError:  # an iterable loader without a length
            total = None
        with progress(console, f"validating epoch {epoch}", total) as update, self._autocast():
            return self.task.validate(Counted(self.val_loader, update), self.run_dir)

    def _train_epoch(self, console, writer) -> dict:
        epoch = self.epoch + 1
        seed_everything(self.seed * 1000 + epoch)
        dataset = self.train_loader.dataset
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        if hasattr(self.train_loader.sampler, "set_epoch"):
            self.train_loader.sampler.set_epoch(epoch)
        self.task.train()
        n_steps = len(self.train_loader)
        t0 = time.perf_counter()
        seen, loss_sum, log_sums, window, records = 0, 0.0, defaultdict(float), [], []
        live = progress_bar(console)
        bar = live.add_task(f"epoch {epoch}/{self.cfg.epochs}", total=n_steps)
        with live:
            for i, batch in enumerate(self.train_loader):
                out, batch_size = self._train_step(epoch, i, batch)
                loss_value = out["loss"].item()
                logged = {k: _scalar(v) for k, v in out.get("log", {}).items()}
                seen += batch_size
                loss_sum += loss_value * batch_size
                for key, value in logged.items():
                    log_sums[key] += value * batch_size
                window.append(loss_value)
                records += self._record_rows(epoch, out.get("records"))
                if self.step % self.cfg.log_every == 0 or i + 1 == n_steps:
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    remaining = ((self.cfg.epochs - epoch + 1) * n_steps - i - 1) * batch_size / max(rate, 1e-9)
                    where = f"epoch {epoch}/{self.cfg.epochs} step {i + 1}/{n_steps}"
                    self._log_step(console, writer, where, loss_value, np.mean(window[-20:]), logged, rate, remaining)
                live.update(bar, advance=1, description=f"epoch {epoch}/{self.cfg.epochs} loss {loss_value:.4g}")
        elapsed = time.perf_counter() - t0
        self.dist.broadcast_module(self.task, buffers_only=True)  # rank 0's BatchNorm statistics everywhere
        keys = sorted(log_sums)
        seen, loss_sum, *sums = self.dist.reduce([seen, loss_sum, *(log_sums[k] for k in keys)])
        self._add_records(records)
        return {
            "epoch": epoch,
            "step": self.step,
            "lr": self.scheduler.get_last_lr()[0],
            "train_loss": loss_sum / max(seen, 1),
            **{f"train_{k}": v / max(seen, 1) for k, v in zip(keys, sums, strict=True)},
            "images_per_s": seen / max(elapsed, 1e-9),
            "epoch_s": elapsed,
        }

    def _train_step(self, epoch: int, i: int, batch: dict) -> tuple[dict, int]:
        """One optimisation step; returns the task's outputs and the batch size."""
        batch = self.task.batch_to(batch, self.device)
        with self._autocast():
            out = self.task(batch)
        loss = out["loss"]
        if not self.dist.distributed:
            self._check_finite(loss, epoch, i)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.dist.distributed:  # the loss rides along, so every rank stops together on a non-finite one
            self._check_finite(self.dist.average_gradients(self.task.optimizer_parameters(), loss), epoch, i)
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.task.optimizer_parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return out, self.task.batch_size(batch)

    def _autocast(self):
        """Mixed precision of ``cfg.amp`` on this device (training steps and validation alike)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _check_finite(self, loss: torch.Tensor, epoch: int, i: int) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"non-finite loss ({loss.item()}) at epoch {epoch}, step {i + 1}: training stopped; the last "
                f"good checkpoint is {self.run_dir / 'checkpoints' / 'last.pt'}. Lower optim.lr (now "
                f"{self.scheduler.get_last_lr()[0]:.2e}), set optim.grad_clip, or check the data with "
                "`landmark-afl data check`."
            )

    def _log_step(self, console, writer, where: str, loss: float, smoothed: float, logged: dict, rate, remaining):
        lr = self.scheduler.get_last_lr()[0]
        shown = (
            logged if self.task.console_keys is None else {k: logged[k] for k in self.task.console_keys if k in logged}
        )
        extra = "".join(f" {k} {v:.4g}" for k, v in shown.items())
        console.log(f"{where} loss {smoothed:.4g}{extra} lr {lr:.2e} {rate:.1f} img/s ETA {fmt_seconds(remaining)}")
        writer.add_scalar("train/loss", loss, self.step)
        writer.add_scalar("train/lr", lr, self.step)
        for key, value in logged.items():
            writer.add_scalar(f"train/{key}", value, self.step)

    def _record_rows(self, epoch: int, records: dict | None) -> list[dict]:
        if not records or not self.task.records_file:
            return []
        columns = {k: v.detach().float().cpu().tolist() if torch.is_tensor(v) else list(v) for k, v in records.items()}
        lengths = {len(v) for v in columns.values()}
        assert len(lengths) == 1, f"records columns of unequal lengths: { {k: len(v) for k, v in columns.items()} }"
        return [
            {"epoch": epoch, **dict(zip(columns, values, strict=True))}
            for values in zip(*columns.values(), strict=True)
        ]

    def _add_records(self, rows: list[dict]) -> None:
        """This epoch's rows of every process; the first column is the sample id, and a sample that the
        DistributedSampler repeated to even out the shares is kept once."""
        if not self.dist.distributed:
            self.record_rows += rows
            return
        seen: set = set()
        for part in self.dist.gather_objects(rows):
            for row in part:
                sample = list(row.values())[1]
                if sample not in seen:
                    seen.add(sample)
                    self.record_rows.append(row)

    def _end_epoch(self, metrics: dict, writer, console) -> None:
        self.epoch = metrics["epoch"]
        if not self.dist.is_main:  # rank 0 writes every run file; the others only follow the selection
            self.record_rows = []
            key = self.task.selection_key(metrics)
            if self.best_key is None or key < self.best_key:
                self.best_key, self.best_metrics = key, dict(metrics)
            return
        for key, value in metrics.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(f"epoch/{key}", value, self.epoch)
        key = self.task.selection_key(metrics)
        improved = self.best_key is None or key < self.best_key
        if improved:
            self.best_key, self.best_metrics = key, dict(metrics)
        # The epoch's rows first, then best.pt, then last.pt: last.pt is the commit point that a resume reads, and
        # rows of epochs after it are dropped on resume, so a kill at any moment loses no finished epoch.
        train_fields = [k for k in metrics if not k.startswith("val_")]
        val_fields = sorted(k for k in metrics if k.startswith("val_"))
        self.metric_rows.append({k: "" if metrics[k] is None else metrics[k] for k in train_fields + val_fields})
        _write_csv_atomic(self.run_dir / "metrics.csv", self.metric_rows, self.METRIC_FIELDS)
        if self.record_rows:
            _append_csv(self.run_dir / self.task.records_file, self.record_rows)
            self.record_rows = []
        ckpt_dir = self.run_dir / "checkpoints"
        state = self.state(metrics)
        if improved:
            save_checkpoint(ckpt_dir / "best.pt", state)
        save_checkpoint(ckpt_dir / "last.pt", state)
        best = " (best)" if improved else ""
        console.log(f"epoch {self.epoch} done in {metrics['epoch_s']:.0f}s: {self.task.epoch_summary(metrics)}{best}")


class _NullWriter:
    """TensorBoard's SummaryWriter for the processes that write nothing."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _distributed_loader(loader, dist: DistContext, seed: int):
    """``loader`` with a DistributedSampler (this process's share, reshuffled by ``set_epoch``) under torchrun."""
    if not dist.distributed:
        return loader
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

    sampler = DistributedSampler(
        loader.dataset, num_replicas=dist.world, rank=dist.rank, shuffle=isinstance(loader.sampler, RandomSampler),
        seed=seed, drop_last=False,
    )  # fmt: skip
    return DataLoader(
        loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
        collate_fn=loader.collate_fn, drop_last=loader.drop_last, pin_memory=loader.pin_memory,
        persistent_workers=loader.persistent_workers,
    )  # fmt: skip
