"""This process's place in a torchrun job, and the few collectives that training and batch inference use.

``torchrun --standalone --nproc_per_node N -m landmark_afl ...`` starts N processes with RANK / WORLD_SIZE /
LOCAL_RANK set; ``init_distributed`` starts the process group (gloo on CPU, nccl on GPU, one device per process)
with a collective timeout, so a rank that dies or stalls stops the job instead of hanging it. Without torchrun
everything here is a no-op with rank 0 of 1.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass
class DistContext:
    """This process's place in a torchrun job (rank 0 of 1 when not under torchrun).

    Example:
        >>> ctx = DistContext()
        >>> ctx.shard(["a", "b", "c"]), ctx.is_main
        (['a', 'b', 'c'], True)
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def device(self) -> torch.device:
        """The device collectives run on: this rank's GPU under nccl, else the CPU."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``: every world-th item from position rank (balanced, order kept)."""
        return list(items[self.rank :: self.world])

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if self.backend == "nccl":
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def reduce(self, values: Sequence[float], op: str = "sum") -> list[float]:
        """``values`` combined over all ranks ("sum" or "max"); every rank gets the result."""
        if not self.distributed:
            return [float(v) for v in values]
        import torch.distributed as dist

        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return tensor.cpu().tolist()

    def average_gradients(self, params: Iterable[torch.nn.Parameter], extra: torch.Tensor | None = None):
        """Average the gradients of ``params`` over the ranks in one coalesced all-reduce (DDP's reduction).

        ``extra`` (a small tensor, e.g. the loss) rides along and comes back averaged. Returns it (or None).
        """
        if not self.distributed:
            return extra
        import torch.distributed as dist

        grads = [p.grad for p in params if p.grad is not None]
        parts = [g.reshape(-1) for g in grads] + ([extra.detach().reshape(-1).to(grads[0].dtype)] if extra is not None
                                                  else [])  # fmt: skip
        flat = torch.cat(parts).to(self.device)
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
        return flat[offset:].view_as(extra) if extra is not None else None

    def broadcast_module(self, module: torch.nn.Module, buffers_only: bool = False) -> None:
        """Rank 0's parameters and buffers on every rank (the same start for every replica); ``buffers_only``:
        just the buffers, such as BatchNorm's running statistics (what DDP broadcasts before each forward)."""
        if not self.distributed:
            return
        import torch.distributed as dist

        tensors = [*([] if buffers_only else module.parameters()), *module.buffers()]
        with torch.no_grad():
            for tensor in tensors:
                if tensor.is_floating_point() or tensor.dtype in (torch.int64, torch.int32):
                    buf = tensor.data.to(self.device)
                    dist.broadcast(buf, src=0)
                    tensor.data.copy_(buf)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (any picklable value) on every rank."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def init_distributed(device: str = "auto", timeout_min: float = 30.0) -> DistContext:
    """A :class:`DistContext` from torchrun's environment; starts the process group when WORLD_SIZE > 1.

    Args:
        device: "auto", "cpu" or "cuda": nccl when the ranks use CUDA, gloo otherwise.
        timeout_min: collective timeout; a rank that waits longer for the others raises instead of hanging.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_min))
    return DistContext(rank=rank, world=world, local_rank=local_rank, backend=backend)


def current_context() -> DistContext:
    """The context of an already started process group (rank 0 of 1 when there is none)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return DistContext()
    backend = dist.get_backend()
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend)
