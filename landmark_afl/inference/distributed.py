"""torchrun sharding for ``predict``: rank r takes paths[r::world], writes its own part files, rank 0 merges.

``torchrun --standalone --nproc_per_node N -m landmark_afl predict RUN INPUT --out DIR`` starts N processes with
RANK / WORLD_SIZE / LOCAL_RANK set. The process group (gloo on CPU, nccl on GPU; ``landmark_afl.engine.distributed``)
is used only for barriers and for agreeing on the exit code; the outputs meet on the shared file system
(``OUT/parts/rank-NNN``). Without torchrun everything here is a no-op with rank 0 of 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from landmark_afl.engine import distributed as engine_dist
from landmark_afl.inference.writer import PARTS_DIR


@dataclass
class DistContext(engine_dist.DistContext):
    """The engine's context plus where this rank writes its part of the outputs.

    Example:
        >>> ctx = DistContext()
        >>> ctx.shard(["a", "b", "c"]), ctx.is_main
        (['a', 'b', 'c'], True)
    """

    def part_dir(self, out_dir: Path) -> Path:
        """Where this rank writes: OUT itself without torchrun, else ``OUT/parts/rank-NNN``."""
        return Path(out_dir) if not self.distributed else Path(out_dir) / PARTS_DIR / f"rank-{self.rank:03d}"


def init_distributed(device: str = "auto") -> DistContext:
    """A :class:`DistContext` from torchrun's environment; starts the process group when WORLD_SIZE > 1."""
    return DistContext(**asdict(engine_dist.init_distributed(device)))
