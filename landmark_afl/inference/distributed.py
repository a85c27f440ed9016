"""torchrun sharding for ``predict``: rank r takes paths[r::world], writes its own part files, rank 0 merges.

``torchrun --standalone --nproc_per_node N -m landmark_afl predict RUN INPUT --out DIR`` starts N processes with
RANK / WORLD_SIZE / LOCAL_RANK set. The process group (gloo on CPU, nccl on GPU) is used only for barriers and for
agreeing on the exit code; the outputs meet on the shared file system (``OUT/parts/rank-NNN``). Without torchrun
everything here is a no-op with rank 0 of 1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from landmark_afl.inference.writer import PARTS_DIR

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

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``: every world-th item from position rank (balanced, order kept)."""
        return list(items[self.rank :: self.world])

    def part_dir(self, out_dir: Path) -> Path:
        """Where this rank writes: OUT itself without torchrun, else ``OUT/parts/rank-NNN``."""
        return Path(out_dir) if not self.distributed else Path(out_dir) / PARTS_DIR / f"rank-{self.rank:03d}"

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

        device = torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return tensor.cpu().tolist()

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def init_distributed(device: str = "auto") -> DistContext:
    """A :class:`DistContext` from torchrun's environment; starts the process group when WORLD_SIZE > 1.

    Args:
        device: "auto", "cpu" or "cuda": nccl when the ranks use CUDA, gloo otherwise.
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
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world=world, local_rank=local_rank, backend=backend)
