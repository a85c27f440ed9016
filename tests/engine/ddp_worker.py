"""Run ``landmark-afl train`` as one torchrun process, for the DDP tests.

Usage (by the tests): ``torchrun --standalone --nproc_per_node 2 tests/engine/ddp_worker.py DUMP_DIR STOP train ...``.
After each epoch every rank writes its task's state to DUMP_DIR/rank<r>-epoch<e>.pt, so the test can check that the
replicas are identical; STOP > 0 stops the job right after that epoch is saved (as if it were killed there).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from landmark_afl.cli import main
from landmark_afl.engine.trainer import Trainer


def _patch(dump_dir: Path, stop_after: int) -> None:
    end_epoch = Trainer._end_epoch

    def end_epoch_and_dump(self, metrics, writer, console):
        end_epoch(self, metrics, writer, console)
        state = {k: v.detach().cpu().clone() for k, v in self.task.state_dict().items()}
        torch.save(state, dump_dir / f"rank{self.dist.rank}-epoch{self.epoch}.pt")
        if stop_after and self.epoch >= stop_after:
            raise KeyboardInterrupt

    Trainer._end_epoch = end_epoch_and_dump


if __name__ == "__main__":
    dump, stop, *argv = sys.argv[1:]
    Path(dump).mkdir(parents=True, exist_ok=True)
    _patch(Path(dump), int(stop))
    code = main(argv)
    sys.exit(0 if code == 130 and int(stop) else code)  # an intended stop is not a failure
